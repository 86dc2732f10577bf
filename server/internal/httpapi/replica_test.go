package httpapi

import (
	"net/http"
	"testing"

	"github.com/parleychat/parley/server/internal/memstore"
)

// A client behind a load balancer learns which replica serves its socket:
// the WebSocket upgrade's 101 (which the upgrader writes itself) names it
// in X-Parley-Replica, and so does the joined frame. No other answer does,
// so the pod's host name is shown to no one who has not signed in.
func TestOnlyTheUpgradeAndJoinedNameTheReplica(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, replica string
	}{
		{"a named replica names itself", "parley-7d9f-1a2b3c4d"},
		{"an unnamed server names nothing", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := startAPI(t, memstore.New(memstore.Options{}), Config{Replica: tt.replica})
			token := api.mustRegister("alice")
			room := api.mustCreateRoom("lobby")

			for _, path := range []string{"/healthz", "/readyz", "/api/v1/rooms", "/no-such-path"} {
				resp, err := api.client.Get(api.base + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if got, ok := resp.Header["X-Parley-Replica"]; ok {
					t.Errorf("GET %s (status %d): X-Parley-Replica %q, want none", path, resp.StatusCode, got)
				}
			}
			refused := api.mustFailToDial("not-a-token")
			if got, ok := refused.Header["X-Parley-Replica"]; ok {
				t.Errorf("refused upgrade (status %d): X-Parley-Replica %q, want none", refused.StatusCode, got)
			}

			ws, resp, err := api.dial(token)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("upgrade: status %d, want 101", resp.StatusCode)
			}
			if got := resp.Header.Get("X-Parley-Replica"); got != tt.replica {
				t.Errorf("upgrade: X-Parley-Replica %q, want %q", got, tt.replica)
			}
			c := newWSClient(t, ws)
			c.send(map[string]any{"type": frameJoin, "room": room})
			if got := c.expect("joined").Replica; got != tt.replica {
				t.Errorf("joined frame: replica %q, want %q", got, tt.replica)
			}
			c.closeNormally()
		})
	}
}
