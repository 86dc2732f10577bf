package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/testenv"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

var goodEnv = envOf(map[string]string{"CANARY_PASSWORD": "canary-password"})

func TestBadSettingsAreEachReportedByName(t *testing.T) {
	t.Parallel()
	passwordFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(passwordFile, []byte("from-a-file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want []string // in the error; none for a good configuration
	}{
		{"good", []string{"-target", "http://lb:8080"}, map[string]string{"CANARY_PASSWORD": "canary-password"}, nil},
		{"password from a file", []string{"-target", "https://chat.example.com"}, map[string]string{"CANARY_PASSWORD_FILE": passwordFile}, nil},
		{"everything wrong at once",
			[]string{"-target", "lb:8080", "-username", "x", "-interval", "0s", "-timeout", "-1s", "-log-level", "loud", "-room", ""},
			map[string]string{"CANARY_PASSWORD": "short"},
			[]string{"-target", "-username", "-interval", "-timeout", "-log-level", "-room", "CANARY_PASSWORD: "}},
		{"no target, no password", nil, nil, []string{"-target", "CANARY_PASSWORD"}},
		{"both password sources", []string{"-target", "http://lb:8080"}, map[string]string{"CANARY_PASSWORD": "canary-password", "CANARY_PASSWORD_FILE": passwordFile}, []string{"set one"}},
		{"a missing password file", []string{"-target", "http://lb:8080"}, map[string]string{"CANARY_PASSWORD_FILE": filepath.Join(t.TempDir(), "nope")}, []string{"CANARY_PASSWORD_FILE"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(tt.args, envOf(tt.env), &strings.Builder{})
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				if cfg.password == "" || strings.HasSuffix(cfg.password, "\n") {
					t.Fatalf("password %q, want it read without its newline", cfg.password)
				}
				return
			}
			if err == nil {
				t.Fatal("got no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "canary-password") {
				t.Errorf("error shows the password:\n%v", err)
			}
		})
	}
}

// lines collects what run writes and finds the metrics address in it.
type lines struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

var listening = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

// startRun runs the canary with args until the test ends, and returns its
// metrics URL and its output.
func startRun(t *testing.T, args ...string) (string, *lines) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &lines{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-metrics-addr", "127.0.0.1:0"}, args...), goodEnv, out, out)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run returned %v after its context ended, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("run did not return within 10s of its context ending")
		}
	})
	var addr string
	testenv.Eventually(t, "the canary to listen", func() bool {
		m := listening.FindStringSubmatch(out.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	return "http://" + addr + "/metrics", out
}

// A canary that cannot reach the server is an alert, not silence: every
// probe fails at its first step and counts, the last success stays where
// it was, and sign-ins back off instead of hammering the server.
func TestACanaryThatCannotReachTheServerCountsFailures(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, target string
	}{
		{"connection refused", "http://" + testenv.ClosedAddr(t)},
		{"no answer", "http://" + testenv.StartBlackHole(t)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			metrics, out := startRun(t, "-target", tt.target, "-interval", "50ms", "-timeout", "200ms")
			first := testenv.Samples(t, metrics)["parley_canary_last_success_timestamp_seconds"]
			var got map[string]float64
			testenv.Eventually(t, "five probes to fail at login", func() bool {
				got = testenv.Samples(t, metrics)
				return got[`parley_canary_failures_total{step="login"}`] >= 5
			})
			if got[`parley_canary_probes_total{path="unknown"}`] < got[`parley_canary_failures_total{step="login"}`] {
				t.Errorf("probes %v < login failures %v: failures must be probes", got[`parley_canary_probes_total{path="unknown"}`], got[`parley_canary_failures_total{step="login"}`])
			}
			if n := got[`parley_canary_logins_total{result="failed"}`]; n != 1 {
				t.Errorf("got %v sign-in attempts in the first probes, want 1 (then a backoff)", n)
			}
			if last := got["parley_canary_last_success_timestamp_seconds"]; last != first || first == 0 {
				t.Errorf("last success moved from %v to %v without a success", first, last)
			}
			if !strings.Contains(out.String(), `"msg":"probe failed","step":"login"`) {
				t.Errorf("no failed probe logged:\n%s", out.String())
			}
		})
	}
}
