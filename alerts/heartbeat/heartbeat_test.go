package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/parleychat/parley/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// slackSpy records what the watcher posts; fail makes posts fail.
type slackSpy struct {
	mu    sync.Mutex
	posts []slackPost
	tries int
	fail  bool
}

func (s *slackSpy) post(_ context.Context, p slackPost) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tries++
	if s.fail {
		return errors.New("slack is down")
	}
	s.posts = append(s.posts, p)
	return nil
}

func (s *slackSpy) titles() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range s.posts {
		out = append(out, p.Attachments[0].Title)
	}
	return out
}

func (s *slackSpy) setFail(fail bool) { s.mu.Lock(); s.fail = fail; s.mu.Unlock() }

const (
	firing   = "[FIRING:1] WatchdogMissing (critical)"
	resolved = "[RESOLVED] WatchdogMissing (critical)"
)

// watch runs a watcher expecting a beat every 5 minutes, in a synctest
// bubble whose clock moves only when every goroutine waits.
func watch(t *testing.T, test func(t *testing.T, w *watcher, slack *slackSpy)) {
	synctest.Test(t, func(t *testing.T) {
		slack := &slackSpy{}
		w := newWatcher(5*time.Minute, 30*time.Second, slack.post, slog.New(slog.DiscardHandler))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); w.run(ctx) }()
		synctest.Wait()
		test(t, w, slack)
		cancel()
		<-done
	})
}

// beatEvery beats n times, every d.
func beatEvery(w *watcher, d time.Duration, n int) {
	for range n {
		time.Sleep(d)
		w.beat(time.Now())
		synctest.Wait()
	}
}

func equal(a, b []string) bool { return strings.Join(a, "|") == strings.Join(b, "|") }

func TestWatchdogEveryMinuteRaisesNoAlarm(t *testing.T) {
	watch(t, func(t *testing.T, w *watcher, slack *slackSpy) {
		beatEvery(w, time.Minute, 30)
		beatEvery(w, 4*time.Minute+59*time.Second, 3) // late, but within 5 minutes
		if got := slack.titles(); len(got) != 0 {
			t.Fatalf("got posts %q, want none while the Watchdog comes", got)
		}
		if s := w.snapshot(); s.Heartbeats != 33 || s.Alarm {
			t.Fatalf("got status %+v, want 33 heartbeats and no alarm", s)
		}
	})
}

func TestSilenceRaisesTheAlarmOnceAndABeatResolvesIt(t *testing.T) {
	watch(t, func(t *testing.T, w *watcher, slack *slackSpy) {
		beatEvery(w, time.Minute, 2)
		time.Sleep(5*time.Minute - time.Second)
		synctest.Wait()
		if got := slack.titles(); len(got) != 0 {
			t.Fatalf("alarm before 5 minutes of silence: %q", got)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := slack.titles(); !equal(got, []string{firing}) {
			t.Fatalf("after 5 minutes of silence got %q, want the alarm", got)
		}
		time.Sleep(time.Hour) // still silent: one alarm, not one a period
		synctest.Wait()
		if got := slack.titles(); len(got) != 1 || !w.snapshot().Alarm {
			t.Fatalf("an hour later got %q and %+v, want the one alarm, still raised", got, w.snapshot())
		}
		beatEvery(w, 0, 1)
		if got := slack.titles(); !equal(got, []string{firing, resolved}) {
			t.Fatalf("after the Watchdog came back got %q, want the alarm and its recovery", got)
		}
		text := slack.posts[0].Attachments[0]
		if text.Color != "danger" || text.TitleLink != runbookURL || !strings.Contains(text.Text, "expected at least every 5m0s") {
			t.Errorf("alarm %+v, want danger, the runbook and the period", text)
		}
		if s := w.snapshot(); s.Alarm || s.Alarms != 1 {
			t.Errorf("status %+v, want no alarm now and one delivered", s)
		}
	})
}

// Alertmanager that never sends a first Watchdog is as broken as one
// that stopped.
func TestNoFirstHeartbeatRaisesTheAlarm(t *testing.T) {
	watch(t, func(t *testing.T, _ *watcher, slack *slackSpy) {
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if got := slack.titles(); !equal(got, []string{firing}) {
			t.Fatalf("got %q, want the alarm 5 minutes after start without a heartbeat", got)
		}
		if !strings.Contains(slack.posts[0].Attachments[0].Text, "since this receiver started 5m0s ago") {
			t.Errorf("alarm text %q does not say it never heard one", slack.posts[0].Attachments[0].Text)
		}
	})
}

func TestAFailedAlarmIsRetriedUntilItGoesThrough(t *testing.T) {
	watch(t, func(t *testing.T, w *watcher, slack *slackSpy) {
		slack.setFail(true)
		time.Sleep(5*time.Minute + 95*time.Second) // the first try and 3 retries
		synctest.Wait()
		if slack.tries != 4 || !w.snapshot().Pending {
			t.Fatalf("got %d tries, status %+v, want 4 and the alarm pending", slack.tries, w.snapshot())
		}
		slack.setFail(false)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if got := slack.titles(); !equal(got, []string{firing}) || w.snapshot().Pending {
			t.Fatalf("got %q and %+v, want the alarm delivered on a retry", got, w.snapshot())
		}
	})
}

// A Watchdog that comes back before the alarm got through leaves Slack
// quiet: there is nothing there to resolve.
func TestABeatCancelsAnUndeliveredAlarm(t *testing.T) {
	watch(t, func(t *testing.T, w *watcher, slack *slackSpy) {
		slack.setFail(true)
		time.Sleep(5*time.Minute + time.Second)
		synctest.Wait()
		beatEvery(w, 0, 1)
		slack.setFail(false)
		beatEvery(w, time.Minute, 10)
		if got := slack.titles(); len(got) != 0 {
			t.Fatalf("got %q, want nothing posted", got)
		}
	})
}

// The runbook the alarm links exists.
func TestTheAlarmsRunbookExists(t *testing.T) {
	t.Parallel()
	name := filepath.Join("..", "runbooks", alarmName+".md")
	if _, err := os.Stat(name); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(runbookURL, "/alerts/runbooks/"+alarmName+".md") {
		t.Fatalf("runbook URL %s does not name %s", runbookURL, name)
	}
}

// fakeSlack is a Slack webhook that keeps what is posted to it.
func fakeSlack(t *testing.T) (*httptest.Server, func() []slackPost) {
	t.Helper()
	var (
		mu    sync.Mutex
		posts []slackPost
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/hooks/pages" {
			http.Error(w, "no_service", http.StatusNotFound)
			return
		}
		var p slackPost
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		mu.Lock()
		posts = append(posts, p)
		mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, func() []slackPost { mu.Lock(); defer mu.Unlock(); return append([]slackPost(nil), posts...) }
}

// lineWriter hands each write (slog writes a record, one line, in one) to
// its channel, dropping what does not fit.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) {
	select {
	case w <- string(p):
	default:
	}
	return len(p), nil
}

// The program end to end: Alertmanager's posts keep it quiet, their
// absence raises the alarm in the webhook read from the file, and their
// return resolves it.
func TestRunAlarmsWhenAlertmanagerGoesQuiet(t *testing.T) {
	t.Parallel()
	slack, posted := fakeSlack(t)
	file := filepath.Join(t.TempDir(), "pages")
	if err := os.WriteFile(file, []byte(slack.URL+"/hooks/pages\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdout := make(lineWriter, 64)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-expect-every", "400ms", "-webhook-file", file}, env, stdout, io.Discard)
	}()
	var listening struct{ Msg, Addr string }
	select {
	case line := <-stdout:
		if err := json.Unmarshal([]byte(line), &listening); err != nil || listening.Msg != "listening" {
			t.Fatalf("first line %q, want the address it listens on", line)
		}
	case err := <-done:
		t.Fatalf("run ended before listening: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not listen within 10s")
	}
	base := "http://" + listening.Addr
	watchdog := `{"version":"4","status":"firing","receiver":"heartbeat","alerts":[{"status":"firing","labels":{"alertname":"Watchdog"}}]}`
	beat := func() {
		resp, err := http.Post(base+"/watchdog", "application/json", strings.NewReader(watchdog))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /watchdog: %s", resp.Status)
		}
	}
	// Beats every 100ms for a second: four times inside the period.
	var lastBeat time.Time
	for range 10 {
		lastBeat = time.Now() // before the post, so the server heard it later
		beat()
		time.Sleep(100 * time.Millisecond)
	}
	if got := posted(); len(got) != 0 {
		t.Fatalf("got %d posts while the Watchdog came, want none", len(got))
	}
	testenv.EventuallyWithin(t, 10*time.Second, "the alarm in the pages webhook", func() bool { return len(posted()) == 1 })
	// Only a lower bound: a busy machine may make the alarm late, never
	// early. The synctest tests above pin the exact moment.
	if waited := time.Since(lastBeat); waited < 400*time.Millisecond {
		t.Errorf("alarm %v after the last beat, want no sooner than the 400ms period", waited)
	}
	if got := posted()[0].Attachments[0].Title; got != firing {
		t.Errorf("alarm titled %q, want %q", got, firing)
	}
	var st status
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || !st.Alarm || st.Heartbeats != 10 || st.LastHeartbeat == nil || st.ExpectEvery != "400ms" {
		t.Errorf("GET / gave %+v (%v), want the alarm raised after 10 heartbeats", st, err)
	}
	beat()
	testenv.EventuallyWithin(t, 10*time.Second, "the recovery", func() bool { return len(posted()) == 2 })
	if got := posted()[1].Attachments[0].Title; got != resolved {
		t.Errorf("recovery titled %q, want %q", got, resolved)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop within 10s")
	}
}

func TestNotAHeartbeat(t *testing.T) {
	t.Parallel()
	w := newWatcher(time.Minute, time.Minute, (&slackSpy{}).post, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(handler(w, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	for _, tt := range []struct {
		body string
		want int
	}{
		{"not json", http.StatusBadRequest},
		{`{"status":"resolved","alerts":[{"status":"resolved"}]}`, http.StatusOK},
		{`{"status":"firing","alerts":[]}`, http.StatusOK},
	} {
		resp, err := http.Post(srv.URL+"/watchdog", "application/json", strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: got %d, want %d", tt.body, resp.StatusCode, tt.want)
		}
	}
	if n := w.snapshot().Heartbeats; n != 0 {
		t.Errorf("got %d heartbeats from posts without a firing alert, want 0", n)
	}
}

func TestRunRefusesBadFlags(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing")
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("hooks.slack.com/no-scheme\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "give one of -webhook-file and -webhook"},
		{[]string{"-webhook", "http://x/", "-webhook-file", bad}, "give one of -webhook-file and -webhook"},
		{[]string{"-webhook-file", missing}, "-webhook-file: open " + missing},
		{[]string{"-webhook-file", bad}, "-webhook-file: not an http(s) URL"},
		{[]string{"-webhook", "ftp://x/"}, "-webhook: not an http(s) URL"},
		{[]string{"-webhook", "http://x/", "-expect-every", "0s"}, "-expect-every must be positive"},
		{[]string{"-webhook", "http://x/", "-retry-every", "-1s"}, "-retry-every must be positive"},
		{[]string{"-webhook", "http://x/", "extra"}, `unexpected arguments ["extra"]`},
	} {
		if err := run(t.Context(), tt.args, env, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want an error containing %q", tt.args, err, tt.want)
		}
	}
}

func env(string) string { return "" }
