package app

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/testenv"
)

// Each process names itself once: the host name and a random suffix, the
// same id in the answers' X-Parley-Replica as on the bus, with Redis or
// without it, and a new one after a restart.
func TestEachRunNamesItsReplicaOnceForClientsAndTheBus(t *testing.T) {
	t.Parallel()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	shape := regexp.MustCompile("^" + regexp.QuoteMeta(host) + "-[0-9a-f]{8}$")

	alone := runAndAskReplica(t, nil)
	if !shape.MatchString(alone.header) {
		t.Errorf("without Redis: X-Parley-Replica %q, want %s", alone.header, shape)
	}
	again := runAndAskReplica(t, nil)
	if again.header == alone.header {
		t.Errorf("two runs both named themselves %q, want a new id per process", again.header)
	}
	withBus := runAndAskReplica(t, map[string]string{"DATABASE_URL": testenv.PostgresURL(t), "REDIS_URL": testenv.RedisURL(t)})
	if !shape.MatchString(withBus.header) || withBus.header != withBus.bus {
		t.Errorf("with Redis: X-Parley-Replica %q, the bus publishes as %q; want one id of shape %s", withBus.header, withBus.bus, shape)
	}
}

// replicaNames is what a run told a client and what its bus logged.
type replicaNames struct{ header, bus string }

// runAndAskReplica runs a server with extra in its environment, reads
// X-Parley-Replica off its /healthz and the replica its bus logged, and
// stops it.
func runAndAskReplica(t *testing.T, extra map[string]string) replicaNames {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	logs := &logLines{listening: make(chan string, 2)}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, "test", nil, testEnv(extra), logs, logs) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of its context ending")
		}
	}()
	addrs := logs.waitListening(t)
	resp, err := http.Get("http://" + addrs[0] + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var names replicaNames
	names.header = resp.Header.Get("X-Parley-Replica")
	logs.mu.Lock()
	for line := range strings.Lines(logs.buf.String()) {
		var r struct{ Msg, Replica string }
		if json.Unmarshal([]byte(line), &r) == nil && r.Msg == "cross-replica fan-out through Redis" {
			names.bus = r.Replica
		}
	}
	logs.mu.Unlock()
	return names
}
