package storetest

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

// testRoomPages checks RoomsAfter, the room list read a page at a time.
func testRoomPages(t *testing.T, open opener) {
	t.Run("pages visit every room once, in id order", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		// Ids a millisecond apart, created in a shuffled order: the pages
		// follow the ids, not the order of creation.
		want := make([]chat.Room, 23)
		for i := range want {
			want[i] = chat.Room{ID: chat.NewID(f.clock.Add(time.Duration(i) * time.Millisecond)), Name: "room " + string(rune('a'+i)), CreatedAt: f.tick()}
		}
		for _, i := range rand.Perm(len(want)) {
			if _, err := f.store.CreateRoom(f.ctx, want[i]); err != nil {
				t.Fatalf("CreateRoom(%q): %v", want[i].Name, err)
			}
		}
		slices.SortFunc(want, func(a, b chat.Room) int { return strings.Compare(a.ID, b.ID) })

		var got []chat.Room
		after := ""
		for pages := 0; ; pages++ {
			if pages > len(want) {
				t.Fatalf("still paging after %d pages of 5: got %d rooms so far", pages, len(got))
			}
			page := f.mustReadRoomsAfter(after, 5)
			if len(page) > 5 {
				t.Fatalf("RoomsAfter(%q, 5): got %d rooms, want at most 5", after, len(page))
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			after = page[len(page)-1].ID
		}
		if len(got) != len(want) {
			t.Fatalf("paging by 5: got %d rooms %v, want each of the %d once", len(got), namesOf(got), len(want))
		}
		for i := range want {
			if diff := roomDiff(got[i], want[i]); diff != "" {
				t.Errorf("room %d of the pages: %s", i, diff)
			}
		}
	})

	t.Run("a page holds at most the limit and starts after the cursor", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		// Ids 10ms apart, so that there is room for others between them.
		var rooms []chat.Room
		for i, name := range []string{"a", "b", "c", "d"} {
			rooms = append(rooms, f.mustCreateRoomAt(name, f.clock.Add(time.Duration(10*(i+1))*time.Millisecond)))
		}
		// A cursor need not be a room's: one between b and c, say, of a
		// room since deleted or on another replica's clock.
		between := chat.NewID(rooms[1].CreatedAt.Add(5 * time.Millisecond))
		for _, tc := range []struct {
			name  string
			after string
			limit int
			want  []chat.Room
		}{
			{"the first page", "", 2, rooms[:2]},
			{"a page after a room", rooms[1].ID, 2, rooms[2:]},
			{"a page after the last room is empty", rooms[3].ID, 2, nil},
			{"a page after an id that is no room's", between, 10, rooms[2:]},
			{"a limit past the end gives the rest", rooms[0].ID, 100, rooms[1:]},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got := f.mustReadRoomsAfter(tc.after, tc.limit)
				if !slices.Equal(idsOf(got), idsOf(tc.want)) {
					t.Errorf("RoomsAfter(%q, %d): got %v, want %v", tc.after, tc.limit, namesOf(got), namesOf(tc.want))
				}
			})
		}
	})

	t.Run("a page carries each room's last seq", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		alice := f.mustCreateUser("alice")
		room := f.mustCreateRoom("busy")
		f.mustSend(room, alice, "one")
		f.mustSend(room, alice, "two")
		room.LastSeq = 2
		got := f.mustReadRoomsAfter("", 10)
		if len(got) != 1 {
			t.Fatalf("RoomsAfter: got %d rooms, want 1", len(got))
		}
		if diff := roomDiff(got[0], room); diff != "" {
			t.Errorf("RoomsAfter: %s", diff)
		}
	})

	t.Run("an empty store has an empty first page", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		if got := f.mustReadRoomsAfter("", 10); len(got) != 0 {
			t.Errorf("RoomsAfter: got %v, want no rooms", namesOf(got))
		}
	})
}

// mustCreateRoomAt creates a room whose id is made at the time it is
// created, so that rooms created in turn sort in turn.
func (f *fixture) mustCreateRoomAt(name string, at time.Time) chat.Room {
	f.t.Helper()
	r, err := f.store.CreateRoom(f.ctx, chat.Room{ID: chat.NewID(at), Name: name, CreatedAt: at})
	if err != nil {
		f.t.Fatalf("CreateRoom(%q): %v", name, err)
	}
	return r
}

func (f *fixture) mustReadRoomsAfter(after string, limit int) []chat.Room {
	f.t.Helper()
	rooms, err := f.store.RoomsAfter(f.ctx, after, limit)
	if err != nil {
		f.t.Fatalf("RoomsAfter(%q, %d): %v", after, limit, err)
	}
	return rooms
}

func idsOf(rooms []chat.Room) []string {
	ids := make([]string, len(rooms))
	for i, r := range rooms {
		ids[i] = r.ID
	}
	return ids
}

func namesOf(rooms []chat.Room) []string {
	names := make([]string, len(rooms))
	for i, r := range rooms {
		names[i] = r.Name
	}
	return names
}
