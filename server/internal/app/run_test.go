package app

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley/telemetry"
)

// testEnv is a memory-store server on ports of the system's choosing.
func testEnv(extra map[string]string) func(string) string {
	env := map[string]string{
		"PARLEY_ADDR": "127.0.0.1:0", "PARLEY_ADMIN_ADDR": "127.0.0.1:0",
		"PARLEY_PASSWORD_COST": "4", "PARLEY_DRAIN_JITTER": "10ms", "PARLEY_DRAIN_TIMEOUT": "5s",
	}
	for k, v := range extra {
		env[k] = v
	}
	return envOf(env)
}

func TestRunServesUntilItsContextEndsThenStopsInOrder(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	logs := &logLines{listening: make(chan string, 2)}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, "test", nil, testEnv(nil), logs, logs) }()

	addrs := logs.waitListening(t)
	for _, url := range []string{"http://" + addrs[0] + "/readyz", "http://" + addrs[1] + "/metrics"} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: got %s, want 200", url, resp.Status)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v, want nil after its context ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of its context ending")
	}
	want := []string{"starting parley", "listening", "listening", "draining", "stopped"}
	if got := logs.messages(want); !slices.Equal(got, want) {
		t.Errorf("got log records %q, want %q in that order", got, want)
	}
}

func TestRunThatCannotListenClosesWhatItBuilt(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() }) // after the parallel subtests
	for _, tt := range []struct{ name, variable, wantErr string }{
		{"public", "PARLEY_ADDR", "listen public on "},
		{"admin", "PARLEY_ADMIN_ADDR", "listen admin on "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logs := &logLines{}
			err := Run(t.Context(), "test", nil, testEnv(map[string]string{tt.variable: taken.Addr().String()}), logs, logs)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want an error starting %q", err, tt.wantErr)
			}
			// TestMain's leak check fails the package if a part still runs.
			if got := logs.messages([]string{"listening", "stopped"}); !slices.Equal(got, []string{"stopped"}) {
				t.Errorf("got log records %q, want only stopped: no listener opened", got)
			}
		})
	}
}

func TestShutdownTwiceIsHarmless(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(testEnv(map[string]string{"PARLEY_FAULTS": "on"}))
	if err != nil {
		t.Fatal(err)
	}
	logs := &logLines{}
	tel, err := telemetry.Setup(t.Context(), telemetry.Config{Service: "parley", Stdout: logs, Getenv: envOf(nil)})
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(cfg, tel, logs)
	if err := s.build(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	s.shutdown(t.Context())
	s.shutdown(t.Context())
	if got := logs.messages([]string{"stopped"}); len(got) != 2 {
		t.Errorf("got %d stopped records, want one per shutdown", len(got))
	}
}

// logLines collects the JSON log records Run writes, and tells the test the
// addresses of its listeners as they open.
type logLines struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	partial   []byte
	listening chan string // made by the test that waits on it
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	l.partial = append(l.partial, p...)
	for {
		line, rest, ok := bytes.Cut(l.partial, []byte("\n"))
		if !ok {
			break
		}
		var r logRecord
		if json.Unmarshal(line, &r) == nil && r.Msg == "listening" && l.listening != nil {
			l.listening <- r.Addr
		}
		l.partial = rest
	}
	return len(p), nil
}

type logRecord struct {
	Msg  string `json:"msg"`
	Addr string `json:"addr"`
}

// messages lists the records whose message is among msgs, in log order.
func (l *logLines) messages(msgs []string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for line := range strings.Lines(l.buf.String()) {
		var r logRecord
		if json.Unmarshal([]byte(line), &r) == nil && slices.Contains(msgs, r.Msg) {
			out = append(out, r.Msg)
		}
	}
	return out
}

// waitListening returns the addresses of the two listeners once both are
// open.
func (l *logLines) waitListening(t *testing.T) []string {
	t.Helper()
	var addrs []string
	for len(addrs) < 2 {
		select {
		case addr := <-l.listening:
			addrs = append(addrs, addr)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d listeners open after 10s, want 2:\n%s", len(addrs), l.buf.String())
		}
	}
	return addrs
}
