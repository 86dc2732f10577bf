package systemtest

import (
	"net/url"
	"testing"

	"github.com/parleychat/parley/internal/testenv"
)

// Replicas run in process, sharing PostgreSQL and Redis: what crosses from
// one to another, and what a replica does while Redis is away.

// A replica whose Redis is away at start still serves its own members, and
// /readyz does not take it out of service for that.
func TestAReplicaStartsAndServesWhileRedisIsAway(t *testing.T) {
	t.Parallel()
	env := envFor(t, "postgres")
	rd, err := url.Parse(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	redis := testenv.StartProxy(t, rd.Host)
	redis.Cut()
	rd.Host = redis.Addr()
	env["REDIS_URL"] = rd.String()
	srv := startServer(t, env) // waits for /readyz 200

	alice := srv.mustSignUp("alice")
	room := srv.mustCreateRoom(alice.Token, "lobby")
	c := srv.dial(alice.Token)
	c.join(room.ID, nil)
	c.send(map[string]any{"type": "send", "room": room.ID, "client_id": "c1", "body": "hi"})
	if f := c.expect("message"); f.ClientID != "c1" {
		t.Fatalf("got %+v, want alice's own message", f)
	}
	redis.Restore()
	testenv.Eventually(t, "the bus to connect once Redis is back", func() bool { return srv.metric("parley_bus_subscribed_channels") >= 1 })
}

// Presence and typing cross replicas: alice on one sees bob on the other
// come online, type, and leave.
func TestPresenceAndTypingCrossReplicas(t *testing.T) {
	t.Parallel()
	env := envFor(t, "postgres")
	env["REDIS_URL"] = testenv.RedisURL(t)
	a, b := startServer(t, env), startServer(t, env)
	alice, bob := a.mustSignUp("alice"), b.mustSignUp("bob")
	room := a.mustCreateRoom(alice.Token, "lobby")

	onA := a.dial(alice.Token)
	onA.join(room.ID, nil)
	testenv.Eventually(t, "replica A to subscribe", func() bool { return a.metric("parley_bus_subscribed_channels") >= 1 })
	onB := b.dial(bob.Token)
	joined := onB.join(room.ID, nil)
	if f := onA.expect("presence"); f.User.Username != "bob" || f.Status != "online" {
		t.Fatalf("got %+v, want bob online", f)
	}
	// Bob's replica learns of alice from A's roster, which may come before
	// or after bob's joined frame.
	if !listed(joined.Members, "alice") {
		if f := onB.expect("presence"); f.User.Username != "alice" || f.Status != "online" {
			t.Fatalf("got %+v, want alice online", f)
		}
	}

	onB.send(map[string]any{"type": "typing", "room": room.ID})
	if f := onA.expect("typing"); f.User.Username != "bob" {
		t.Fatalf("got %+v, want bob typing", f)
	}
	onB.send(map[string]any{"type": "leave", "room": room.ID})
	onB.expect("left")
	for {
		f := onA.expect("presence")
		if f.User.Username == "bob" && f.Status == "offline" {
			break
		}
	}
}
