package storetest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/parleychat/parley/server/internal/chat"
)

func testHistory(t *testing.T, open opener) {
	// The paging cases only read, so they share one room of ten messages.
	t.Run("pages of ten messages", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		room, sent := f.mustFillRoom("general", 10)

		for _, tc := range []struct {
			name        string
			page        chat.Page
			wantSeqs    []int64
			wantHasMore bool
		}{
			{"forward from the start", chat.Page{Cursor: 0, Limit: 3}, seqRange(1, 3), true},
			{"forward from the middle", chat.Page{Cursor: 3, Limit: 3}, seqRange(4, 6), true},
			{"forward up to exactly the newest", chat.Page{Cursor: 7, Limit: 3}, seqRange(8, 10), false},
			{"forward with a limit beyond the newest", chat.Page{Cursor: 8, Limit: 5}, seqRange(9, 10), false},
			{"forward with a limit beyond the room", chat.Page{Cursor: 0, Limit: 500}, seqRange(1, 10), false},
			{"forward from the newest", chat.Page{Cursor: 10, Limit: 3}, nil, false},
			{"forward from past the newest", chat.Page{Cursor: 50, Limit: 3}, nil, false},
			{"forward from the largest cursor", chat.Page{Cursor: math.MaxInt64, Limit: 3}, nil, false},
			{"forward one at a time", chat.Page{Cursor: 4, Limit: 1}, seqRange(5, 5), true},
			{"backward from the largest cursor is the newest page", chat.Page{Backward: true, Cursor: math.MaxInt64, Limit: 3}, seqRange(8, 10), true},
			{"backward from past the newest is the newest page", chat.Page{Backward: true, Cursor: 50, Limit: 3}, seqRange(8, 10), true},
			{"backward from just past the newest", chat.Page{Backward: true, Cursor: 11, Limit: 3}, seqRange(8, 10), true},
			{"backward from the middle", chat.Page{Backward: true, Cursor: 8, Limit: 3}, seqRange(5, 7), true},
			{"backward down to exactly the oldest", chat.Page{Backward: true, Cursor: 4, Limit: 3}, seqRange(1, 3), false},
			{"backward with a limit beyond the oldest", chat.Page{Backward: true, Cursor: 3, Limit: 5}, seqRange(1, 2), false},
			{"backward with a limit beyond the room", chat.Page{Backward: true, Cursor: math.MaxInt64, Limit: 500}, seqRange(1, 10), false},
			{"backward from the oldest", chat.Page{Backward: true, Cursor: 1, Limit: 3}, nil, false},
			{"backward from zero", chat.Page{Backward: true, Cursor: 0, Limit: 3}, nil, false},
			{"backward one at a time", chat.Page{Backward: true, Cursor: 6, Limit: 1}, seqRange(5, 5), true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, hasMore := f.mustReadHistory(room.ID, tc.page)
				if diff := messagesDiff(got, pick(sent, tc.wantSeqs)); diff != "" {
					t.Errorf("History(%+v): %s", tc.page, diff)
				}
				if hasMore != tc.wantHasMore {
					t.Errorf("History(%+v): got hasMore=%v, want %v", tc.page, hasMore, tc.wantHasMore)
				}
			})
		}
	})

	t.Run("paging either way visits every message once", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		room, sent := f.mustFillRoom("general", 10)

		var forward []chat.Message
		for p := (chat.Page{Limit: 4}); ; {
			page, hasMore := f.mustReadHistory(room.ID, p)
			forward = append(forward, page...)
			if !hasMore || len(page) == 0 || len(forward) > len(sent) {
				break
			}
			p.Cursor = page[len(page)-1].Seq
		}
		if diff := messagesDiff(forward, sent); diff != "" {
			t.Errorf("paging forward by 4: %s", diff)
		}

		var backward []chat.Message
		for p := (chat.Page{Backward: true, Cursor: math.MaxInt64, Limit: 4}); ; {
			page, hasMore := f.mustReadHistory(room.ID, p)
			backward = append(slices.Clone(page), backward...)
			if !hasMore || len(page) == 0 || len(backward) > len(sent) {
				break
			}
			p.Cursor = page[0].Seq
		}
		if diff := messagesDiff(backward, sent); diff != "" {
			t.Errorf("paging backward by 4: %s", diff)
		}
	})

	t.Run("an empty room has no history either way", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		room := f.mustCreateRoom("general")

		for _, p := range []chat.Page{{Limit: 10}, {Backward: true, Cursor: math.MaxInt64, Limit: 10}} {
			got, hasMore := f.mustReadHistory(room.ID, p)
			if len(got) != 0 || hasMore {
				t.Errorf("History(%+v) of an empty room: got seqs %v, hasMore=%v; want none, false", p, seqsOf(got), hasMore)
			}
		}
	})

	t.Run("history of an unknown room is not found", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		f.mustFillRoom("general", 1)

		for _, p := range []chat.Page{{Limit: 10}, {Backward: true, Cursor: math.MaxInt64, Limit: 10}} {
			_, _, err := f.store.History(f.ctx, chat.NewID(f.clock), p)
			if !errors.Is(err, chat.ErrNotFound) {
				t.Errorf("History(unknown room, %+v): got error %v, want ErrNotFound", p, err)
			}
		}
	})
}

// mustFillRoom creates a room and sends n messages to it, from two users in
// turn, and returns the messages in seq order.
func (f *fixture) mustFillRoom(name string, n int) (chat.Room, []chat.Message) {
	f.t.Helper()
	room := f.mustCreateRoom(name)
	users := []chat.User{f.mustCreateUser(name + "-alice"), f.mustCreateUser(name + "-bob")}
	sent := make([]chat.Message, n)
	for i := range sent {
		seq := int64(i + 1)
		d := f.draft(room, users[i%len(users)], fmt.Sprint("c", seq), fmt.Sprint("message ", seq))
		sent[i] = f.mustAppendNew(d, seq)
	}
	return room, sent
}

// pick returns the messages of sent (seqs 1, 2, ...) with the given seqs.
func pick(sent []chat.Message, seqs []int64) []chat.Message {
	msgs := make([]chat.Message, len(seqs))
	for i, seq := range seqs {
		msgs[i] = sent[seq-1]
	}
	return msgs
}
