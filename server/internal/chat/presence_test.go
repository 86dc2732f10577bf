package chat_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleychat/parley/internal/testenv"
	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/memstore"
)

func TestHubPresenceCountsUsersNotConnections(t *testing.T) {
	t.Parallel()
	f := newFixture(t, chat.HubOptions{})
	var watcher, bob1, bob2 recorder
	f.mustJoin(t, &watcher, alice, nil)
	f.mustJoin(t, &bob1, bob, nil)
	f.mustJoin(t, &bob2, bob, nil) // second tab: bob is already online
	f.svc.Leave(f.room.ID, &bob1)  // bob is still online in the other tab
	f.svc.Leave(f.room.ID, &bob2)
	got := watcher.got()
	want := []string{"joined 0 1", "online bob", "offline bob"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got frames %q, want %q", got, want)
	}
	if got := bob2.got()[0]; got != "joined 0 2" {
		t.Fatalf("got %q for the second tab, want it to list both users", got)
	}
}

func TestHubTypingReachesOtherUsersOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t, chat.HubOptions{})
	var a, b recorder
	f.mustJoin(t, &a, alice, nil)
	f.mustJoin(t, &b, bob, nil)
	if err := f.svc.Typing(f.room.ID, &a, alice); err != nil {
		t.Fatal(err)
	}
	if got := b.got(); got[len(got)-1] != "typing alice" {
		t.Fatalf("got bob's frames %q, want typing alice last", got)
	}
	for _, fr := range a.got() {
		if strings.HasPrefix(fr, "typing") {
			t.Fatalf("got %q sent back to the typist", fr)
		}
	}
}

// rosterCodec lists the members' names in joined frames, "joined last a,b",
// so that tests can follow who a client believes is online.
type rosterCodec struct{ textCodec }

func (rosterCodec) Joined(_ string, last int64, members []chat.User) []byte {
	var names []string
	for _, u := range members {
		names = append(names, u.Username)
	}
	slices.Sort(names)
	return fmt.Appendf(nil, "joined %d %s", last, strings.Join(names, ","))
}

// online returns who the member believes is online, as a client would work
// it out: the joined frame's list, then presence frames.
func online(r *recorder) []string {
	set := make(map[string]bool)
	for _, f := range r.got() {
		if rest, ok := strings.CutPrefix(f, "joined "); ok {
			_, names, _ := strings.Cut(rest, " ")
			clear(set)
			for n := range strings.SplitSeq(names, ",") {
				if n != "" {
					set[n] = true
				}
			}
		} else if n, ok := strings.CutPrefix(f, "online "); ok {
			set[n] = true
		} else if n, ok := strings.CutPrefix(f, "offline "); ok {
			delete(set, n)
		}
	}
	out := slices.Collect(maps.Keys(set))
	slices.Sort(out)
	return out
}

// sees waits until the member believes exactly users are online.
func sees(t *testing.T, r *recorder, users ...string) {
	t.Helper()
	slices.Sort(users)
	deadline := time.Now().Add(5 * time.Second)
	synctest.Wait()
	for !slices.Equal(online(r), users) {
		if !time.Now().Before(deadline) {
			t.Fatalf("member sees %q online, want %q", online(r), users)
		}
		advance(time.Millisecond)
	}
}

func TestPresenceSpansReplicas(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, chat.HubOptions{RosterInterval: time.Hour})
		var onA, onB recorder
		c.mustJoin(t, 0, &onA, alice)
		c.mustJoin(t, 1, &onB, bob)
		sees(t, &onA, "alice", "bob")
		// Bob's replica learns of alice from the roster her replica sends when
		// it hears bob's replica say hello, before or after bob's joined frame.
		sees(t, &onB, "alice", "bob")

		// Bob opens a second connection on another replica, then closes the
		// first: he stays online for alice throughout.
		var bobAgain recorder
		c.mustJoin(t, 2, &bobAgain, bob)
		sees(t, &bobAgain, "alice", "bob")
		c.replicas[1].svc.Leave(c.room.ID, &onB)
		advance(time.Second) // gives a wrong offline every chance to arrive
		if slices.Contains(onA.got(), "offline bob") {
			t.Fatalf("alice saw bob go offline while he was still on replica 2: %q", onA.got())
		}
		c.replicas[2].svc.Leave(c.room.ID, &bobAgain)
		sees(t, &onA, "alice")
	})
}

func TestAJoinedFrameListsUsersOnOtherReplicas(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 2, chat.HubOptions{RosterInterval: time.Hour})
		var a, b1, b2 recorder
		c.mustJoin(t, 0, &a, alice)
		c.mustJoin(t, 1, &b1, bob)
		sees(t, &b1, "alice", "bob")
		carol := chat.User{ID: "u-carol", Username: "carol"}
		c.mustJoin(t, 1, &b2, carol)
		if got := b2.got(); len(got) == 0 || got[0] != "joined 0 alice,bob,carol" {
			t.Fatalf("got frames %q, want the joined frame to list alice, bob and carol first", got)
		}
	})
}

func TestTypingSpansReplicas(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 2, chat.HubOptions{})
		var a, b recorder
		c.mustJoin(t, 0, &a, alice)
		c.mustJoin(t, 1, &b, bob)
		sees(t, &a, "alice", "bob")
		if err := c.replicas[1].svc.Typing(c.room.ID, &b, bob); err != nil {
			t.Fatal(err)
		}
		stepUntil(t, "alice to see bob typing", has(&a, "typing bob"))
		if slices.Contains(b.got(), "typing bob") {
			t.Fatalf("bob was told he is typing: %q", b.got())
		}
	})
}

func TestUsersOfAReplicaThatVanishedGoOffline(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 2, chat.HubOptions{RosterInterval: 20 * time.Millisecond})
		var a, b recorder
		c.mustJoin(t, 0, &a, alice)
		c.mustJoin(t, 1, &b, bob)
		sees(t, &a, "alice", "bob")

		c.replicas[1].crash() // bob never leaves: his replica is just gone
		sees(t, &a, "alice")
		if st := c.replicas[0].hub.Stats(); st.RostersExpired == 0 {
			t.Fatalf("got %d expired rosters, want at least 1", st.RostersExpired)
		}
	})
}

func TestRostersKeepALiveReplicasUsersOnline(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const interval = 100 * time.Millisecond
		c := newCluster(t, 2, chat.HubOptions{RosterInterval: interval})
		var a, b recorder
		c.mustJoin(t, 0, &a, alice)
		c.mustJoin(t, 1, &b, bob)
		sees(t, &a, "alice", "bob")
		advance(10 * interval) // well past a roster's life
		if slices.Contains(a.got(), "offline bob") {
			t.Fatalf("alice saw bob go offline while his replica kept sending rosters: %q", a.got())
		}
	})
}

// stalledSeqs is a store whose LastSeqs hangs until its caller gives up, as
// a database that stopped answering does.
type stalledSeqs struct{ chat.Store }

func (stalledSeqs) LastSeqs(ctx context.Context, _ []string) (map[string]int64, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// A replica whose store stalls keeps sending rosters: its users must not
// look gone to the others.
func TestAStalledStoreDoesNotHoldRostersBack(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const interval = 100 * time.Millisecond
		c := newClusterOf(t, 2, chat.HubOptions{RosterInterval: interval, CatchUpInterval: interval},
			func(i int, s chat.Store) chat.Store {
				if i == 0 {
					return stalledSeqs{s}
				}
				return s
			})
		var a, b recorder
		c.mustJoin(t, 0, &a, alice)
		c.mustJoin(t, 1, &b, bob)
		sees(t, &b, "alice", "bob")
		advance(10 * interval) // while catch-ups hang
		if slices.Contains(b.got(), "offline alice") {
			t.Fatalf("bob saw alice go offline while her replica's store stalled: %q", b.got())
		}
	})
}

// A replica that leaves a room cleanly is not counted as a replica gone.
func TestALeaveIsNotAnExpiredRoster(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const interval = 50 * time.Millisecond
		c := newCluster(t, 2, chat.HubOptions{RosterInterval: interval})
		var a, b recorder
		c.mustJoin(t, 0, &a, alice)
		c.mustJoin(t, 1, &b, bob)
		sees(t, &a, "alice", "bob")
		c.replicas[1].svc.Leave(c.room.ID, &b)
		sees(t, &a, "alice")
		advance(6 * interval) // twice a roster's life
		if n := c.replicas[0].hub.Stats().RostersExpired; n != 0 {
			t.Fatalf("got %d expired rosters after a clean leave, want 0", n)
		}
	})
}

// Rosters age by the hub's clock: the roster loop's ticks only say when to
// look at it.
func TestRostersExpireByTheHubsClock(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const interval = time.Second
		clock := testenv.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
		store := memstore.New(memstore.Options{})
		hub := chat.NewHub(store, rosterCodec{}, chat.HubOptions{
			Bus: newBoundedBus(t, 100), RosterInterval: interval, CatchUpInterval: time.Hour, Now: clock.Now,
		})
		t.Cleanup(hub.Close)
		svc := chat.NewService(store, hub, nil)
		room, err := svc.CreateRoom(context.Background(), "lobby")
		if err != nil {
			t.Fatal(err)
		}
		var a recorder
		if err := svc.Join(context.Background(), room.ID, &a, alice, nil); err != nil {
			t.Fatal(err)
		}
		hub.Receive(context.Background(), chat.Event{Kind: chat.EventRoster, Room: room.ID, Origin: "replica-x", Users: []chat.User{bob}})
		sees(t, &a, "alice", "bob")

		advance(10 * interval) // ticks, while the hub's clock stands still
		if got := online(&a); !slices.Equal(got, []string{"alice", "bob"}) {
			t.Fatalf("member sees %q online after ten intervals of ticks on a stopped clock, want alice and bob", got)
		}
		clock.Advance(4 * interval) // past a roster's life of three intervals
		sees(t, &a, "alice")
		if n := hub.Stats().RostersExpired; n != 1 {
			t.Fatalf("got %d expired rosters, want 1", n)
		}
	})
}
