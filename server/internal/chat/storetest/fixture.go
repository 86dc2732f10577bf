package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

// fixture is one subtest's fresh store and the means to fill it.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	store chat.Store
	clock time.Time // the last time handed out by tick
}

func openFixture(t *testing.T, open opener) *fixture {
	t.Helper()
	s := open(t)
	if s == nil {
		t.Fatal("open returned a nil store")
	}
	return &fixture{
		t:     t,
		ctx:   t.Context(),
		store: s,
		clock: time.Now().UTC().Truncate(time.Microsecond),
	}
}

// tick returns a time a millisecond after the last one, so that every room
// and message gets its own time and a store that swaps them shows.
func (f *fixture) tick() time.Time {
	f.clock = f.clock.Add(time.Millisecond)
	return f.clock
}

func passwordHashOf(username string) string { return "hash-of-" + username }

func (f *fixture) mustCreateUser(username string) chat.User {
	f.t.Helper()
	u := chat.User{ID: chat.NewID(f.clock), Username: username}
	if err := f.store.CreateUser(f.ctx, u, passwordHashOf(username)); err != nil {
		f.t.Fatalf("CreateUser(%q): %v", username, err)
	}
	return u
}

func (f *fixture) mustCreateRoom(name string) chat.Room {
	f.t.Helper()
	r, err := f.store.CreateRoom(f.ctx, chat.Room{ID: chat.NewID(f.clock), Name: name, CreatedAt: f.tick()})
	if err != nil {
		f.t.Fatalf("CreateRoom(%q): %v", name, err)
	}
	return r
}

func (f *fixture) mustGetRoom(id string) chat.Room {
	f.t.Helper()
	r, err := f.store.Room(f.ctx, id)
	if err != nil {
		f.t.Fatalf("Room(%q): %v", id, err)
	}
	return r
}

// draft is a message from u to room under the given client id.
func (f *fixture) draft(room chat.Room, u chat.User, clientID, body string) chat.Draft {
	now := f.tick()
	return chat.Draft{ID: chat.NewID(now), Room: room.ID, ClientID: clientID, User: u, Body: body, TS: now}
}

func (f *fixture) mustAppend(d chat.Draft) (msg chat.Message, created bool) {
	f.t.Helper()
	msg, created, err := f.store.Append(f.ctx, d)
	if err != nil {
		f.t.Fatalf("Append(client id %q): %v", d.ClientID, err)
	}
	return msg, created
}

// mustAppendNew appends d and checks that it was stored as a new message
// with every field it was given.
func (f *fixture) mustAppendNew(d chat.Draft, wantSeq int64) chat.Message {
	f.t.Helper()
	msg, created := f.mustAppend(d)
	if !created {
		f.t.Fatalf("Append(client id %q): got created=false, want true", d.ClientID)
	}
	if diff := messageDiff(msg, stored(d, wantSeq)); diff != "" {
		f.t.Fatalf("Append(client id %q): %s", d.ClientID, diff)
	}
	return msg
}

// mustSend appends a message from u under a client id of its own.
func (f *fixture) mustSend(room chat.Room, u chat.User, body string) chat.Message {
	f.t.Helper()
	msg, created := f.mustAppend(f.draft(room, u, "c-"+chat.NewID(f.clock), body))
	if !created {
		f.t.Fatalf("Append(%q): got created=false for a fresh client id, want true", body)
	}
	return msg
}

func (f *fixture) mustReadHistory(roomID string, p chat.Page) ([]chat.Message, bool) {
	f.t.Helper()
	msgs, hasMore, err := f.store.History(f.ctx, roomID, p)
	if err != nil {
		f.t.Fatalf("History(%+v): %v", p, err)
	}
	return msgs, hasMore
}

// mustReadAll pages forward through a room's whole history.
func (f *fixture) mustReadAll(roomID string) []chat.Message {
	f.t.Helper()
	var all []chat.Message
	for cursor := int64(0); ; {
		page, hasMore := f.mustReadHistory(roomID, chat.Page{Cursor: cursor, Limit: 100})
		all = append(all, page...)
		if !hasMore || len(page) == 0 {
			return all
		}
		next := page[len(page)-1].Seq
		if next <= cursor {
			f.t.Fatalf("History(cursor %d): got seqs %v, want seqs after the cursor", cursor, seqsOf(page))
		}
		cursor = next
	}
}

// stored is the message a store makes of d when it gives it seq.
func stored(d chat.Draft, seq int64) chat.Message {
	return chat.Message{ID: d.ID, Room: d.Room, Seq: seq, ClientID: d.ClientID, User: d.User, Body: d.Body, TS: d.TS}
}

// messageDiff describes the first field in which got differs from want, or
// returns "" when they are the same message.
func messageDiff(got, want chat.Message) string {
	switch {
	case got.Seq != want.Seq:
		return fmt.Sprintf("got seq %d, want %d", got.Seq, want.Seq)
	case got.ID != want.ID:
		return fmt.Sprintf("seq %d: got id %q, want %q", want.Seq, got.ID, want.ID)
	case got.Room != want.Room:
		return fmt.Sprintf("seq %d: got room %q, want %q", want.Seq, got.Room, want.Room)
	case got.ClientID != want.ClientID:
		return fmt.Sprintf("seq %d: got client id %q, want %q", want.Seq, got.ClientID, want.ClientID)
	case got.User != want.User:
		return fmt.Sprintf("seq %d: got user %+v, want %+v", want.Seq, got.User, want.User)
	case got.Body != want.Body:
		return fmt.Sprintf("seq %d: got body %q, want %q", want.Seq, got.Body, want.Body)
	case !got.TS.Equal(want.TS):
		return fmt.Sprintf("seq %d: got ts %v, want %v", want.Seq, got.TS, want.TS)
	}
	return ""
}

// messagesDiff compares two lists of messages in order.
func messagesDiff(got, want []chat.Message) string {
	if len(got) != len(want) {
		return fmt.Sprintf("got seqs %v, want %v", seqsOf(got), seqsOf(want))
	}
	for i := range got {
		if diff := messageDiff(got[i], want[i]); diff != "" {
			return diff
		}
	}
	return ""
}

// roomDiff describes the first field in which got differs from want, or
// returns "" when they are the same room.
func roomDiff(got, want chat.Room) string {
	switch {
	case got.ID != want.ID:
		return fmt.Sprintf("got id %q, want %q", got.ID, want.ID)
	case got.Name != want.Name:
		return fmt.Sprintf("got name %q, want %q", got.Name, want.Name)
	case !got.CreatedAt.Equal(want.CreatedAt):
		return fmt.Sprintf("got created at %v, want %v", got.CreatedAt, want.CreatedAt)
	case got.LastSeq != want.LastSeq:
		return fmt.Sprintf("got last seq %d, want %d", got.LastSeq, want.LastSeq)
	}
	return ""
}

func seqsOf(msgs []chat.Message) []int64 {
	seqs := make([]int64, len(msgs))
	for i, m := range msgs {
		seqs[i] = m.Seq
	}
	return seqs
}

// seqRange returns lo, lo+1, ..., hi (nothing when hi < lo).
func seqRange(lo, hi int64) []int64 {
	seqs := []int64{}
	for s := lo; s <= hi; s++ {
		seqs = append(seqs, s)
	}
	return seqs
}
