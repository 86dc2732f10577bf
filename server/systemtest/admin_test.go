package systemtest

import (
	"net/http"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/testenv"
)

func TestAdminEndpointsNeedTheToken(t *testing.T) {
	t.Parallel()
	const token = "admin-token-for-tests"
	tests := []struct {
		name        string
		env         map[string]string
		token, path string
		want        int
	}{
		{"metrics need no token", nil, "", "/metrics", http.StatusOK},
		{"no token configured refuses everyone", nil, token, "/admin/faults", http.StatusForbidden},
		{"a missing token is refused", map[string]string{"PARLEY_ADMIN_TOKEN": token}, "", "/admin/faults", http.StatusUnauthorized},
		{"a wrong token is refused", map[string]string{"PARLEY_ADMIN_TOKEN": token}, token + "x", "/admin/faults", http.StatusUnauthorized},
		{"faults off answers not found", map[string]string{"PARLEY_ADMIN_TOKEN": token}, token, "/admin/faults", http.StatusNotFound},
		{"faults on lists them", map[string]string{"PARLEY_ADMIN_TOKEN": token, "PARLEY_FAULTS": "on"}, token, "/admin/faults", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := envFor(t, "memory")
			for k, v := range tt.env {
				env[k] = v
			}
			srv := startServer(t, env)
			if got := srv.adminCall("GET", tt.path, tt.token, ""); got != tt.want {
				t.Fatalf("got status %d, want %d", got, tt.want)
			}
		})
	}
}

// A fault switched on through the admin API breaks sends as it says, shows
// in the metrics, and switching it off restores service.
func TestInjectedSendErrorsRefuseSendsUntilCleared(t *testing.T) {
	t.Parallel()
	const token = "admin-token-for-tests"
	env := envFor(t, "memory")
	env["PARLEY_ADMIN_TOKEN"], env["PARLEY_FAULTS"] = token, "on"
	srv := startServer(t, env)
	alice := srv.mustSignUp("alice")
	room := srv.mustCreateRoom(alice.Token, "lobby")
	c := srv.dial(alice.Token)
	c.join(room.ID, nil)

	if got := srv.adminCall("PUT", "/admin/faults/send_errors", token, `{"rate":1}`); got != http.StatusOK {
		t.Fatalf("switching the fault on: got status %d, want 200", got)
	}
	if got := srv.metricLabelled("parley_fault_active", `fault="send_errors"`); got != 1 {
		t.Fatalf("got parley_fault_active %v, want 1", got)
	}
	c.send(map[string]any{"type": "send", "room": room.ID, "client_id": "c1", "body": "hi"})
	if f := c.expect("error"); f.Code != "unavailable" || f.Ref != "c1" {
		t.Fatalf("got %+v, want unavailable for c1", f)
	}
	if got := srv.adminCall("DELETE", "/admin/faults/send_errors", token, ""); got != http.StatusNoContent {
		t.Fatalf("switching the fault off: got status %d, want 204", got)
	}
	c.send(map[string]any{"type": "send", "room": room.ID, "client_id": "c1", "body": "hi"})
	c.expect("message")
	if f := c.expect("ack"); f.ClientID != "c1" {
		t.Fatalf("got %+v, want the ack of c1", f)
	}
	if got := srv.metricLabelled("parley_sends_total", `outcome="failed",reason="unavailable",transport="ws"`); got != 1 {
		t.Fatalf("got %v failed sends, want 1", got)
	}
}

// An injected slow fan-out, which makes the bus wait, ends when the server
// shuts down instead of holding the shutdown up for its whole delay.
func TestShutdownIsNotHeldUpByASlowFanout(t *testing.T) {
	t.Parallel()
	const token = "admin-token-for-tests"
	env := envFor(t, "postgres")
	env["REDIS_URL"] = testenv.RedisURL(t)
	env["PARLEY_ADMIN_TOKEN"], env["PARLEY_FAULTS"] = token, "on"
	a, b := startServer(t, env), startServer(t, env)
	alice, bob := a.mustSignUp("alice"), b.mustSignUp("bob")
	room := a.mustCreateRoom(alice.Token, "lobby")
	onB := b.dial(bob.Token)
	onB.join(room.ID, nil)
	testenv.Eventually(t, "replica B to subscribe", func() bool { return b.metric("parley_bus_subscribed_channels") >= 1 })
	if got := b.adminCall("PUT", "/admin/faults/slow_fanout", token, `{"delay":"60s"}`); got != http.StatusOK {
		t.Fatalf("switching the fault on: got status %d, want 200", got)
	}
	if code := a.call("POST", "/api/v1/rooms/"+room.ID+"/messages", alice.Token, map[string]string{"client_id": "c1", "body": "hi"}, nil); code != http.StatusCreated {
		t.Fatalf("send: got status %d, want 201", code)
	}
	testenv.Eventually(t, "B's bus to be held in the delay", func() bool {
		return b.metricLabelled("parley_fault_injections_total", `fault="slow_fanout"`) >= 1
	})
	stopped := make(chan error, 1)
	go func() { stopped <- b.stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second): // half the delay: the delay did not hold it
		t.Fatal("replica B did not stop within 30s while a 60s slow fan-out was injected")
	}
}
