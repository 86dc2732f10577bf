package storetest

import (
	"errors"
	"maps"
	"testing"

	"github.com/parleychat/parley/server/internal/chat"
)

func testRooms(t *testing.T, open opener) {
	t.Run("a created room is returned as stored and found by id", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		want := chat.Room{ID: chat.NewID(f.clock), Name: "General café ☕", CreatedAt: f.tick()}

		got, err := f.store.CreateRoom(f.ctx, want)
		if err != nil {
			t.Fatalf("CreateRoom: %v", err)
		}
		if diff := roomDiff(got, want); diff != "" {
			t.Errorf("CreateRoom: %s", diff)
		}
		if diff := roomDiff(f.mustGetRoom(want.ID), want); diff != "" {
			t.Errorf("Room: %s", diff)
		}
	})

	t.Run("an unknown room is not found", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		f.mustCreateRoom("general")

		_, err := f.store.Room(f.ctx, chat.NewID(f.clock))
		if !errors.Is(err, chat.ErrNotFound) {
			t.Fatalf("Room(unknown): got error %v, want ErrNotFound", err)
		}
	})

	for _, tc := range []struct {
		name, first, second string
	}{
		{"a taken room name conflicts", "General", "General"},
		{"a room name taken in another letter case conflicts", "General", "gENERAL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := openFixture(t, open)
			first := f.mustCreateRoom(tc.first)

			_, err := f.store.CreateRoom(f.ctx, chat.Room{ID: chat.NewID(f.clock), Name: tc.second, CreatedAt: f.tick()})
			if !errors.Is(err, chat.ErrConflict) {
				t.Fatalf("CreateRoom(%q) after %q: got error %v, want ErrConflict", tc.second, tc.first, err)
			}
			f.wantRooms(first)
		})
	}

	t.Run("an empty store lists no rooms", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		f.wantRooms()
	})

	t.Run("rooms lists every room", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		f.wantRooms(f.mustCreateRoom("general"), f.mustCreateRoom("random"), f.mustCreateRoom("dev"))
	})

	t.Run("last seq moves with appends", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		alice := f.mustCreateUser("alice")
		busy, quiet := f.mustCreateRoom("busy"), f.mustCreateRoom("quiet")
		if got := f.mustGetRoom(busy.ID).LastSeq; got != 0 {
			t.Fatalf("LastSeq of a new room: got %d, want 0", got)
		}

		for range 3 {
			f.mustSend(busy, alice, "hello")
		}
		f.mustSend(quiet, alice, "hello")

		if got := f.mustGetRoom(busy.ID).LastSeq; got != 3 {
			t.Errorf("Room(busy).LastSeq after 3 appends: got %d, want 3", got)
		}
		busy.LastSeq, quiet.LastSeq = 3, 1
		f.wantRooms(busy, quiet)
	})

	t.Run("last seqs", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		alice := f.mustCreateUser("alice")
		busy, quiet, empty := f.mustCreateRoom("busy"), f.mustCreateRoom("quiet"), f.mustCreateRoom("empty")
		for range 3 {
			f.mustSend(busy, alice, "hello")
		}
		f.mustSend(quiet, alice, "hello")
		ghost := chat.NewID(f.clock)

		for _, tc := range []struct {
			name string
			ids  []string
			want map[string]int64
		}{
			{"each room has its own after appends", []string{busy.ID, quiet.ID}, map[string]int64{busy.ID: 3, quiet.ID: 1}},
			{"an empty room has 0", []string{empty.ID}, map[string]int64{empty.ID: 0}},
			{"an unknown room is left out", []string{ghost, busy.ID, empty.ID}, map[string]int64{busy.ID: 3, empty.ID: 0}},
			{"only unknown rooms give an empty map", []string{ghost}, map[string]int64{}},
			{"a room listed twice is there once", []string{quiet.ID, quiet.ID}, map[string]int64{quiet.ID: 1}},
			{"no rooms give an empty map", nil, map[string]int64{}},
			{"an empty list gives an empty map", []string{}, map[string]int64{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := f.store.LastSeqs(f.ctx, tc.ids)
				if err != nil {
					t.Fatalf("LastSeqs(%q): %v", tc.ids, err)
				}
				// The map is never nil, even when empty, so that a caller
				// may add to it without checking first.
				if got == nil || !maps.Equal(got, tc.want) {
					t.Errorf("LastSeqs(%q): got %#v, want %v", tc.ids, got, tc.want)
				}
			})
		}
	})
}

// wantRooms checks that Rooms lists exactly want, in any order.
func (f *fixture) wantRooms(want ...chat.Room) {
	f.t.Helper()
	got, err := f.store.Rooms(f.ctx)
	if err != nil {
		f.t.Fatalf("Rooms: %v", err)
	}
	if len(got) != len(want) {
		f.t.Fatalf("Rooms: got %d rooms %+v, want %d %+v", len(got), got, len(want), want)
	}
	byID := make(map[string]chat.Room, len(got))
	for _, r := range got {
		byID[r.ID] = r
	}
	for _, w := range want {
		g, ok := byID[w.ID]
		if !ok {
			f.t.Errorf("Rooms: room %q missing from %+v", w.Name, got)
			continue
		}
		if diff := roomDiff(g, w); diff != "" {
			f.t.Errorf("Rooms: room %q: %s", w.Name, diff)
		}
	}
}
