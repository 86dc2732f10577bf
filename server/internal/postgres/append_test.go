package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/parleychat/parley/internal/testenv"
	"github.com/parleychat/parley/server/internal/chat"
)

// TestTwoReplicasWritingTheSameRoomsGetEverySeqOnce has the writers of two
// stores, as two replicas would, lock and advance the same room rows at once.
func TestTwoReplicasWritingTheSameRoomsGetEverySeqOnce(t *testing.T) {
	t.Parallel()
	const sendersPerReplica, perSender = 8, 50
	url := testenv.PostgresURL(t)
	replicas := []*Store{mustOpen(t, url, Options{}), mustOpen(t, url, Options{})}
	busy, side := mustCreateRoom(t, replicas[0], "busy"), mustCreateRoom(t, replicas[1], "side")

	type sender struct {
		store *Store
		user  chat.User
		sent  map[string][]chat.Message // by room, in sending order
	}
	var senders []*sender
	for r, s := range replicas {
		for i := range sendersPerReplica {
			u := mustCreateUser(t, s, fmt.Sprintf("replica%d-sender%d", r, i))
			senders = append(senders, &sender{store: s, user: u, sent: make(map[string][]chat.Message)})
		}
	}

	// Every sender writes every message to busy and every other one to side
	// as well, so a batch often holds both rooms and the writers of the two
	// replicas contend for both rows.
	var wg sync.WaitGroup
	for _, snd := range senders {
		wg.Go(func() {
			for j := range perSender {
				rooms := []chat.Room{busy}
				if j%2 == 0 {
					rooms = append(rooms, side)
				}
				for _, room := range rooms {
					clientID := fmt.Sprintf("%s-%d", room.Name, j)
					m, created, err := snd.store.Append(testCtx(t), draft(room, snd.user, clientID))
					if err != nil || !created {
						t.Errorf("Append(%s, %s): got created=%v, error %v; want created", snd.user.Username, clientID, created, err)
						return
					}
					snd.sent[room.ID] = append(snd.sent[room.ID], m)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	total := len(senders) * perSender
	want := map[string]int64{busy.ID: int64(total), side.ID: int64(total / 2)}
	for _, room := range []chat.Room{busy, side} {
		bySeq := make(map[int64]chat.Message)
		for _, snd := range senders {
			sent := snd.sent[room.ID]
			if seqs := seqsOf(sent); !slices.IsSorted(seqs) {
				t.Errorf("room %s, %s: got seqs %v, want them rising in sending order", room.Name, snd.user.Username, seqs)
			}
			for _, m := range sent {
				if other, taken := bySeq[m.Seq]; taken {
					t.Errorf("room %s: got seq %d for both %s/%s and %s/%s, want one message per seq",
						room.Name, m.Seq, other.User.Username, other.ClientID, m.User.Username, m.ClientID)
				}
				bySeq[m.Seq] = m
			}
		}
		for seq := int64(1); seq <= want[room.ID]; seq++ {
			if _, ok := bySeq[seq]; !ok {
				t.Errorf("room %s: no Append returned seq %d, want every seq from 1 to %d", room.Name, seq, want[room.ID])
			}
		}

		// History must hold, under each seq, the message Append answered
		// with: the same client id, id and body, stored once.
		for r, s := range replicas {
			stored := mustReadAll(t, s, room.ID)
			if int64(len(stored)) != want[room.ID] {
				t.Errorf("room %s through replica %d: got %d messages, want %d", room.Name, r, len(stored), want[room.ID])
			}
			for i, m := range stored {
				if m.Seq != int64(i+1) {
					t.Errorf("room %s through replica %d: got seq %d at position %d, want %d", room.Name, r, m.Seq, i, i+1)
					break
				}
				if m != bySeq[m.Seq] {
					t.Errorf("room %s through replica %d: got %+v at seq %d, want %+v as Append returned", room.Name, r, m, m.Seq, bySeq[m.Seq])
				}
			}
		}
	}

	for r, s := range replicas {
		got, err := s.LastSeqs(testCtx(t), []string{busy.ID, side.ID})
		if err != nil || !maps.Equal(got, want) {
			t.Errorf("LastSeqs through replica %d: got %v (error %v), want %v", r, got, err, want)
		}
	}
}

// TestRepeatsThroughTwoReplicasAreStoredOnce sends every message several
// times through each of two stores at once, as a client that retries on
// another replica would.
func TestRepeatsThroughTwoReplicasAreStoredOnce(t *testing.T) {
	t.Parallel()
	const users, perUser, attemptsPerReplica = 4, 25, 2
	url := testenv.PostgresURL(t)
	replicas := []*Store{mustOpen(t, url, Options{}), mustOpen(t, url, Options{})}
	room := mustCreateRoom(t, replicas[0], "general")

	type attempt struct {
		msg     chat.Message
		created bool
	}
	var (
		mu       sync.Mutex
		attempts = make(map[idemKey][]attempt)
		wg       sync.WaitGroup
	)
	for i := range users {
		u := mustCreateUser(t, replicas[i%2], fmt.Sprint("user", i))
		for _, s := range replicas {
			for range attemptsPerReplica {
				wg.Go(func() {
					for j := range perUser {
						// Each attempt is a draft of its own, with its own
						// id, as a retry through another replica would be.
						d := draft(room, u, fmt.Sprint("c", j))
						m, created, err := s.Append(testCtx(t), d)
						if err != nil {
							t.Errorf("Append(%s, %s): %v", u.Username, d.ClientID, err)
							return
						}
						mu.Lock()
						attempts[keyOf(d)] = append(attempts[keyOf(d)], attempt{m, created})
						mu.Unlock()
					}
				})
			}
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	const sends = users * perUser
	if len(attempts) != sends {
		t.Fatalf("got answers for %d client ids, want %d", len(attempts), sends)
	}
	for k, as := range attempts {
		creators := 0
		for _, a := range as {
			if a.created {
				creators++
			}
			if a.msg != as[0].msg {
				t.Errorf("%s/%s: got %+v and %+v, want every attempt to get the same message", k.user, k.clientID, a.msg, as[0].msg)
			}
		}
		if creators != 1 {
			t.Errorf("%s/%s: got %d of %d attempts created, want 1", k.user, k.clientID, creators, len(as))
		}
	}
	stored := mustReadAll(t, replicas[1], room.ID)
	if len(stored) != sends {
		t.Fatalf("got %d messages stored, want %d", len(stored), sends)
	}
	for i, m := range stored {
		if m.Seq != int64(i+1) {
			t.Fatalf("got seq %d at position %d, want %d (every seq from 1 once)", m.Seq, i, i+1)
		}
		if as := attempts[idemKey{m.Room, m.User.ID, m.ClientID}]; len(as) == 0 || m != as[0].msg {
			t.Errorf("seq %d: got %+v stored, want the message its senders were answered with", m.Seq, m)
		}
	}
}

func TestAppendIsIdempotent(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
	s := mustOpenStore(t)
	alice := mustCreateUser(t, s, "alice")

	_, _, err := s.Append(testCtx(t), draft(chat.Room{ID: "nope"}, alice, "c1"))
	if !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("got %v, want ErrNotFound", err)
	}
}
