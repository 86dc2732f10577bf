package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/testenv"
)

func TestConcurrentSendersThroughTwoReplicasGetEverySeqOnce(t *testing.T) {
	const senders, perSender = 20, 50
	url := testenv.PostgresURL(t)
	replicas := []*Store{mustOpen(t, url, Options{}), mustOpen(t, url, Options{})}
	room := mustCreateRoom(t, replicas[0], "busy")
	users := make([]chat.User, senders)
	for i := range users {
		users[i] = mustCreateUser(t, replicas[i%2], fmt.Sprint("sender", i))
	}

	sent := make([][]chat.Message, senders) // by sender, in sending order
	var wg sync.WaitGroup
	for i, u := range users {
		s := replicas[i%2]
		wg.Go(func() {
			for j := range perSender {
				m, created, err := s.Append(testCtx(t), draft(room, u, fmt.Sprint("c", j)))
				if err != nil || !created {
					t.Errorf("Append(sender %d, message %d): got created=%v, error %v; want created", i, j, created, err)
					return
				}
				sent[i] = append(sent[i], m)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	for i, msgs := range sent {
		if seqs := seqsOf(msgs); !slices.IsSorted(seqs) {
			t.Errorf("sender %d: got seqs %v, want them rising in sending order", i, seqs)
		}
	}
	var stored []int64
	for seq := int64(0); ; {
		page, hasMore, err := replicas[1].History(testCtx(t), room.ID, chat.Page{Cursor: seq, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, seqsOf(page)...)
		if !hasMore {
			break
		}
		seq = page[len(page)-1].Seq
	}
	if len(stored) != senders*perSender {
		t.Fatalf("got %d messages stored, want %d", len(stored), senders*perSender)
	}
	for i, seq := range stored {
		if seq != int64(i+1) {
			t.Fatalf("stored seqs: got %d at position %d, want %d (every seq from 1 once)", seq, i, i+1)
		}
	}
	for i, s := range replicas {
		if r, err := s.Room(testCtx(t), room.ID); err != nil || r.LastSeq != senders*perSender {
			t.Errorf("replica %d: got last seq %d (error %v), want %d", i, r.LastSeq, err, senders*perSender)
		}
	}
}

func TestAppendIsIdempotent(t *testing.T) {
	s := mustOpenStore(t)
	alice, bob := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob")
	general, random := mustCreateRoom(t, s, "general"), mustCreateRoom(t, s, "random")

	t.Run("a retry returns the original", func(t *testing.T) {
		first, created := mustAppend(t, s, draft(general, alice, "retry"))
		if !created {
			t.Fatal("first Append: got created=false, want true")
		}
		again, created := mustAppend(t, s, draft(general, alice, "retry"))
		if created || again != first {
			t.Errorf("retry: got %+v created=%v, want %+v created=false", again, created, first)
		}
		if n := mustCount(t, s, `SELECT count(*) FROM messages WHERE client_id = 'retry'`); n != 1 {
			t.Errorf("got %d rows, want 1", n)
		}
	})

	t.Run("concurrent repeats store one message", func(t *testing.T) {
		const attempts = 10
		msgs := make([]chat.Message, attempts)
		created := make([]bool, attempts)
		var wg sync.WaitGroup
		for i := range attempts {
			wg.Go(func() {
				var err error
				msgs[i], created[i], err = s.Append(testCtx(t), draft(general, alice, "burst"))
				if err != nil {
					t.Errorf("attempt %d: %v", i, err)
				}
			})
		}
		wg.Wait()

		if n := mustCount(t, s, `SELECT count(*) FROM messages WHERE client_id = 'burst'`); n != 1 {
			t.Errorf("got %d rows, want 1", n)
		}
		creators := 0
		for i := range msgs {
			if created[i] {
				creators++
			}
			if msgs[i] != msgs[0] {
				t.Errorf("attempt %d: got %+v, want %+v like attempt 0", i, msgs[i], msgs[0])
			}
		}
		if creators != 1 {
			t.Errorf("got %d answers with created=true, want 1", creators)
		}
	})

	for _, tc := range []struct {
		name string
		room chat.Room
		user chat.User
	}{
		{"another user's client id is a new message", general, bob},
		{"the client id in another room is a new message", random, alice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig, _ := mustAppend(t, s, draft(general, alice, "shared"))
			m, created := mustAppend(t, s, draft(tc.room, tc.user, "shared"))
			if !created || m.ID == orig.ID {
				t.Errorf("got %+v created=%v, want a new message", m, created)
			}
		})
	}
}

// TestCommitSortsOutABatch hands commit a batch directly, as group commit
// would when these drafts queue up together.
func TestCommitSortsOutABatch(t *testing.T) {
	s := mustOpenStore(t)
	alice := mustCreateUser(t, s, "alice")
	a, b := mustCreateRoom(t, s, "a"), mustCreateRoom(t, s, "b")
	old, _ := mustAppend(t, s, draft(a, alice, "old"))
	ghost := chat.Room{ID: "no-such-room"}

	drafts := []chat.Draft{
		draft(a, alice, "x"),     // seq 2 of a
		draft(ghost, alice, "y"), // unknown room
		draft(b, alice, "x"),     // seq 1 of b
		draft(a, alice, "x"),     // repeat of the first, in the same batch
		draft(a, alice, "old"),   // repeat of a message stored before
		draft(a, alice, "z"),     // seq 3 of a
	}
	reqs := make([]*appendReq, len(drafts))
	for i, d := range drafts {
		reqs[i] = &appendReq{ctx: t.Context(), draft: d}
	}
	results, err := s.commit(testCtx(t), reqs)
	if err != nil {
		t.Fatalf("commit: %v", err)
	}

	want := []struct {
		room    string
		seq     int64
		created bool
		id      string
		err     error
	}{
		{a.ID, 2, true, drafts[0].ID, nil},
		{"", 0, false, "", chat.ErrNotFound},
		{b.ID, 1, true, drafts[2].ID, nil},
		{a.ID, 2, false, drafts[0].ID, nil},
		{a.ID, 1, false, old.ID, nil},
		{a.ID, 3, true, drafts[5].ID, nil},
	}
	for i, w := range want {
		r := results[i]
		if !errors.Is(r.err, w.err) || (w.err == nil && r.err != nil) {
			t.Errorf("draft %d: got error %v, want %v", i, r.err, w.err)
			continue
		}
		if r.msg.Room != w.room || r.msg.Seq != w.seq || r.created != w.created || r.msg.ID != w.id {
			t.Errorf("draft %d: got room %q seq %d created=%v id %q, want room %q seq %d created=%v id %q",
				i, r.msg.Room, r.msg.Seq, r.created, r.msg.ID, w.room, w.seq, w.created, w.id)
		}
	}
	for _, room := range []struct {
		room chat.Room
		last int64
	}{{a, 3}, {b, 1}} {
		if r, _ := s.Room(testCtx(t), room.room.ID); r.LastSeq != room.last {
			t.Errorf("room %s: got last seq %d, want %d", room.room.Name, r.LastSeq, room.last)
		}
	}
}

func TestABadDraftFailsOnlyItself(t *testing.T) {
	s := mustOpenStore(t)
	alice := mustCreateUser(t, s, "alice")
	room := mustCreateRoom(t, s, "general")

	bad := draft(room, alice, "bad")
	bad.Body = "PostgreSQL text cannot hold \x00"
	batch := []*appendReq{
		{ctx: t.Context(), draft: draft(room, alice, "good1")},
		{ctx: t.Context(), draft: bad},
		{ctx: t.Context(), draft: draft(room, alice, "good2")},
	}
	for _, req := range batch {
		req.reply = make(chan appendResult, 1)
	}
	s.write(batch)

	for i, wantErr := range []bool{false, true, false} {
		r := <-batch[i].reply
		if gotErr := r.err != nil; gotErr != wantErr {
			t.Errorf("draft %d: got error %v, want error=%v", i, r.err, wantErr)
		}
		if errors.Is(r.err, chat.ErrUnavailable) {
			t.Errorf("draft %d: got %v, want an error that is not ErrUnavailable", i, r.err)
		}
	}
	if n := mustCount(t, s, `SELECT count(*) FROM messages`); n != 2 {
		t.Errorf("got %d messages stored, want 2", n)
	}
	if r, _ := s.Room(testCtx(t), room.ID); r.LastSeq != 2 {
		t.Errorf("got last seq %d, want 2", r.LastSeq)
	}
}

func TestAppendWhoseCallerLeftIsNotStored(t *testing.T) {
	s := mustOpenStore(t)
	alice := mustCreateUser(t, s, "alice")
	room := mustCreateRoom(t, s, "general")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	req := &appendReq{ctx: ctx, draft: draft(room, alice, "gone"), reply: make(chan appendResult, 1)}
	s.write([]*appendReq{req})

	if r := <-req.reply; !errors.Is(r.err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", r.err)
	}
	if n := mustCount(t, s, `SELECT count(*) FROM messages`); n != 0 {
		t.Errorf("got %d messages stored, want 0", n)
	}
}

func TestAppendToAnUnknownRoomIsNotFound(t *testing.T) {
	s := mustOpenStore(t)
	alice := mustCreateUser(t, s, "alice")

	_, _, err := s.Append(testCtx(t), draft(chat.Room{ID: "nope"}, alice, "c1"))
	if !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("got %v, want ErrNotFound", err)
	}
}
