package chat_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

// countTyping counts the typing frames of name that r received.
func countTyping(r *recorder, name string) int {
	n := 0
	for _, f := range r.got() {
		if f == "typing "+name {
			n++
		}
	}
	return n
}

// One user with 150 connections sending typing at 19/s on each (the attack
// of issue 16) reaches the other members once per interval, not 2,850 times
// a second.
func TestTypingIsMergedPerUserAndRoom(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, chat.HubOptions{TypingInterval: time.Second})
		// The watcher's queue holds 256 frames, like a connection's: the
		// unmerged flood overflows it within the first tenth of a second.
		watcher := &recorder{cap: 256}
		f.mustJoin(t, watcher, alice, nil)
		const sockets, perSecond, seconds = 150, 19, 3
		subs := make([]*recorder, sockets)
		for i := range subs {
			subs[i] = &recorder{}
			f.mustJoin(t, subs[i], bob, nil)
		}
		for range seconds * perSecond {
			for _, sub := range subs {
				if err := f.svc.Typing(f.room.ID, sub, bob); err != nil {
					t.Fatal(err)
				}
			}
			advance(time.Second / perSecond)
		}
		if watcher.isSlow() {
			t.Fatalf("the watcher was dropped as too slow after %d frames", len(watcher.got()))
		}
		// One at the start and one each time an interval has passed.
		if got := countTyping(watcher, "bob"); got < seconds || got > seconds+1 {
			t.Fatalf("got %d typing frames in %ds, want one a second (%d or %d)", got, seconds, seconds, seconds+1)
		}
	})
}

// Merging is per user and per room: another user's typing is not held back
// by bob's.
func TestTypingOfOneUserDoesNotMergeAnothers(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, chat.HubOptions{TypingInterval: time.Second})
		var watcher, b, c recorder
		carol := chat.User{ID: "u-carol", Username: "carol"}
		f.mustJoin(t, &watcher, alice, nil)
		f.mustJoin(t, &b, bob, nil)
		f.mustJoin(t, &c, carol, nil)
		for _, typist := range []struct {
			sub  *recorder
			user chat.User
		}{{&b, bob}, {&c, carol}, {&b, bob}, {&c, carol}} {
			if err := f.svc.Typing(f.room.ID, typist.sub, typist.user); err != nil {
				t.Fatal(err)
			}
		}
		if gotB, gotC := countTyping(&watcher, "bob"), countTyping(&watcher, "carol"); gotB != 1 || gotC != 1 {
			t.Fatalf("got %d typing frames of bob and %d of carol, want 1 each", gotB, gotC)
		}
	})
}

// A user typing through two replicas at once reaches a member once per
// interval: the replicas merge what they receive as well as what they send.
func TestTypingIsMergedAcrossReplicas(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 2, chat.HubOptions{TypingInterval: time.Second, RosterInterval: time.Hour})
		var a, b0, b1 recorder
		c.mustJoin(t, 0, &a, alice)
		c.mustJoin(t, 0, &b0, bob)
		c.mustJoin(t, 1, &b1, bob)
		sees(t, &a, "alice", "bob")
		const seconds = 3
		for i := range seconds * 10 {
			// Alternating replicas, so that each replica's own merge alone
			// would let two frames a second through.
			sub, rep := chat.Subscriber(&b0), 0
			if i%2 == 1 {
				sub, rep = &b1, 1
			}
			if err := c.replicas[rep].svc.Typing(c.room.ID, sub, bob); err != nil {
				t.Fatal(err)
			}
			advance(100 * time.Millisecond)
		}
		if got := countTyping(&a, "bob"); got < seconds || got > seconds+1 {
			t.Fatalf("got %d typing frames in %ds, want one a second (%d or %d)", got, seconds, seconds, seconds+1)
		}
	})
}

// Typing frames spaced by the interval all go through: merging never holds
// back a client that sends typing as the protocol suggests.
func TestTypingSpacedByTheIntervalIsNotMerged(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, chat.HubOptions{TypingInterval: time.Second})
		var watcher, b recorder
		f.mustJoin(t, &watcher, alice, nil)
		f.mustJoin(t, &b, bob, nil)
		for range 5 {
			if err := f.svc.Typing(f.room.ID, &b, bob); err != nil {
				t.Fatal(err)
			}
			advance(time.Second)
		}
		if got := countTyping(&watcher, "bob"); got != 5 {
			t.Fatalf("got %d typing frames, want all %d", got, 5)
		}
	})
}
