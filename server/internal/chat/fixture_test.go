package chat_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
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
	// took, when set, is signalled without waiting whenever a frame is
	// taken, so that a test can wait for one.
	took chan struct{}
}

func (r *recorder) Offer(f chat.Frame) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.slow || (r.cap > 0 && len(r.frames) >= r.cap) {
		return false
	}
	r.take(f)
	return true
}

func (r *recorder) Push(ctx context.Context, f chat.Frame) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.slow {
		return errors.New("dropped")
	}
	r.take(f)
	return nil
}

// take keeps f. r.mu is held.
func (r *recorder) take(f chat.Frame) {
	r.frames = append(r.frames, string(f.Data))
	if r.took != nil {
		select {
		case r.took <- struct{}{}:
		default:
		}
	}
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
	store    *memstore.Store
	hub      *chat.Hub
	svc      *chat.Service
	room     chat.Room
	appended int // messages stored by appendN, which numbers their client ids
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
	for range n {
		// A count, not the time, keeps client ids apart: in a bubble the
		// clock stands still while the test runs.
		f.appended++
		now := time.Now().UTC().Truncate(time.Microsecond)
		m, _, err := f.store.Append(context.Background(), chat.Draft{
			ID: chat.NewID(now), Room: f.room.ID, ClientID: fmt.Sprint("c", f.appended),
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

// The hub's tests that wait on its timers and loops run in testing/synctest
// bubbles, where the clock is fake and moves only when every goroutine in
// the bubble is blocked. Such a test lets the hub run for as long as it
// needs without waiting for it, and finds the hub idle whenever it looks.

// advance lets d pass in the bubble, then waits until every goroutine in it
// is blocked again.
func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// stepUntil waits until cond holds, letting time pass in the bubble a
// millisecond at a time, and fails the test after five seconds of it. It is
// testenv.Eventually's counterpart on the fake clock: its fine steps let a
// test see the state between two of the hub's timers.
func stepUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	synctest.Wait()
	for !cond() {
		if !time.Now().Before(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		advance(time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }
