package chat_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/memstore"
)

func TestHubJoinReportsLastSeqAndStartsLiveAfterIt(t *testing.T) {
	t.Parallel()
	f := newFixture(t, chat.HubOptions{})
	f.appendN(t, 3)
	var r recorder
	f.mustJoin(t, &r, bob, nil)
	f.mustSend(t, alice, "a")
	got := r.got()
	want := []string{"joined 3 1", "msg 4"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got frames %q, want %q", got, want)
	}
}

func TestHubJoinWithSinceReplaysExactlyTheMissedMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		stored    int
		since     int64
		wantFirst int64
	}{
		{"since zero replays everything", 7, 0, 1},
		{"since in the middle", 7, 4, 5},
		{"since the last seq replays nothing", 7, 7, 8},
		{"replay longer than one page", 1200, 100, 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, chat.HubOptions{})
			f.appendN(t, tt.stored)
			var r recorder
			since := tt.since
			f.mustJoin(t, &r, bob, &since)
			f.mustSend(t, alice, "live")
			if first := r.got()[0]; first != fmt.Sprintf("joined %d 1", tt.stored) {
				t.Fatalf("got first frame %q, want the joined frame", first)
			}
			wantSeqs(t, r.seqs(), tt.wantFirst, int64(tt.stored)+1)
		})
	}
}

func TestHubLiveMessagesDuringReplayFollowTheReplay(t *testing.T) {
	t.Parallel()
	f := newFixture(t, chat.HubOptions{})
	f.appendN(t, 2000)
	stop := f.sendUntilStopped(t)
	var r recorder
	f.mustJoin(t, &r, bob, ptr(int64(0)))
	stop()
	last, _ := f.store.Room(context.Background(), f.room.ID)
	wantSeqs(t, r.seqs(), 1, last.LastSeq)
}

// A member that joins with since above what the hub has delivered must not
// get the messages up to since again.
func TestHubJoinWithSinceAheadOfTheHubSkipsWhatTheMemberHas(t *testing.T) {
	t.Parallel()
	f := newFixture(t, chat.HubOptions{GapWait: time.Hour})
	var first recorder
	f.mustJoin(t, &first, alice, nil)
	msgs := f.appendN(t, 4) // stored, not yet delivered: the hub is at 0
	var ahead recorder
	f.mustJoin(t, &ahead, bob, ptr(int64(3)))
	for _, m := range msgs {
		f.hub.Deliver(context.Background(), m)
	}
	wantSeqs(t, first.seqs(), 1, 4)
	wantSeqs(t, ahead.seqs(), 4, 4)
}

func TestHubRefusesBadJoinsAndTyping(t *testing.T) {
	t.Parallel()
	f := newFixture(t, chat.HubOptions{})
	var r recorder
	err := f.svc.Join(context.Background(), "no-such-room", &r, bob, nil)
	if !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("join unknown room: got %v, want ErrNotFound", err)
	}
	f.mustJoin(t, &r, bob, nil)
	if err := f.svc.Join(context.Background(), f.room.ID, &r, bob, nil); !errors.Is(err, chat.ErrConflict) {
		t.Fatalf("join twice: got %v, want ErrConflict", err)
	}
	var outsider recorder
	if err := f.svc.Typing(f.room.ID, &outsider, alice); !errors.Is(err, chat.ErrInvalid) {
		t.Fatalf("typing without joining: got %v, want ErrInvalid", err)
	}
	negative := int64(-1)
	if err := f.svc.Join(context.Background(), f.room.ID, &outsider, alice, &negative); !errors.Is(err, chat.ErrInvalid) {
		t.Fatalf("join since -1: got %v, want ErrInvalid", err)
	}
}

// Members that join and leave while others send must each see, after their
// joined frame, one unbroken run of seqs starting right after the joined
// last_seq.
func TestHubConcurrentJoinLeaveAndSend(t *testing.T) {
	t.Parallel()
	f := newFixture(t, chat.HubOptions{})
	const senders, perSender, joiners = 4, 100, 8
	var sending, joining sync.WaitGroup
	sent := make(chan struct{}) // closed once every sender is done
	for s := range senders {
		sending.Go(func() {
			u := chat.User{ID: fmt.Sprint("sender-", s), Username: fmt.Sprint("sender", s)}
			for i := range perSender {
				f.mustSend(t, u, fmt.Sprint(i))
			}
		})
	}
	for j := range joiners {
		joining.Go(func() {
			u := chat.User{ID: fmt.Sprint("joiner-", j), Username: fmt.Sprint("joiner", j)}
			for round := range 10 {
				r := &recorder{took: make(chan struct{}, 1)}
				var since *int64
				if round%2 == 1 {
					s := int64(round)
					since = &s
				}
				if err := f.svc.Join(context.Background(), f.room.ID, r, u, since); err != nil {
					t.Error(err)
					return
				}
				awaitAMessage(r, sent)
				f.svc.Leave(f.room.ID, r)
				checkUnbroken(t, r, since)
			}
		})
	}
	sending.Wait()
	close(sent)
	joining.Wait()
}

// awaitAMessage returns once r has taken a message, or once done is closed:
// a member stays in the room until live traffic reached it, while there is
// any.
func awaitAMessage(r *recorder, done <-chan struct{}) {
	for len(r.seqs()) == 0 {
		select {
		case <-r.took:
		case <-done:
			return
		}
	}
}

func checkUnbroken(t *testing.T, r *recorder, since *int64) {
	t.Helper()
	frames := r.got()
	var last int64
	if _, err := fmt.Sscanf(frames[0], "joined %d", &last); err != nil {
		t.Errorf("got first frame %q, want joined", frames[0])
		return
	}
	// With since the member gets everything after it: replayed when the
	// room is further on, live (skipping what it has) when it is not.
	next := last + 1
	if since != nil {
		next = *since + 1
	}
	for _, s := range r.seqs() {
		if s != next {
			t.Errorf("got seq %d, want %d (since %v, joined at %d)", s, next, since, last)
			return
		}
		next++
	}
}

// boundedSub is a subscriber with a real bounded queue drained by a
// consumer goroutine, like a connection: Push waits for room, Offer fails
// when the queue is full. The consumer takes perFrame for each frame, like
// a socket write.
type boundedSub struct {
	queue chan chat.Frame
	done  chan struct{}
	rec   recorder
}

func newBoundedSub(t *testing.T, size int, perFrame time.Duration) *boundedSub {
	b := &boundedSub{queue: make(chan chat.Frame, size), done: make(chan struct{})}
	var consumer sync.WaitGroup
	consumer.Go(func() {
		for {
			select {
			case f := <-b.queue:
				time.Sleep(perFrame)
				b.rec.Offer(f)
			case <-b.done:
				return
			}
		}
	})
	t.Cleanup(func() { close(b.done); consumer.Wait() })
	return b
}

func (b *boundedSub) Offer(f chat.Frame) bool {
	select {
	case b.queue <- f:
		return true
	default:
		return false
	}
}

func (b *boundedSub) Push(ctx context.Context, f chat.Frame) error {
	select {
	case b.queue <- f:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *boundedSub) Slow() { b.rec.Slow() }

// A replay longer than the queue, with live frames arriving meanwhile, must
// not drop a member that keeps reading. The consumer is slower than the
// replay, so the queue is full when the replay ends and the frames held
// back during it must wait for room rather than be refused.
func TestHubLongReplayWithLiveTrafficDoesNotDropAReadingMember(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, chat.HubOptions{})
		f.appendN(t, 3000)
		var watcher recorder
		f.mustJoin(t, &watcher, alice, nil)
		sub := newBoundedSub(t, 16, 20*time.Microsecond)
		joined := make(chan error, 1)
		go func() { joined <- f.svc.Join(context.Background(), f.room.ID, sub, bob, ptr(int64(0))) }()
		stepUntil(t, "the joined frame", func() bool { return len(sub.rec.got()) > 0 })
		// Bounded live traffic, all of it during the replay: time stands
		// still, and with it the consumer, while this goroutine runs.
		for i := range 100 {
			f.mustSend(t, alice, fmt.Sprint("live-", i))
			f.svc.Typing(f.room.ID, &watcher, alice)
		}
		if err := <-joined; err != nil {
			t.Fatalf("join: %v", err)
		}
		stepUntil(t, "every message", func() bool {
			if sub.rec.isSlow() {
				t.Fatal("got the member dropped as slow, want it kept")
			}
			return len(sub.rec.seqs()) == 3100
		})
		wantSeqs(t, sub.rec.seqs(), 1, 3100)
	})
}

// failingHistory is a store whose History fails: the replay of a join
// cannot complete.
type failingHistory struct{ *memstore.Store }

func (failingHistory) History(context.Context, string, chat.Page) ([]chat.Message, bool, error) {
	return nil, false, chat.Errorf(chat.ErrUnavailable, "database unavailable")
}

// A replay that fails after the joined frame leaves the subscriber out of
// the room and says so with ErrReplayFailed, so the transport can make its
// client reconnect.
func TestHubReplayFailureLeavesNoMembership(t *testing.T) {
	t.Parallel()
	mem := memstore.New(memstore.Options{})
	store := failingHistory{mem}
	hub := chat.NewHub(store, textCodec{}, chat.HubOptions{})
	t.Cleanup(hub.Close)
	svc := chat.NewService(store, hub, nil)
	room, _ := svc.CreateRoom(context.Background(), "lobby")
	svc.Send(context.Background(), alice, room.ID, "c1", "hello")

	var r recorder
	err := svc.Join(context.Background(), room.ID, &r, bob, ptr(int64(0)))
	if !errors.Is(err, chat.ErrReplayFailed) || !errors.Is(err, chat.ErrUnavailable) {
		t.Fatalf("got %v, want ErrReplayFailed wrapping ErrUnavailable", err)
	}
	if svc.Leave(room.ID, &r) {
		t.Fatal("got the subscriber still a member after a failed replay")
	}
}

// Members leave from anywhere in the room's list; each message still
// reaches exactly the members that are in the room when it is sent.
func TestHubDeliversToExactlyTheMembersLeft(t *testing.T) {
	t.Parallel()
	f := newFixture(t, chat.HubOptions{})
	subs := make([]*recorder, 5)
	for i := range subs {
		subs[i] = new(recorder)
		f.mustJoin(t, subs[i], chat.User{ID: fmt.Sprintf("u%d", i), Username: fmt.Sprintf("user%d", i)}, nil)
	}
	in := map[int]bool{0: true, 1: true, 2: true, 3: true, 4: true}
	for seq, leaving := range []int{2, 0, 4, 1} { // the middle, the first, the last, and one more
		if !f.svc.Leave(f.room.ID, subs[leaving]) {
			t.Fatalf("member %d was not in the room", leaving)
		}
		delete(in, leaving)
		f.mustSend(t, alice, fmt.Sprintf("after %d left", leaving))
		for i, r := range subs {
			got := r.seqs()
			has := len(got) > 0 && got[len(got)-1] == int64(seq+1)
			if has != in[i] {
				t.Fatalf("message %d: member %d got it: %v, want %v (its seqs: %v)", seq+1, i, has, in[i], got)
			}
		}
	}
}
