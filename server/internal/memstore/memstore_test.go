package memstore_test

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/chat/storetest"
	"github.com/parleychat/parley/server/internal/memstore"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) chat.Store {
		s := memstore.New(memstore.Options{})
		t.Cleanup(s.Close)
		return s
	})
}

func TestHistoryLimitEvictsOldest(t *testing.T) {
	t.Parallel()
	// A room that keeps 5 messages after 8 were sent keeps seqs 4..8.
	s, room, alice := mustOpenRoom(t, memstore.Options{HistoryLimit: 5})
	for i := range 8 {
		mustSend(t, s, room, alice, fmt.Sprint("c", i+1))
	}

	for _, tc := range []struct {
		name        string
		page        chat.Page
		wantSeqs    []int64
		wantHasMore bool
	}{
		{"forward from the start begins at the oldest kept", chat.Page{Limit: 10}, []int64{4, 5, 6, 7, 8}, false},
		{"forward from an evicted seq begins at the oldest kept", chat.Page{Cursor: 2, Limit: 2}, []int64{4, 5}, true},
		{"forward from the oldest kept", chat.Page{Cursor: 4, Limit: 10}, []int64{5, 6, 7, 8}, false},
		{"backward newest page", chat.Page{Backward: true, Cursor: math.MaxInt64, Limit: 3}, []int64{6, 7, 8}, true},
		{"backward stops at the oldest kept", chat.Page{Backward: true, Cursor: 7, Limit: 10}, []int64{4, 5, 6}, false},
		{"backward down to exactly the oldest kept", chat.Page{Backward: true, Cursor: 6, Limit: 2}, []int64{4, 5}, false},
		{"backward from the oldest kept finds nothing", chat.Page{Backward: true, Cursor: 4, Limit: 10}, nil, false},
		{"backward within the evicted range finds nothing", chat.Page{Backward: true, Cursor: 3, Limit: 10}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs, hasMore, err := s.History(t.Context(), room.ID, tc.page)
			if err != nil {
				t.Fatalf("History(%+v): %v", tc.page, err)
			}
			if got := seqsOf(msgs); !slices.Equal(got, tc.wantSeqs) {
				t.Errorf("History(%+v): got seqs %v, want %v", tc.page, got, tc.wantSeqs)
			}
			if hasMore != tc.wantHasMore {
				t.Errorf("History(%+v): got hasMore=%v, want %v", tc.page, hasMore, tc.wantHasMore)
			}
		})
	}

	t.Run("last seq keeps counting", func(t *testing.T) {
		r, err := s.Room(t.Context(), room.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.LastSeq != 8 {
			t.Errorf("LastSeq: got %d, want 8", r.LastSeq)
		}
	})
}

// Idempotency lasts only as long as the original message is kept: an evicted
// client id comes back as a new message with a new seq, while a kept one is
// still recognised.
func TestIdempotencyAfterEviction(t *testing.T) {
	t.Parallel()
	s, room, alice := mustOpenRoom(t, memstore.Options{HistoryLimit: 2})
	for _, id := range []string{"a", "b", "c"} { // "a" is evicted by "c"
		mustSend(t, s, room, alice, id)
	}

	for _, tc := range []struct {
		clientID    string
		wantCreated bool
		wantSeq     int64
	}{
		{"c", false, 3}, // still kept: the original
		{"a", true, 4},  // evicted: accepted as new, evicting "b"
		{"b", true, 5},  // evicted by the repeat of "a"
		{"a", false, 4}, // the new "a" is kept
	} {
		msg, created, err := s.Append(t.Context(), draft(room, alice, tc.clientID))
		if err != nil {
			t.Fatalf("Append(%q): %v", tc.clientID, err)
		}
		if created != tc.wantCreated || msg.Seq != tc.wantSeq {
			t.Errorf("Append(%q): got created=%v seq %d, want created=%v seq %d",
				tc.clientID, created, msg.Seq, tc.wantCreated, tc.wantSeq)
		}
	}
}

// TestConcurrentUse mixes every kind of call across rooms, with rooms
// evicting as they go, for the race detector; then it checks that no append
// was lost.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	const rooms, writers, perWriter, keep = 8, 4, 200, 100
	s := memstore.New(memstore.Options{HistoryLimit: keep})
	ctx := t.Context()
	alice := chat.User{ID: chat.NewID(time.Now()), Username: "alice"}
	if err := s.CreateUser(ctx, alice, "hash"); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	for r := range rooms {
		room := chat.Room{ID: fmt.Sprint("room", r), Name: fmt.Sprint("Room ", r), CreatedAt: time.Now()}
		if _, err := s.CreateRoom(ctx, room); err != nil {
			t.Fatal(err)
		}
		for w := range writers {
			wg.Go(func() {
				for i := range perWriter {
					d := draft(room, alice, fmt.Sprint("w", w, "-", i))
					if _, _, err := s.Append(ctx, d); err != nil {
						t.Errorf("Append: %v", err)
						return
					}
				}
			})
		}
		wg.Go(func() {
			for range perWriter {
				if _, _, err := s.History(ctx, room.ID, chat.Page{Backward: true, Cursor: math.MaxInt64, Limit: 50}); err != nil {
					t.Errorf("History: %v", err)
					return
				}
				if _, err := s.Rooms(ctx); err != nil {
					t.Errorf("Rooms: %v", err)
					return
				}
			}
		})
		wg.Go(func() {
			for i := range perWriter {
				now := time.Now()
				tk := chat.Ticket{Hash: fmt.Sprint(room.ID, "-", i), User: alice, Expires: now.Add(time.Minute)}
				if err := s.SaveTicket(ctx, tk); err != nil {
					t.Errorf("SaveTicket: %v", err)
					return
				}
				if _, err := s.TakeTicket(ctx, tk.Hash, now); err != nil {
					t.Errorf("TakeTicket: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()

	got, err := s.Rooms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got {
		if want := int64(writers * perWriter); r.LastSeq != want {
			t.Errorf("room %s: got LastSeq %d, want %d", r.Name, r.LastSeq, want)
		}
		msgs, _, err := s.History(ctx, r.ID, chat.Page{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := seqsOf(msgs), seqRange(r.LastSeq-keep+1, r.LastSeq); !slices.Equal(got, want) {
			t.Errorf("room %s: got kept seqs %v, want %v", r.Name, got, want)
		}
	}
}

func TestRoomsListsInCreationOrder(t *testing.T) {
	t.Parallel()
	s := memstore.New(memstore.Options{})
	names := []string{"zeta", "alpha", "mu"}
	start := time.Now()
	for i, name := range names {
		r := chat.Room{ID: chat.NewID(start), Name: name, CreatedAt: start.Add(time.Duration(i) * time.Second)}
		if _, err := s.CreateRoom(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}

	rooms, err := s.Rooms(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rooms {
		got = append(got, r.Name)
	}
	if !slices.Equal(got, names) {
		t.Errorf("Rooms: got %v, want %v", got, names)
	}
}

func mustOpenRoom(t *testing.T, opts memstore.Options) (*memstore.Store, chat.Room, chat.User) {
	t.Helper()
	s := memstore.New(opts)
	t.Cleanup(s.Close)
	now := time.Now()
	alice := chat.User{ID: chat.NewID(now), Username: "alice"}
	if err := s.CreateUser(t.Context(), alice, "hash"); err != nil {
		t.Fatal(err)
	}
	room, err := s.CreateRoom(t.Context(), chat.Room{ID: chat.NewID(now), Name: "general", CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	return s, room, alice
}

func draft(room chat.Room, u chat.User, clientID string) chat.Draft {
	now := time.Now()
	return chat.Draft{ID: chat.NewID(now), Room: room.ID, ClientID: clientID, User: u, Body: "hello", TS: now}
}

func mustSend(t *testing.T, s *memstore.Store, room chat.Room, u chat.User, clientID string) chat.Message {
	t.Helper()
	msg, created, err := s.Append(t.Context(), draft(room, u, clientID))
	if err != nil || !created {
		t.Fatalf("Append(%q): got created=%v, error %v; want created, no error", clientID, created, err)
	}
	return msg
}

func seqRange(lo, hi int64) []int64 {
	var seqs []int64
	for s := lo; s <= hi; s++ {
		seqs = append(seqs, s)
	}
	return seqs
}

func seqsOf(msgs []chat.Message) []int64 {
	var seqs []int64
	for _, m := range msgs {
		seqs = append(seqs, m.Seq)
	}
	return seqs
}
