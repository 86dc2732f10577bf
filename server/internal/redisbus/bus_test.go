package redisbus

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/testenv"
	"github.com/parleychat/parley/server/internal/chat"
	"github.com/redis/go-redis/v9"
)

// waitTimeout bounds every wait for something the bus does in the
// background; reaching it fails the test rather than hanging it.
const waitTimeout = 10 * time.Second

func TestEveryKindReachesOtherReplicasIntact(t *testing.T) {
	t.Parallel()
	a, aRec, b, bRec := twoReplicas(t)
	watchAndWait(t, a, aRec, "general")
	watchAndWait(t, b, bRec, "general")

	for _, tt := range everyKind("general", "") {
		t.Run(tt.name, func(t *testing.T) {
			a.Publish(context.Background(), tt.ev)
			want := tt.ev
			want.Origin = "a"
			if got := bRec.next(t); !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}

	// Everything a sent is through Redis by now, so a's own events would
	// have reached a before b's marker.
	marker := typing("general", "marker")
	b.Publish(context.Background(), marker)
	marker.Origin = "b"
	if got := aRec.next(t); !reflect.DeepEqual(got, marker) {
		t.Errorf("a got %+v, want only b's %+v: a replica must not hear its own events", got, marker)
	}
	if got := a.Stats().Received; got != 1 {
		t.Errorf("got %d events received by a, want 1", got)
	}
	// The counter follows Redis's reply, which may come after b has the event.
	sent := uint64(len(everyKind("", "")))
	testenv.EventuallyWithin(t, waitTimeout, "a counts every event published", func() bool { return a.Stats().Published == sent })
}

func TestOnlyWatchedRoomsDeliver(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, b *Bus, rec *recorder)
	}{
		{"room never watched", func(t *testing.T, b *Bus, rec *recorder) {
			watchAndWait(t, b, rec, "y")
		}},
		{"room unwatched", func(t *testing.T, b *Bus, rec *recorder) {
			watchAndWait(t, b, rec, "x", "y")
			b.Unwatch("x")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, _, b, bRec := twoReplicas(t)
			tt.setup(t, b, bRec)

			// One publisher, one connection: Redis handles x's event first
			// and would deliver it to b first.
			a.Publish(context.Background(), typing("x", "in x"))
			a.Publish(context.Background(), typing("y", "in y"))
			if got := bRec.next(t); got.Room != "y" {
				t.Errorf("got an event in %q, want only y's", got.Room)
			}
		})
	}
}

func TestWatchUnwatchWatchEndsSubscribed(t *testing.T) {
	t.Parallel()
	a, _, b, bRec := twoReplicas(t)
	b.Watch("r")
	b.Unwatch("r")
	b.Watch("r")
	// The subscriber sends r's last change no later than the SUBSCRIBE of a
	// room watched after it, so by that room's Resync, r's is settled.
	watchAndWait(t, b, bRec, "barrier")

	a.Publish(context.Background(), typing("r", "after"))
	if got := bRec.next(t); got.Room != "r" {
		t.Errorf("got an event in %q, want r's", got.Room)
	}
}

func TestResubscribesAfterConnectionLoss(t *testing.T) {
	t.Parallel()
	opts := redisOptions(t)
	proxy := testenv.StartProxy(t, opts.Addr)
	prefix := randomPrefix()
	a, aRec := startBus(t, mustClient(t, opts), "a", Options{Prefix: prefix})
	b, bRec := startBus(t, mustClient(t, viaProxy(opts, proxy)), "b", Options{Prefix: prefix})
	watchAndWait(t, a, aRec, "r")
	watchAndWait(t, b, bRec, "r")

	proxy.Cut()
	for range 100 {
		b.Publish(context.Background(), typing("r", "lost")) // must return though Redis is gone
	}
	testenv.EventuallyWithin(t, waitTimeout, "b counts its publishes as failed or dropped", func() bool {
		s := b.Stats()
		return s.PublishErrors+s.Dropped > 0
	})

	proxy.Restore()
	bRec.waitResync(t, "r")
	if got := b.Stats().Reconnects; got == 0 {
		t.Errorf("got %d reconnects, want at least 1", got)
	}
	testenv.EventuallyWithin(t, waitTimeout, "b is subscribed to one channel again", func() bool { return b.Stats().Subscribed == 1 })

	a.Publish(context.Background(), typing("r", "from a"))
	if got := bRec.next(t); got.User.ID != "from a" {
		t.Errorf("b got %+v, want a's event after the restore", got)
	}
	b.Publish(context.Background(), typing("r", "from b"))
	// go-redis may still be retrying a batch from the outage, so a may hear
	// of a "lost" event first.
	aRec.waitFor(t, "b's event after the restore", func(ev chat.Event) bool { return ev.User.ID == "from b" })
}

func TestReplacesAConnectionThatFallsSilent(t *testing.T) {
	t.Parallel()
	opts := redisOptions(t)
	hole := startBlackhole(t, opts.Addr)
	prefix := randomPrefix()
	a, _ := startBus(t, mustClient(t, opts), "a", Options{Prefix: prefix})
	silenced := *opts
	silenced.Addr = hole.addr()
	silenced.ReadTimeout = 200 * time.Millisecond // so that handshakes into the hole fail fast
	b, bRec := startBus(t, mustClient(t, &silenced), "b", Options{Prefix: prefix, HealthInterval: 50 * time.Millisecond})
	watchAndWait(t, b, bRec, "r")

	// Nothing errors on a connection into the hole; only unanswered pings
	// can tell.
	hole.frozen.Store(true)
	testenv.EventuallyWithin(t, waitTimeout, "b gives up on the silent connection", func() bool { return b.Stats().Subscribed == 0 })
	hole.frozen.Store(false)

	bRec.waitResync(t, "r")
	if got := b.Stats().Reconnects; got == 0 {
		t.Errorf("got %d reconnects, want at least 1", got)
	}
	a.Publish(context.Background(), typing("r", "after"))
	if got := bRec.next(t); got.User.ID != "after" {
		t.Errorf("got %+v, want a's event after the silence", got)
	}
}

func TestMalformedPayloadsAreCountedAndSkipped(t *testing.T) {
	t.Parallel()
	a, _, b, bRec := twoReplicas(t)
	watchAndWait(t, b, bRec, "r")

	raw := mustClient(t, redisOptions(t))
	bad := []string{"not json", `{"v":9,"o":"x","k":"hello"}`, `{"v":1,"o":"x","k":"shout"}`, `{"v":1,"o":"x","k":"message"}`}
	for _, payload := range bad {
		if err := raw.Publish(t.Context(), b.channel("r"), payload).Err(); err != nil {
			t.Fatal(err)
		}
	}
	a.Publish(context.Background(), typing("r", "good"))

	if got := bRec.next(t); got.User.ID != "good" {
		t.Errorf("got %+v, want the good event", got)
	}
	if got := b.Stats().Malformed; got != uint64(len(bad)) {
		t.Errorf("got %d malformed, want %d", got, len(bad))
	}
}

func TestClosedBusIgnoresCalls(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		start bool
	}{
		{"closed after start", true},
		{"closed before start", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Nothing has to listen: a closed bus must not try to talk.
			client := mustClient(t, &redis.Options{Addr: testenv.ClosedAddr(t)})
			b := New(client, "a", Options{QueueSize: 1, Logger: testLogger(t)})
			rec := newRecorder()
			if tt.start {
				b.Start(rec)
			}
			b.Close()
			b.Close()

			before := b.Stats()
			for range 10 {
				b.Publish(context.Background(), typing("r", "late"))
			}
			b.Watch("r")
			b.Unwatch("s")
			b.Start(rec)
			b.Close()

			if got := b.Stats(); got != before {
				t.Errorf("got stats %+v after Close, want them unchanged from %+v", got, before)
			}
			if b.watching("r") {
				t.Errorf("got r watched, want Watch after Close ignored")
			}
		})
	}
}

func TestPublishNeverBlocksWhenRedisIsGone(t *testing.T) {
	t.Parallel()
	opts := redisOptions(t)
	proxy := testenv.StartProxy(t, opts.Addr)
	proxy.Cut()
	b, _ := startBus(t, mustClient(t, viaProxy(opts, proxy)), "b", Options{Prefix: randomPrefix(), QueueSize: 1})

	for range 10000 {
		b.Publish(context.Background(), typing("r", "x"))
	}
	if got := b.Stats().Dropped; got == 0 {
		t.Errorf("got %d dropped, want some: a queue of one cannot hold 10000 events", got)
	}
}

// Rooms watched and unwatched while Redis is away leave nothing behind: the
// next connection subscribes whatever is wanted then.
func TestWatchChurnWhileRedisIsGoneKeepsNoState(t *testing.T) {
	t.Parallel()
	client := redis.NewClient(&redis.Options{Addr: testenv.ClosedAddr(t), MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	b, _ := startBus(t, client, "b", Options{Prefix: randomPrefix()})
	for i := range 10000 {
		room := fmt.Sprint("room-", i)
		b.Watch(room)
		b.Unwatch(room)
	}
	testenv.EventuallyWithin(t, waitTimeout, "the noted changes to be dropped", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.dirty) == 0 && len(b.wanted) == 0
	})
}

// Repeated warnings are logged once per logEvery by the bus's clock, each
// saying how many were held back since the last.
func TestRepeatedWarningsAreLoggedOncePerLogEvery(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	steps := []struct {
		at         time.Duration
		wantOK     bool
		wantMissed int
	}{
		{0, true, 0},
		{time.Second, false, 0},
		{logEvery - time.Nanosecond, false, 0},
		{logEvery, true, 2},
		{logEvery + time.Second, false, 0},
		{5 * logEvery, true, 1},
	}
	var warn sometimes
	for _, st := range steps {
		missed, ok := warn.allow(start.Add(st.at))
		if ok != st.wantOK || missed != st.wantMissed {
			t.Errorf("at %v: got (%d, %t), want (%d, %t)", st.at, missed, ok, st.wantMissed, st.wantOK)
		}
	}
}

// BenchmarkPublishReceive measures events a second from one replica to
// another through Redis.
func BenchmarkPublishReceive(bm *testing.B) {
	a, _, b, bRec := twoReplicas(bm)
	watchAndWait(bm, b, bRec, "r")
	ev := chat.Event{Kind: chat.EventMessage, Room: "r", Message: chat.Message{
		ID: "m-0123456789", Room: "r", Seq: 1, ClientID: "c-0123456789",
		User: chat.User{ID: "u-0123456789", Username: "someone"},
		Body: strings.Repeat("x", 100), TS: time.Now().UTC(),
	}}
	// Staying well inside the queue keeps the benchmark from measuring
	// drops.
	const window = 1024

	bm.ResetTimer()
	received := 0
	for i := range bm.N {
		for ; i-received >= window; received++ {
			bRec.next(bm)
		}
		ev.Message.Seq = int64(i)
		a.Publish(context.Background(), ev)
	}
	for ; received < bm.N; received++ {
		bRec.next(bm)
	}
	bm.ReportMetric(float64(bm.N)/bm.Elapsed().Seconds(), "events/s")
}

// recorder is a Receiver that a test can wait on.
type recorder struct {
	events  chan chat.Event
	resyncs chan string
}

func newRecorder() *recorder {
	return &recorder{events: make(chan chat.Event, 4096), resyncs: make(chan string, 4096)}
}

func (r *recorder) Receive(_ context.Context, ev chat.Event) { r.events <- ev }
func (r *recorder) Resync(room string)                       { r.resyncs <- room }

// next returns the next event the bus handed over.
func (r *recorder) next(t testing.TB) chat.Event {
	t.Helper()
	select {
	case ev := <-r.events:
		return ev
	case <-time.After(waitTimeout):
		t.Fatalf("no event within %v", waitTimeout)
		return chat.Event{}
	}
}

// waitFor skips events until one matches.
func (r *recorder) waitFor(t testing.TB, what string, match func(chat.Event) bool) chat.Event {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case ev := <-r.events:
			if match(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s within %v", what, waitTimeout)
			return chat.Event{}
		}
	}
}

// waitResync waits until every room is resynced, in any order, skipping
// other rooms.
func (r *recorder) waitResync(t testing.TB, rooms ...string) {
	t.Helper()
	pending := make(map[string]bool)
	for _, room := range rooms {
		pending[room] = true
	}
	deadline := time.After(waitTimeout)
	for len(pending) > 0 {
		select {
		case got := <-r.resyncs:
			delete(pending, got)
		case <-deadline:
			t.Fatalf("no resync of %v within %v", slices.Sorted(maps.Keys(pending)), waitTimeout)
		}
	}
}

// watchAndWait watches rooms and waits until each subscription is confirmed.
func watchAndWait(t testing.TB, b *Bus, rec *recorder, rooms ...string) {
	t.Helper()
	for _, room := range rooms {
		b.Watch(room)
	}
	rec.waitResync(t, rooms...)
}

// twoReplicas starts buses a and b on the test Redis, apart from other tests.
func twoReplicas(t testing.TB) (a *Bus, aRec *recorder, b *Bus, bRec *recorder) {
	t.Helper()
	opts := redisOptions(t)
	prefix := randomPrefix()
	a, aRec = startBus(t, mustClient(t, opts), "a", Options{Prefix: prefix})
	b, bRec = startBus(t, mustClient(t, opts), "b", Options{Prefix: prefix})
	return a, aRec, b, bRec
}

// startBus starts a bus that closes when the test ends, before its client.
func startBus(t testing.TB, client *redis.Client, origin string, opts Options) (*Bus, *recorder) {
	t.Helper()
	opts.Logger = testLogger(t)
	b := New(client, origin, opts)
	rec := newRecorder()
	b.Start(rec)
	t.Cleanup(b.Close)
	return b, rec
}

func redisOptions(t testing.TB) *redis.Options {
	t.Helper()
	opts, err := redis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatalf("TEST_REDIS_URL: %v", err)
	}
	return opts
}

// viaProxy returns a copy of opts that connects through proxy.
func viaProxy(opts *redis.Options, proxy *testenv.Proxy) *redis.Options {
	o := *opts
	o.Addr = proxy.Addr()
	return &o
}

func mustClient(t testing.TB, opts *redis.Options) *redis.Client {
	t.Helper()
	client := redis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	return client
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// randomPrefix keeps a test's channels apart from every other test's on the
// shared Redis.
func randomPrefix() string { return "parley-test:" + rand.Text() + ":" }

func typing(room, userID string) chat.Event {
	return chat.Event{Kind: chat.EventTyping, Room: room, User: chat.User{ID: userID, Username: userID}}
}

// blackhole forwards TCP connections to a target until frozen; frozen, it
// drops whatever either side sends and closes nothing, as a network
// partition does, which only a health check notices.
type blackhole struct {
	ln     net.Listener
	target string
	frozen atomic.Bool
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

// startBlackhole listens on a loopback port; it stops when the test ends.
func startBlackhole(t testing.TB, target string) *blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &blackhole{ln: ln, target: target}
	h.wg.Go(h.serve)
	t.Cleanup(h.close)
	return h
}

func (h *blackhole) addr() string { return h.ln.Addr().String() }

func (h *blackhole) serve() {
	for {
		client, err := h.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", h.target)
		if err != nil {
			client.Close()
			continue
		}
		if !h.track(client, server) {
			client.Close()
			server.Close()
			return
		}
		h.wg.Go(func() { h.pipe(server, client) })
		h.wg.Go(func() { h.pipe(client, server) })
	}
}

// pipe copies src to dst, dropping what it reads while frozen, and closes
// dst when src ends so the other side hears of it.
func (h *blackhole) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !h.frozen.Load() {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// track records a forwarded pair unless the blackhole is closing.
func (h *blackhole) track(conns ...net.Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.conns = append(h.conns, conns...)
	return true
}

func (h *blackhole) close() {
	h.ln.Close()
	h.mu.Lock()
	h.closed = true
	for _, c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}
