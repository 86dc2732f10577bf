package httpapi

import (
	"net/http"
	"testing"

	"github.com/parleychat/parley/server/internal/memstore"
)

// A client behind a load balancer learns which replica serves it: every
// public answer names it in X-Parley-Replica (the WebSocket upgrade's 101,
// which the upgrader writes itself, included), and so does the joined frame.
func TestAnswersNameTheReplica(t *testing.T) {
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
				if got := resp.Header.Get("X-Parley-Replica"); got != tt.replica {
					t.Errorf("GET %s (status %d): X-Parley-Replica %q, want %q", path, resp.StatusCode, got, tt.replica)
				}
			}
			refused := api.mustFailToDial("not-a-token")
			if got := refused.Header.Get("X-Parley-Replica"); got != tt.replica {
				t.Errorf("refused upgrade (status %d): X-Parley-Replica %q, want %q", refused.StatusCode, got, tt.replica)
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
