package systemtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// newHTTPClient returns a client with its own connection pool, which the
// test closes, so no idle connection outlives it.
func newHTTPClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
}

// status GETs a path of the public listener and returns the status code (0
// when the request fails).
func (s *testServer) status(path string) int {
	resp, err := s.http.Get(s.base + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// call makes a JSON request and decodes the answer into out (if not nil).
func (s *testServer) call(method, path, token string, body any, out any) int {
	s.t.Helper()
	return s.callAt(s.base, method, path, token, body, out)
}

// adminCall makes a request of the admin listener, whose body, if any, is
// already JSON.
func (s *testServer) adminCall(method, path, token, body string) int {
	s.t.Helper()
	var payload any
	if body != "" {
		payload = body
	}
	return s.callAt(s.admin, method, path, token, payload, nil)
}

// callAt is call on the listener at base: the public one or the admin one.
func (s *testServer) callAt(base, method, path, token string, body any, out any) int {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatalf("%s %s: answer %q is not JSON: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// metric reads one unlabelled series from the admin listener's /metrics
// (-1 when it is missing).
func (s *testServer) metric(name string) float64 {
	resp, err := s.http.Get(s.admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if value, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, err := strconv.ParseFloat(value, 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// metricLabelled reads one series given its labels as Prometheus prints
// them, in order: `a="x",b="y"` (-1 when it is missing).
func (s *testServer) metricLabelled(name, labels string) float64 {
	return s.metric(name + "{" + labels + "}")
}

type apiUser struct {
	ID       string `json:"id"`
	Username string `json:"username"`
}

type apiSession struct {
	User  apiUser `json:"user"`
	Token string  `json:"token"`
}

type apiRoom struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	LastSeq int64  `json:"last_seq"`
}

type apiMessage struct {
	ID       string  `json:"id"`
	Room     string  `json:"room"`
	Seq      int64   `json:"seq"`
	ClientID string  `json:"client_id"`
	User     apiUser `json:"user"`
	Body     string  `json:"body"`
	TS       string  `json:"ts"`
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (s *testServer) mustSignUp(name string) apiSession {
	s.t.Helper()
	var out apiSession
	if code := s.call("POST", "/api/v1/users", "", map[string]string{"username": name, "password": "correct horse"}, &out); code != http.StatusCreated {
		s.t.Fatalf("sign up %s: got status %d, want 201", name, code)
	}
	return out
}

func (s *testServer) mustCreateRoom(token, name string) apiRoom {
	s.t.Helper()
	var out struct{ Room apiRoom }
	if code := s.call("POST", "/api/v1/rooms", token, map[string]string{"name": name}, &out); code != http.StatusCreated {
		s.t.Fatalf("create room %s: got status %d, want 201", name, code)
	}
	return out.Room
}

func (s *testServer) mustHistory(token, room, query string) []apiMessage {
	s.t.Helper()
	var out struct{ Messages []apiMessage }
	if code := s.call("GET", "/api/v1/rooms/"+room+"/messages?"+query, token, nil, &out); code != http.StatusOK {
		s.t.Fatalf("history: got status %d, want 200", code)
	}
	return out.Messages
}

func (s *testServer) mustTicket(token string) string {
	s.t.Helper()
	var out struct{ Ticket string }
	if code := s.call("POST", "/api/v1/ws-tickets", token, nil, &out); code != http.StatusCreated || out.Ticket == "" {
		s.t.Fatalf("ticket: got %d %+v, want 201 with a ticket", code, out)
	}
	return out.Ticket
}

func seqsOf(msgs []apiMessage) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

// wantRun fails the test unless got is exactly from, from+1, ..., to.
func wantRun(t *testing.T, what string, got []int64, from, to int64) {
	t.Helper()
	want := make([]int64, 0, to-from+1)
	for s := from; s <= to; s++ {
		want = append(want, s)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: got seqs %v, want %d..%d", what, got, from, to)
	}
}
