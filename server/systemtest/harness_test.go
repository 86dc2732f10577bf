package systemtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/internal/testenv"
	"github.com/parleychat/parley/server/internal/app"
)

// storeKinds are the stores every end-to-end test runs against: the
// embedded default and PostgreSQL.
var storeKinds = []string{"memory", "postgres"}

// envFor returns the environment of a test server with the given store.
// Fast password hashing keeps sign-ups cheap; everything else is default
// unless the test overrides it.
func envFor(t testing.TB, kind string) map[string]string {
	t.Helper()
	env := map[string]string{
		"PARLEY_ADDR":          "127.0.0.1:0",
		"PARLEY_ADMIN_ADDR":    "127.0.0.1:0",
		"PARLEY_PASSWORD_COST": "4",
		"PARLEY_JWT_SECRET":    "e2e-test-secret-e2e-test-secret-e2e",
		"PARLEY_DRAIN_JITTER":  "200ms",
		"PARLEY_DRAIN_TIMEOUT": "10s",
		"LOG_LEVEL":            "info", // the listening records carry the bound addresses
	}
	if kind == "postgres" {
		env["DATABASE_URL"] = testenv.PostgresURL(t)
	}
	return env
}

// forEachStore runs test once per store kind.
func forEachStore(t *testing.T, test func(t *testing.T, env map[string]string)) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) { test(t, envFor(t, kind)) })
	}
}

// testServer is a server started through run, as main starts it.
type testServer struct {
	t      testing.TB
	base   string // http://127.0.0.1:port
	admin  string
	http   *http.Client
	cancel context.CancelFunc
	done   chan error
	logs   *logTap
}

// startServer runs the server with env and waits until /readyz answers 200.
// It is stopped at the end of the test if the test did not stop it.
func startServer(t testing.TB, env map[string]string) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tap := newLogTap()
	s := &testServer{t: t, cancel: cancel, done: make(chan error, 1), logs: tap, http: newHTTPClient()}
	go func() {
		s.done <- app.Run(ctx, "test", nil, func(k string) string { return env[k] }, tap, tap)
	}()
	select {
	case addrs := <-tap.listening:
		s.base, s.admin = "http://"+addrs[0], "http://"+addrs[1]
	case err := <-s.done:
		t.Fatalf("server did not start: %v\n%s", err, tap.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not start in 30s\n%s", tap.String())
	}
	t.Cleanup(func() { s.stop() })
	eventually(t, "server ready", func() bool { return s.status("/readyz") == http.StatusOK })
	return s
}

// newHTTPClient returns a client with its own connection pool, which the
// test closes, so no idle connection outlives it.
func newHTTPClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
}

// stop cancels run's context, as SIGTERM does, and waits for run to return.
func (s *testServer) stop() error {
	s.cancel()
	defer s.http.CloseIdleConnections()
	select {
	case err, ok := <-s.done:
		if ok {
			close(s.done)
		}
		return err
	case <-time.After(30 * time.Second):
		s.t.Fatalf("server did not stop in 30s\n%s", s.logs.String())
		return nil
	}
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

func (s *testServer) wsURL() string { return "ws" + strings.TrimPrefix(s.base, "http") + "/ws" }

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

// frame is any server frame; fields a type lacks stay zero.
type frame struct {
	Type     string    `json:"type"`
	Room     string    `json:"room"`
	LastSeq  int64     `json:"last_seq"`
	Members  []apiUser `json:"members"`
	ID       string    `json:"id"`
	Seq      int64     `json:"seq"`
	ClientID string    `json:"client_id"`
	User     apiUser   `json:"user"`
	Body     string    `json:"body"`
	TS       string    `json:"ts"`
	Status   string    `json:"status"`
	Code     string    `json:"code"`
	Message  string    `json:"message"`
	Ref      string    `json:"ref"`
}

// wsClient is a WebSocket client whose frames are read in the background.
type wsClient struct {
	t      testing.TB
	conn   *websocket.Conn
	frames chan frame
	closed chan struct{}

	mu        sync.Mutex
	closeCode int
	raw       []string
}

func (s *testServer) dial(token string) *wsClient {
	s.t.Helper()
	h := http.Header{"Authorization": {"Bearer " + token}}
	conn, resp, err := websocket.DefaultDialer.Dial(s.wsURL(), h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		s.t.Fatalf("dial: %v (status %d)", err, status)
	}
	return newWSClient(s.t, conn)
}

func newWSClient(t testing.TB, conn *websocket.Conn) *wsClient {
	c := &wsClient{t: t, conn: conn, frames: make(chan frame, 10000), closed: make(chan struct{})}
	go c.readAll()
	t.Cleanup(func() {
		c.conn.Close()
		<-c.closed
	})
	return c
}

func (c *wsClient) readAll() {
	defer close(c.closed)
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			c.mu.Lock()
			if ce, ok := errors.AsType[*websocket.CloseError](err); ok {
				c.closeCode = ce.Code
			} else {
				c.closeCode = -1
			}
			c.mu.Unlock()
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			c.t.Errorf("server sent a frame that is not JSON: %q", data)
			continue
		}
		c.mu.Lock()
		c.raw = append(c.raw, string(data))
		c.mu.Unlock()
		c.frames <- f
	}
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(v); err != nil {
		c.t.Fatalf("write frame: %v", err)
	}
}

// next returns the next frame, failing the test after 10 s.
func (c *wsClient) next() frame {
	c.t.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-c.closed:
		select {
		case f := <-c.frames:
			return f
		default:
		}
		c.t.Fatalf("connection closed (code %d) while waiting for a frame", c.code())
	case <-time.After(10 * time.Second):
		c.t.Fatal("no frame in 10s")
	}
	return frame{}
}

// expect returns the next frame of type typ, skipping presence and typing
// frames, and fails on anything else.
func (c *wsClient) expect(typ string) frame {
	c.t.Helper()
	for {
		f := c.next()
		if f.Type == typ {
			return f
		}
		if f.Type != "presence" && f.Type != "typing" {
			c.t.Fatalf("got frame %+v, want type %q", f, typ)
		}
	}
}

func (c *wsClient) join(room string, since *int64) frame {
	c.t.Helper()
	msg := map[string]any{"type": "join", "room": room}
	if since != nil {
		msg["since"] = *since
	}
	c.send(msg)
	return c.expect("joined")
}

// waitClosed waits for the server to close the connection and returns the
// close code (-1 for a close without a close frame).
func (c *wsClient) waitClosed(within time.Duration) int {
	c.t.Helper()
	select {
	case <-c.closed:
		return c.code()
	case <-time.After(within):
		c.t.Fatalf("connection still open after %v", within)
		return 0
	}
}

func (c *wsClient) code() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode
}

// logTap is the server's stdout and stderr: it keeps the log and reports the
// addresses the listeners bound to.
type logTap struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	line      []byte // an unfinished line, when a write ends mid-line
	addrs     []string
	listening chan []string
}

func newLogTap() *logTap { return &logTap{listening: make(chan []string, 1)} }

func (l *logTap) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	l.line = append(l.line, p...)
	for {
		i := bytes.IndexByte(l.line, '\n')
		if i < 0 {
			break
		}
		var rec struct{ Msg, Listener, Addr string }
		if json.Unmarshal(l.line[:i], &rec) == nil && rec.Msg == "listening" {
			l.addrs = append(l.addrs, rec.Addr)
			if len(l.addrs) == 2 {
				l.listening <- l.addrs
			}
		}
		l.line = l.line[i+1:]
	}
	return len(p), nil
}

func (l *logTap) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }

func seqsOf(msgs []apiMessage) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

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
