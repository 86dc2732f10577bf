package chat_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/memstore"
)

// textCodec encodes frames as short strings that tests can read:
// "msg seq", "joined last users", "online name", "offline name", "typing name".
type textCodec struct{}

func (textCodec) Message(m chat.Message) []byte { return fmt.Appendf(nil, "msg %d", m.Seq) }
func (textCodec) Joined(_ string, last int64, members []chat.User) []byte {
	return fmt.Appendf(nil, "joined %d %d", last, len(members))
}
func (textCodec) Presence(_ string, u chat.User, online bool) []byte {
	if online {
		return []byte("online " + u.Username)
	}
	return []byte("offline " + u.Username)
}
func (textCodec) Typing(_ string, u chat.User) []byte { return []byte("typing " + u.Username) }

// recorder is a Subscriber that keeps what it is given. With a capacity, Offer
// fails once that many frames are held, like a full send queue.
type recorder struct {
	mu     sync.Mutex
	frames []string
	cap    int
	slow   bool
}

func (r *recorder) Offer(f chat.Frame) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.slow || (r.cap > 0 && len(r.frames) >= r.cap) {
		return false
	}
	r.frames = append(r.frames, string(f.Data))
	return true
}

func (r *recorder) Push(ctx context.Context, f chat.Frame) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.slow {
		return errors.New("dropped")
	}
	r.frames = append(r.frames, string(f.Data))
	return nil
}

func (r *recorder) Slow() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.slow = true
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.frames...)
}

func (r *recorder) isSlow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.slow
}

// seqs returns the seqs of the message frames received, in order.
func (r *recorder) seqs() []int64 {
	var out []int64
	for _, f := range r.got() {
		if s, ok := strings.CutPrefix(f, "msg "); ok {
			n, _ := strconv.ParseInt(s, 10, 64)
			out = append(out, n)
		}
	}
	return out
}

type fixture struct {
	store *memstore.Store
	hub   *chat.Hub
	svc   *chat.Service
	room  chat.Room
}

func newFixture(t *testing.T, opts chat.HubOptions) *fixture {
	t.Helper()
	store := memstore.New(memstore.Options{})
	hub := chat.NewHub(store, textCodec{}, opts)
	t.Cleanup(hub.Close)
	svc := chat.NewService(store, hub, nil)
	room, err := svc.CreateRoom(context.Background(), "lobby")
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: store, hub: hub, svc: svc, room: room}
}

var (
	alice = chat.User{ID: "u-alice", Username: "alice"}
	bob   = chat.User{ID: "u-bob", Username: "bob"}
)

// appendN stores n messages without delivering them and returns them.
func (f *fixture) appendN(t *testing.T, n int) []chat.Message {
	t.Helper()
	var out []chat.Message
	for i := range n {
		now := time.Now().UTC().Truncate(time.Microsecond)
		m, _, err := f.store.Append(context.Background(), chat.Draft{
			ID: chat.NewID(now), Room: f.room.ID, ClientID: fmt.Sprintf("c%d-%d", time.Now().UnixNano(), i),
			User: alice, Body: "hi", TS: now,
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func (f *fixture) mustJoin(t *testing.T, sub chat.Subscriber, u chat.User, since *int64) {
	t.Helper()
	if err := f.svc.Join(context.Background(), f.room.ID, sub, u, since); err != nil {
		t.Fatalf("join: %v", err)
	}
}

func (f *fixture) mustSend(t *testing.T, u chat.User, clientID string) chat.Message {
	t.Helper()
	m, _, err := f.svc.Send(context.Background(), u, f.room.ID, clientID, "hello")
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return m
}

// sendUntilStopped has alice send messages in the background until the
// returned stop is called.
func (f *fixture) sendUntilStopped(t *testing.T) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			if _, _, err := f.svc.Send(context.Background(), alice, f.room.ID, fmt.Sprintf("live-%d", i), "live"); err != nil {
				t.Errorf("send: %v", err)
				return
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func wantSeqs(t *testing.T, got []int64, from, to int64) {
	t.Helper()
	var want []int64
	for s := from; s <= to; s++ {
		want = append(want, s)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got seqs %v, want %v", got, want)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHubDeliversOutOfOrderArrivalsInSeqOrder(t *testing.T) {
	f := newFixture(t, chat.HubOptions{GapWait: time.Hour})
	var r recorder
	f.mustJoin(t, &r, bob, nil)
	msgs := f.appendN(t, 4)
	for _, i := range []int{2, 0, 3, 1} {
		f.hub.Deliver(context.Background(), msgs[i])
	}
	wantSeqs(t, r.seqs(), 1, 4)
}

func TestHubDropsDuplicateDeliveries(t *testing.T) {
	f := newFixture(t, chat.HubOptions{GapWait: time.Hour})
	var r recorder
	f.mustJoin(t, &r, bob, nil)
	msgs := f.appendN(t, 2)
	for _, m := range []chat.Message{msgs[0], msgs[0], msgs[1], msgs[0], msgs[1]} {
		f.hub.Deliver(context.Background(), m)
	}
	wantSeqs(t, r.seqs(), 1, 2)
}

func TestHubBackfillsAGapFromTheStore(t *testing.T) {
	f := newFixture(t, chat.HubOptions{GapWait: 10 * time.Millisecond})
	var r recorder
	f.mustJoin(t, &r, bob, nil)
	msgs := f.appendN(t, 5)
	f.hub.Deliver(context.Background(), msgs[4]) // 1..4 never arrive live
	eventually(t, "backfill", func() bool { return len(r.seqs()) == 5 })
	wantSeqs(t, r.seqs(), 1, 5)
}

func TestHubJoinReportsLastSeqAndStartsLiveAfterIt(t *testing.T) {
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
	f := newFixture(t, chat.HubOptions{})
	f.appendN(t, 2000)
	stop := f.sendUntilStopped(t)
	var r recorder
	f.mustJoin(t, &r, bob, ptr(int64(0)))
	stop()
	last, _ := f.store.Room(context.Background(), f.room.ID)
	wantSeqs(t, r.seqs(), 1, last.LastSeq)
}

func TestHubDropsASlowMemberWithoutSkippingOrStallingOthers(t *testing.T) {
	f := newFixture(t, chat.HubOptions{})
	slow := &recorder{cap: 4} // joined, alice online, and two messages fit
	var fast recorder
	f.mustJoin(t, slow, bob, nil)
	f.mustJoin(t, &fast, alice, nil)
	for i := range 5 {
		f.mustSend(t, alice, fmt.Sprint(i))
	}
	if !slow.isSlow() {
		t.Fatal("got slow member still subscribed, want it told it is too slow")
	}
	wantSeqs(t, slow.seqs(), 1, 2)
	wantSeqs(t, fast.seqs(), 1, 5)
}

func TestHubPresenceCountsUsersNotConnections(t *testing.T) {
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

func TestHubRefusesBadJoinsAndTyping(t *testing.T) {
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
	f := newFixture(t, chat.HubOptions{})
	const senders, perSender, joiners = 4, 100, 8
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			u := chat.User{ID: fmt.Sprint("sender-", s), Username: fmt.Sprint("sender", s)}
			for i := range perSender {
				f.mustSend(t, u, fmt.Sprint(i))
			}
		})
	}
	for j := range joiners {
		wg.Go(func() {
			u := chat.User{ID: fmt.Sprint("joiner-", j), Username: fmt.Sprint("joiner", j)}
			for round := range 10 {
				var r recorder
				var since *int64
				if round%2 == 1 {
					s := int64(round)
					since = &s
				}
				if err := f.svc.Join(context.Background(), f.room.ID, &r, u, since); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(time.Millisecond)
				f.svc.Leave(f.room.ID, &r)
				checkUnbroken(t, &r, since)
			}
		})
	}
	wg.Wait()
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
	f := newFixture(t, chat.HubOptions{})
	f.appendN(t, 3000)
	var watcher recorder
	f.mustJoin(t, &watcher, alice, nil)
	sub := newBoundedSub(t, 16, 20*time.Microsecond) // a sleep lasts longer in practice
	joined := make(chan error, 1)
	go func() { joined <- f.svc.Join(context.Background(), f.room.ID, sub, bob, ptr(int64(0))) }()
	eventually(t, "the joined frame", func() bool { return len(sub.rec.got()) > 0 })
	// Bounded live traffic, all of it (very likely) during the replay.
	for i := range 100 {
		f.mustSend(t, alice, fmt.Sprint("live-", i))
		f.svc.Typing(f.room.ID, &watcher, alice)
	}
	if err := <-joined; err != nil {
		t.Fatalf("join: %v", err)
	}
	eventually(t, "every message", func() bool {
		if sub.rec.isSlow() {
			t.Fatal("got the member dropped as slow, want it kept")
		}
		return len(sub.rec.seqs()) == 3100
	})
	wantSeqs(t, sub.rec.seqs(), 1, 3100)
}

// A member that joins with since above what the hub has delivered must not
// get the messages up to since again.
func TestHubJoinWithSinceAheadOfTheHubSkipsWhatTheMemberHas(t *testing.T) {
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

func ptr[T any](v T) *T { return &v }
