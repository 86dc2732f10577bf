package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func messages(t *testing.T, url string) []message {
	t.Helper()
	resp, err := http.Get(url + "/messages")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Messages []message }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Messages
}

// testHooks are the webhooks the tests' receivers serve.
var testHooks = map[string]string{"T000/B000/XXX": "#parley-pages", "tickets": "#parley-tickets", "x": "#x"}

// What Alertmanager's slack_configs post (with a channel, which a webhook
// ignores).
const alertmanagerPost = `{"channel":"#somewhere-else","username":"Alertmanager","attachments":[{"title":"[FIRING:1] ParleyAckAvailabilityBudgetBurn (critical)","title_link":"http://grafana/d/slo","text":"Runbook: https://example/runbook.md","color":"danger","fallback":"x"}]}`

func TestAPostIsKeptAndListedNewestFirst(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(newInbox(10, testHooks).handler())
	defer srv.Close()
	if code, body := post(t, srv.URL+"/hooks/T000/B000/XXX", alertmanagerPost); code != http.StatusOK || body != "ok" {
		t.Fatalf("got %d %q, want 200 ok", code, body)
	}
	post(t, srv.URL+"/hooks/tickets", `{"text":"later"}`)
	got := messages(t, srv.URL)
	if len(got) != 2 || got[0].Text != "later" || got[0].Channel != "#parley-tickets" {
		t.Fatalf("got %+v, want two messages, the later first in #parley-tickets", got)
	}
	first := got[1]
	if first.Hook != "T000/B000/XXX" || first.Channel != "#parley-pages" || len(first.Attachments) != 1 ||
		first.Attachments[0].Title != "[FIRING:1] ParleyAckAvailabilityBudgetBurn (critical)" ||
		first.Attachments[0].TitleLink != "http://grafana/d/slo" || !strings.Contains(string(first.Raw), "fallback") {
		t.Fatalf("got %+v, want the post's fields, the hook's channel and the raw body", first)
	}
}

// A Slack incoming webhook posts to the channel it was created for: the
// payload cannot move a message elsewhere, and a hook that does not exist
// is refused, so a receiver wired to the wrong webhook shows.
func TestEachHookPostsOnlyToItsOwnChannel(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(newInbox(10, testHooks).handler())
	defer srv.Close()
	for _, tt := range []struct{ hook, payloadChannel, want string }{
		{"T000/B000/XXX", "#parley-tickets", "#parley-pages"},
		{"tickets", "#parley-pages", "#parley-tickets"},
		{"tickets", "", "#parley-tickets"},
	} {
		body := `{"text":"to ` + tt.hook + `","channel":"` + tt.payloadChannel + `"}`
		if code, _ := post(t, srv.URL+"/hooks/"+tt.hook, body); code != http.StatusOK {
			t.Fatalf("hook %s: got status %d, want 200", tt.hook, code)
		}
		if got := messages(t, srv.URL)[0]; got.Channel != tt.want || got.Hook != tt.hook {
			t.Errorf("a post to hook %s naming %q landed in %s (hook %s), want %s", tt.hook, tt.payloadChannel, got.Channel, got.Hook, tt.want)
		}
	}
	for _, hook := range []string{"unknown", "T000/B000", "T000/B000/XXX/more"} {
		if code, body := post(t, srv.URL+"/hooks/"+hook, `{"text":"lost"}`); code != http.StatusNotFound || strings.TrimSpace(body) != "no_service" {
			t.Errorf("a post to hook %s: got %d %q, want 404 no_service as Slack answers", hook, code, body)
		}
	}
	if got := messages(t, srv.URL); len(got) != 3 {
		t.Errorf("got %d messages, want the 3 posted to served hooks", len(got))
	}
}

func TestBadPostsAreRefusedAsSlackWould(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(newInbox(10, testHooks).handler())
	defer srv.Close()
	tests := []struct {
		name, body string
		want       int
	}{
		{"not JSON", "hello", http.StatusBadRequest},
		{"not an object", `["text"]`, http.StatusBadRequest},
		{"no text and no attachments", `{"channel":"#x"}`, http.StatusBadRequest},
		{"too large", `{"text":"` + strings.Repeat("x", maxBody) + `"}`, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, _ := post(t, srv.URL+"/hooks/x", tt.body); code != tt.want {
				t.Fatalf("got status %d, want %d", code, tt.want)
			}
		})
	}
	if got := messages(t, srv.URL); len(got) != 0 {
		t.Fatalf("got %d messages kept from refused posts, want none", len(got))
	}
	resp, err := http.Get(srv.URL + "/hooks/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET of a hook: got status %d, want 405", resp.StatusCode)
	}
}

func TestOnlyTheNewestPostsAreKept(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(newInbox(2, testHooks).handler())
	defer srv.Close()
	for _, text := range []string{"one", "two", "three"} {
		post(t, srv.URL+"/hooks/x", `{"text":"`+text+`"}`)
	}
	got := messages(t, srv.URL)
	if len(got) != 2 || got[0].Text != "three" || got[1].Text != "two" {
		t.Fatalf("got %+v, want three and two", got)
	}
}

func TestThePageEscapesWhatItShows(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(newInbox(10, testHooks).handler())
	defer srv.Close()
	post(t, srv.URL+"/hooks/x", `{"text":"<script>alert(1)</script>"}`)
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(page), "<script>") || !strings.Contains(string(page), "&lt;script&gt;") {
		t.Fatalf("the page does not escape the message:\n%s", page)
	}
}

// lineWriter hands each write to its channel, dropping what does not
// fit: slog writes each record, one JSON line, in one write.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) {
	select {
	case w <- string(p):
	default:
	}
	return len(p), nil
}

// run serves until its context ends: it says where it listens on stdout
// (the end-to-end test reads that line to find it), keeps what is posted
// there, and stops cleanly.
func TestRunServesUntilItsContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdout := make(lineWriter, 16)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-keep", "5", "-hook", "x=#x"}, env(nil), stdout, io.Discard)
	}()
	var listening struct{ Msg, Addr string }
	select {
	case line := <-stdout:
		if err := json.Unmarshal([]byte(line), &listening); err != nil || listening.Msg != "listening" || listening.Addr == "" {
			t.Fatalf("first line %q, want the address it listens on", line)
		}
	case err := <-done:
		t.Fatalf("run ended before listening: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not say where it listens within 10s")
	}
	base := "http://" + listening.Addr
	post(t, base+"/hooks/x", `{"text":"hello"}`)
	if got := messages(t, base); len(got) != 1 || got[0].Text != "hello" || got[0].Channel != "#x" {
		t.Fatalf("got %+v, want the message posted", got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop within 10s of its context's end")
	}
}

func TestRunRefusesBadFlags(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-addr", "127.0.0.1:0", "-keep", "0", "-hook", "x=#x"}, "-keep must be at least 1"},
		{[]string{"-hook", "x=#x", "extra"}, `unexpected arguments ["extra"]`},
		{[]string{"-addr", "127.0.0.1:0"}, "-hook: give at least one webhook"},
		{[]string{"-hook", "x"}, `invalid value "x" for flag -hook: "x" is not id=#channel`},
		{[]string{"-hook", "=#x"}, `is not id=#channel`},
		{[]string{"-hook", "x=#a", "-hook", "x=#b"}, "hook x given twice"},
		{[]string{"-nope"}, "flag provided but not defined: -nope"},
	} {
		if err := run(t.Context(), tt.args, env(nil), io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want an error containing %q", tt.args, err, tt.want)
		}
	}
}

// env is an environment of the variables in m alone, for run's getenv.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}
