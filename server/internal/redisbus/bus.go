// Package redisbus carries room events between replicas over Redis pub/sub:
// it implements chat.Bus.
//
// Each room has one channel, Prefix+"room:"+id, and an event is published
// once per room whatever the number of replicas or members. The bus is a fast
// path that may lose events (see chat.Bus); when it may have lost some, it
// says so through Receiver.Resync and the hub catches up from the store.
//
// Three goroutines do the work, each with one job, so the hub never waits on
// Redis:
//
//   - the publisher drains a bounded queue and sends events in pipelined
//     batches;
//   - the receiver owns the subscription connection: it reads from it, pings
//     it when it is quiet, and replaces it when it breaks;
//   - the subscriber issues every SUBSCRIBE and UNSUBSCRIBE, so they reach
//     Redis in the order the hub asked for them.
package redisbus

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Receiver is what the bus hands other replicas' events to: the hub. Both
// methods run on the bus's receive goroutine, one call at a time and in the
// order Redis delivered them; while one runs no other event is read, so they
// must return quickly (a slow receiver makes Redis drop the connection, which
// the bus survives by resubscribing, at the cost of a resync).
type Receiver interface {
	// Receive is given an event another replica published in a room this
	// bus watches; for a message, ctx carries the span of its delivery.
	Receive(ctx context.Context, ev chat.Event)
	// Resync says that the subscription to room was confirmed, for the first
	// time or again after a lost connection: events published from now on
	// will arrive, and those published earlier may have been missed, so the
	// hub catches up from the store.
	Resync(room string)
}

// Options tune a Bus. The zero value is valid.
type Options struct {
	// Prefix starts every channel name, so that deployments (or tests)
	// sharing a Redis stay apart. Default "parley:".
	Prefix string
	// QueueSize bounds the events waiting to be published; when it is full,
	// Publish drops the event. Default 8192.
	QueueSize int
	// HealthInterval is how long the subscription connection may stay quiet
	// before the bus pings it; one that stays silent for three intervals is
	// taken to be dead and replaced. Default 5s.
	HealthInterval time.Duration
	// Logger receives the bus's warnings. Default: discard them.
	Logger *slog.Logger
	// Tracer makes a span for each message published (chat.publish) and
	// delivered (chat.deliver), and Propagator carries the publish span's
	// context in the envelope. Defaults: no spans, W3C trace context.
	Tracer     trace.Tracer
	Propagator propagation.TextMapPropagator
	// Lag, if set, is told how long each message received took from its
	// arrival at the sender's server (its timestamp) to here.
	Lag func(time.Duration)
	// Now is the clock that times that lag, the silence of the subscription
	// connection, the life of a connection before its backoff resets, and
	// the pace of repeated warnings; nil means time.Now. Waits on Redis
	// (read timeouts, backoffs) use package time.
	Now func() time.Time
}

// Stats counts what a Bus did since it was made. Every field but Subscribed
// only grows.
type Stats struct {
	Published     uint64 // events Redis accepted
	PublishErrors uint64 // events that could not be encoded or sent, and were dropped
	Dropped       uint64 // events dropped because the publish queue was full
	Received      uint64 // events from other replicas handed to the receiver
	Malformed     uint64 // payloads that could not be decoded, and were dropped
	Reconnects    uint64 // subscription connections established after a failure
	Subscribed    int64  // channels the subscription connection is on, as Redis last confirmed
}

// Bus is a chat.Bus over Redis pub/sub. Make one with New, then Start it
// with the hub; Close stops it.
type Bus struct {
	client     *redis.Client
	origin     string
	roomPrefix string // Prefix + "room:"
	health     time.Duration
	log        *slog.Logger
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	lag        func(time.Duration)
	now        func() time.Time

	queue chan outgoing
	poke  chan struct{} // wakes the subscriber; capacity 1, as one pending wake-up covers any number of changes
	wg    sync.WaitGroup

	closed atomic.Bool // set under mu, read without it on the hot path of Publish

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	wanted  map[string]struct{} // rooms the hub watches
	dirty   map[string]struct{} // rooms watched or unwatched since the subscriber last looked
	pubsub  *redis.PubSub       // the current subscription connection; nil between connections
	gen     uint64              // counts subscription connections, so the subscriber notices a new one

	stats struct {
		published, publishErrors, dropped atomic.Uint64
		received, malformed, reconnects   atomic.Uint64
		subscribed                        atomic.Int64
	}
}

var _ chat.Bus = (*Bus)(nil)

// New returns a bus that publishes and subscribes through client, which the
// caller creates and closes (after Close). origin names this replica and must
// be unique among the replicas: the bus drops the events it reads whose
// origin is its own. New panics on a nil client or an empty origin.
func New(client *redis.Client, origin string, opts Options) *Bus {
	if client == nil || origin == "" {
		panic("redisbus: New needs a client and an origin")
	}
	if opts.Prefix == "" {
		opts.Prefix = "parley:"
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 8192
	}
	if opts.HealthInterval <= 0 {
		opts.HealthInterval = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Tracer == nil {
		opts.Tracer = noop.NewTracerProvider().Tracer("")
	}
	if opts.Propagator == nil {
		opts.Propagator = propagation.TraceContext{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Bus{
		client:     client,
		origin:     origin,
		roomPrefix: opts.Prefix + "room:",
		health:     opts.HealthInterval,
		log:        opts.Logger,
		queue:      make(chan outgoing, opts.QueueSize),
		tracer:     opts.Tracer,
		propagator: opts.Propagator,
		lag:        opts.Lag,
		now:        opts.Now,
		poke:       make(chan struct{}, 1),
		wanted:     make(map[string]struct{}),
		dirty:      make(map[string]struct{}),
	}
}

// Start starts the bus's goroutines; recv gets other replicas' events from
// now on. Events published and rooms watched before Start are kept and acted
// on. Start does nothing after the first call or after Close.
func (b *Bus) Start(recv Receiver) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started || b.closed.Load() {
		return
	}
	b.started = true
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	b.wg.Go(func() { b.publishLoop(ctx) })
	b.wg.Go(func() { b.receiveLoop(ctx, recv) })
	b.wg.Go(func() { b.subscribeLoop(ctx) })
}

// Close stops the bus and waits for its goroutines. It sends what is still
// queued first, within a second. Later calls to any method do nothing; Close
// may be called more than once.
func (b *Bus) Close() {
	b.mu.Lock()
	b.closed.Store(true)
	if b.cancel != nil {
		b.cancel()
	}
	ps := b.pubsub
	b.mu.Unlock()
	// The receiver may be blocked reading the connection for up to
	// HealthInterval; closing it from here ends the read at once.
	if ps != nil {
		ps.Close()
	}
	b.wg.Wait()
}

// Publish queues ev for the other replicas and returns at once: when the
// queue is full the event is dropped, and the hub's catch-up from the store
// makes up for it. The bus keeps ev until it is sent, so the caller must not
// change ev.Users afterwards.
func (b *Bus) Publish(ctx context.Context, ev chat.Event) {
	if b.closed.Load() {
		return
	}
	ev.Origin = b.origin
	out := outgoing{ev: ev, span: trace.SpanFromContext(context.Background())}
	if ev.Kind == chat.EventMessage {
		// The span lasts until Redis has the message: its queueing and the
		// round trip are the broker's share of the delivery.
		_, out.span = b.tracer.Start(ctx, "chat.publish", trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(attribute.String("messaging.system", "redis"),
				attribute.String("messaging.destination.name", b.channel(ev.Room)),
				attribute.Int64("parley.seq", ev.Message.Seq)))
	}
	select {
	case b.queue <- out:
	default:
		b.stats.dropped.Add(1)
		out.done(errors.New("publish queue full"))
	}
}

// outgoing is an event on its way to Redis, with its publish span (a
// non-recording one for events other than messages).
type outgoing struct {
	ev   chat.Event
	span trace.Span
}

// done ends the publish span, marking it failed when err is not nil.
func (o outgoing) done(err error) {
	if err != nil {
		o.span.SetStatus(codes.Error, err.Error())
	}
	o.span.End()
}

// Watch subscribes to room's channel. It returns at once; the subscription
// is made in the background and confirmed by Receiver.Resync.
func (b *Bus) Watch(room string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return
	}
	if _, ok := b.wanted[room]; ok {
		return
	}
	b.wanted[room] = struct{}{}
	b.dirty[room] = struct{}{}
	b.wake()
}

// Unwatch unsubscribes from room's channel. It returns at once; from then
// on the receiver gets none of room's events, even those Redis sent before
// the UNSUBSCRIBE, save one that was already being handed over.
func (b *Bus) Unwatch(room string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return
	}
	if _, ok := b.wanted[room]; !ok {
		return
	}
	delete(b.wanted, room)
	b.dirty[room] = struct{}{}
	b.wake()
}

// Stats returns the bus's counters.
func (b *Bus) Stats() Stats {
	return Stats{
		Published:     b.stats.published.Load(),
		PublishErrors: b.stats.publishErrors.Load(),
		Dropped:       b.stats.dropped.Load(),
		Received:      b.stats.received.Load(),
		Malformed:     b.stats.malformed.Load(),
		Reconnects:    b.stats.reconnects.Load(),
		Subscribed:    b.stats.subscribed.Load(),
	}
}

// wake tells the subscriber that there is work, without waiting for it.
func (b *Bus) wake() {
	select {
	case b.poke <- struct{}{}:
	default:
	}
}

// watching reports whether the hub watches room.
func (b *Bus) watching(room string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.wanted[room]
	return ok
}

func (b *Bus) channel(room string) string { return b.roomPrefix + room }

// logEvery is the most often a repeating warning is logged.
const logEvery = time.Minute

// sometimes lets a repeating warning through at most once per logEvery, so
// that a Redis outage or a misbehaving publisher cannot flood the log. Each
// goroutine keeps its own.
type sometimes struct {
	last   time.Time
	missed int
}

// allow reports whether to log at now, and how many warnings it held back
// since the last one it let through.
func (s *sometimes) allow(now time.Time) (missed int, ok bool) {
	if !s.last.IsZero() && now.Sub(s.last) < logEvery {
		s.missed++
		return 0, false
	}
	missed, s.missed, s.last = s.missed, 0, now
	return missed, true
}
