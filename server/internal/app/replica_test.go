package app

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/internal/testenv"
)

// Each process names itself once: the host name and a random suffix, the
// same id in the WebSocket upgrade's X-Parley-Replica as on the bus, with Redis or
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
// X-Parley-Replica off a signed-in user's WebSocket upgrade (the one
// answer that names the replica) and the replica its bus logged.
func runAndAskReplica(t *testing.T, extra map[string]string) replicaNames {
	t.Helper()
	logs := runServer(t, extra)
	addrs := logs.waitListening(t)
	var names replicaNames
	names.header = upgradeReplica(t, "http://"+addrs[0])
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

// upgradeReplica signs a new user up at base, opens a WebSocket with its
// token and returns the upgrade's X-Parley-Replica.
func upgradeReplica(t *testing.T, base string) string {
	t.Helper()
	token := signUp(t, base, "replica-checker")
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, up, err := dialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws", http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	ws.Close()
	return up.Header.Get("X-Parley-Replica")
}
