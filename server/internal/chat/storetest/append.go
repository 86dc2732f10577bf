package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

func testAppend(t *testing.T, open opener) {
	t.Run("seqs count up from one", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		alice := f.mustCreateUser("alice")
		room := f.mustCreateRoom("general")

		for seq := int64(1); seq <= 3; seq++ {
			f.mustAppendNew(f.draft(room, alice, fmt.Sprint("c", seq), "hello"), seq)
		}
	})

	t.Run("each room counts its own seqs", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		alice := f.mustCreateUser("alice")
		a, b := f.mustCreateRoom("a"), f.mustCreateRoom("b")

		f.mustAppendNew(f.draft(a, alice, "a1", "one"), 1)
		f.mustAppendNew(f.draft(b, alice, "b1", "one"), 1)
		f.mustAppendNew(f.draft(a, alice, "a2", "two"), 2)
		f.mustAppendNew(f.draft(b, alice, "b2", "two"), 2)
	})

	t.Run("a message keeps every field it was given", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		alice := f.mustCreateUser("alice")
		room := f.mustCreateRoom("general")
		bodies := []string{
			"plain",
			"héllo wörld 👋🏽 — 你好",
			"line one\nline two\ttabbed \"quoted\" 'single' \\ back",
			`{"type":"not json to the store"}`,
		}

		var want []chat.Message
		for i, body := range bodies {
			d := f.draft(room, alice, fmt.Sprintf("client-%d-ü", i), body)
			want = append(want, f.mustAppendNew(d, int64(i+1)))
		}

		if diff := messagesDiff(f.mustReadAll(room.ID), want); diff != "" {
			t.Errorf("History after Append: %s", diff)
		}
	})

	t.Run("appending to an unknown room is not found", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		alice := f.mustCreateUser("alice")
		f.mustCreateRoom("general")

		ghost := chat.Room{ID: chat.NewID(f.clock)}
		_, _, err := f.store.Append(f.ctx, f.draft(ghost, alice, "c1", "hello"))
		if !errors.Is(err, chat.ErrNotFound) {
			t.Fatalf("Append(unknown room): got error %v, want ErrNotFound", err)
		}
	})
}

func testIdempotency(t *testing.T, open opener) {
	t.Run("a repeated client id returns the original message", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		alice := f.mustCreateUser("alice")
		room := f.mustCreateRoom("general")
		original := f.mustAppendNew(f.draft(room, alice, "c1", "first"), 1)
		f.mustSend(room, alice, "in between")

		got, created := f.mustAppend(f.draft(room, alice, "c1", "retried with another body"))

		if created {
			t.Errorf("Append(repeat): got created=true, want false")
		}
		if diff := messageDiff(got, original); diff != "" {
			t.Errorf("Append(repeat): %s", diff)
		}
		if got := f.mustGetRoom(room.ID).LastSeq; got != 2 {
			t.Errorf("LastSeq after a repeat: got %d, want 2", got)
		}
		if got := f.mustReadAll(room.ID); len(got) != 2 {
			t.Errorf("History after a repeat: got seqs %v, want [1 2]", seqsOf(got))
		}
	})

	t.Run("the same client id from another user is a new message", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		alice, bob := f.mustCreateUser("alice"), f.mustCreateUser("bob")
		room := f.mustCreateRoom("general")

		f.mustAppendNew(f.draft(room, alice, "c1", "from alice"), 1)
		f.mustAppendNew(f.draft(room, bob, "c1", "from bob"), 2)
	})

	t.Run("the same client id in another room is a new message", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		alice := f.mustCreateUser("alice")
		a, b := f.mustCreateRoom("a"), f.mustCreateRoom("b")

		f.mustAppendNew(f.draft(a, alice, "c1", "to a"), 1)
		f.mustAppendNew(f.draft(b, alice, "c1", "to b"), 1)
	})

	t.Run("concurrent repeats of a client id store it once", func(t *testing.T) {
		t.Parallel()
		const senders = 10
		f := openFixture(t, open)
		alice := f.mustCreateUser("alice")
		room := f.mustCreateRoom("general")
		drafts := make([]chat.Draft, senders)
		for i := range drafts {
			drafts[i] = f.draft(room, alice, "c1", fmt.Sprint("attempt ", i))
		}

		msgs := make([]chat.Message, senders)
		created := make([]bool, senders)
		var wg sync.WaitGroup
		for i := range drafts {
			wg.Go(func() {
				var err error
				msgs[i], created[i], err = f.store.Append(f.ctx, drafts[i])
				if err != nil {
					t.Errorf("Append(attempt %d): %v", i, err)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}

		stores := 0
		for i, msg := range msgs {
			if created[i] {
				stores++
			}
			if diff := messageDiff(msg, msgs[0]); diff != "" {
				t.Errorf("Append(attempt %d) got another message than attempt 0: %s", i, diff)
			}
		}
		if stores != 1 {
			t.Errorf("concurrent repeats: got %d reported created, want 1", stores)
		}
		if got := f.mustReadAll(room.ID); len(got) != 1 {
			t.Errorf("History after concurrent repeats: got seqs %v, want [1]", seqsOf(got))
		}
		if got := f.mustGetRoom(room.ID).LastSeq; got != 1 {
			t.Errorf("LastSeq after concurrent repeats: got %d, want 1 (a repeat must not use up a seq)", got)
		}
	})
}

// testConcurrentAppend has many senders append to one room at once: every seq
// must be handed out exactly once, and each sender's messages must keep the
// order it sent them in.
func testConcurrentAppend(t *testing.T, open opener) {
	const senders, perSender = 20, 25
	f := openFixture(t, open)
	room := f.mustCreateRoom("busy")
	users := make([]chat.User, senders)
	for i := range users {
		users[i] = f.mustCreateUser(fmt.Sprint("sender", i))
	}
	start := f.tick()

	sent := make([][]chat.Message, senders) // by sender, in sending order
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() {
			for j := range perSender {
				ts := start.Add(time.Duration(i*perSender+j) * time.Microsecond)
				d := chat.Draft{
					ID: chat.NewID(ts), Room: room.ID, ClientID: fmt.Sprint("c", j), User: u,
					Body: fmt.Sprintf("sender %d message %d", i, j), TS: ts,
				}
				msg, created, err := f.store.Append(f.ctx, d)
				if err != nil || !created {
					t.Errorf("Append(sender %d message %d): got created=%v, error %v; want created, no error", i, j, created, err)
					return
				}
				sent[i] = append(sent[i], msg)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	bySeq := make(map[int64]chat.Message, senders*perSender)
	for i, msgs := range sent {
		for j, msg := range msgs {
			if prev, dup := bySeq[msg.Seq]; dup {
				t.Errorf("seq %d given to both %q and %q", msg.Seq, prev.Body, msg.Body)
			}
			bySeq[msg.Seq] = msg
			if j > 0 && msg.Seq <= msgs[j-1].Seq {
				t.Errorf("sender %d: message %d got seq %d after message %d got seq %d, want increasing",
					i, j, msg.Seq, j-1, msgs[j-1].Seq)
			}
		}
	}
	for seq := int64(1); seq <= senders*perSender; seq++ {
		if _, ok := bySeq[seq]; !ok {
			t.Errorf("seq %d was never handed out", seq)
		}
	}
	if got := f.mustGetRoom(room.ID).LastSeq; got != senders*perSender {
		t.Errorf("LastSeq: got %d, want %d", got, senders*perSender)
	}

	history := f.mustReadAll(room.ID)
	if got, want := seqsOf(history), seqRange(1, senders*perSender); !slices.Equal(got, want) {
		t.Fatalf("History: got %d messages with seqs %v, want seqs 1..%d", len(got), got, senders*perSender)
	}
	for _, msg := range history {
		if diff := messageDiff(msg, bySeq[msg.Seq]); diff != "" {
			t.Errorf("History differs from what Append returned: %s", diff)
		}
	}
}
