package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

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
	s.waitReady()
	return s
}

// waitReady waits until /readyz answers 200.
func (s *testServer) waitReady() {
	s.t.Helper()
	testenv.Eventually(s.t, "the server at "+s.base+" to be ready", func() bool { return s.status("/readyz") == http.StatusOK })
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
