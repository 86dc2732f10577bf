package redisbus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/parleychat/parley/server/internal/chat"
)

const (
	// Between failed subscription connections the receiver waits
	// reconnectMin, doubling up to reconnectMax. Only a connection that
	// lasted reconnectMax resets the wait, so one that Redis accepts and
	// drops at once (an overloaded server, a client output buffer limit
	// hit at every resubscribe) is not retried ten times a second.
	reconnectMin = 100 * time.Millisecond
	reconnectMax = 5 * time.Second
	// staleAfter is how many health intervals of silence, pings unanswered,
	// make the receiver give up on a connection.
	staleAfter = 3
	// subscribeBatch bounds the channels named in one SUBSCRIBE or
	// UNSUBSCRIBE, which Redis reads as a single request.
	subscribeBatch = 512
)

// receiveLoop owns the subscription connection: it opens one, reads it
// until it fails, and opens another, until ctx ends.
//
// go-redis's PubSub would reconnect and resubscribe by itself, but silently:
// after its own reconnect nothing says which subscriptions were renewed, and
// the hub would not know to catch up. So the bus never reads a PubSub again
// once it has reported an error; it closes it and starts a fresh one with no
// channels, which the subscriber then subscribes afresh, each confirmation
// arriving here and becoming a Resync.
func (b *Bus) receiveLoop(ctx context.Context, recv Receiver) {
	backoff := reconnectMin
	failed := false
	var warn sometimes
	for {
		// Subscribe without channels makes no connection; the ping does,
		// so that a dead Redis shows here rather than in the subscriber.
		ps := b.client.Subscribe(ctx)
		err := ps.Ping(ctx)
		if err == nil && b.attach(ps) {
			if failed {
				b.stats.reconnects.Add(1)
				b.log.Info("redisbus: subscription connection restored")
			}
			attached := b.now()
			err = b.listen(ctx, ps, recv)
			b.detach(ps)
			if b.now().Sub(attached) >= reconnectMax {
				backoff = reconnectMin
			}
		}
		ps.Close()
		if ctx.Err() != nil {
			return
		}
		failed = true
		if missed, ok := warn.allow(b.now()); ok {
			b.log.Warn("redisbus: subscription connection failed; events from other replicas are delayed until it is back",
				"err", err, "retry_in", backoff, "similar_warnings_suppressed", missed)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, reconnectMax)
	}
}

// attach makes ps the connection the subscriber works on. It reports false,
// leaving ps to the caller to close, once the bus is closed: Close only
// closes the connection it finds attached.
func (b *Bus) attach(ps *redis.PubSub) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return false
	}
	b.pubsub = ps
	b.gen++
	b.wake()
	return true
}

func (b *Bus) detach(ps *redis.PubSub) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pubsub == ps {
		b.pubsub = nil
	}
	b.stats.subscribed.Store(0)
}

// listen reads ps and hands what it reads on, until ps fails, goes silent or
// ctx ends.
func (b *Bus) listen(ctx context.Context, ps *redis.PubSub, recv Receiver) error {
	var warn sometimes
	heard := b.now()
	for {
		msg, err := ps.ReceiveTimeout(ctx, b.health)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			// go-redis keeps the connection after a read timeout (and only
			// then): it is merely quiet. Ask it for a pong, and give up once
			// several intervals pass without one, as a connection whose
			// peer vanished without a reset never reports an error.
			if !isTimeout(err) {
				return err
			}
			if silent := b.now().Sub(heard); silent >= staleAfter*b.health {
				return fmt.Errorf("no reply from Redis for %v", silent.Round(time.Millisecond))
			}
			if err := ps.Ping(ctx); err != nil {
				return err
			}
			continue
		}
		heard = b.now()

		switch m := msg.(type) {
		case *redis.Subscription:
			b.stats.subscribed.Store(int64(m.Count))
			room, ok := strings.CutPrefix(m.Channel, b.roomPrefix)
			// Why a confirmation is the moment to resync: Redis handles
			// SUBSCRIBE and PUBLISH one at a time. An event published after
			// the SUBSCRIBE reaches this connection, after this
			// confirmation. One published before it was stored before it
			// (the hub stores a message, then publishes it), so the store
			// read that Resync starts, which comes later still, sees it.
			if m.Kind == "subscribe" && ok && b.watching(room) {
				recv.Resync(room)
			}
		case *redis.Message:
			room, ok := strings.CutPrefix(m.Channel, b.roomPrefix)
			if !ok || !b.watching(room) {
				continue // unwatched; its UNSUBSCRIBE is on its way
			}
			ev, traceparent, err := decode(room, []byte(m.Payload))
			if err != nil {
				b.stats.malformed.Add(1)
				if missed, ok := warn.allow(b.now()); ok {
					b.log.Warn("redisbus: dropping an event that cannot be decoded", "room", room,
						"bytes", len(m.Payload), "err", err, "similar_warnings_suppressed", missed)
				}
				continue
			}
			if ev.Origin == b.origin {
				continue // delivered locally when it was published
			}
			b.stats.received.Add(1)
			b.deliver(ctx, recv, ev, traceparent)
		case *redis.Pong:
			// Only proof of life, already noted.
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// subscribeLoop brings the subscription connection's channels in line with
// the rooms the hub watches, whenever either changes, until ctx ends. Being
// the only goroutine that sends SUBSCRIBE and UNSUBSCRIBE, it sends them in
// the order the hub asked for them.
func (b *Bus) subscribeLoop(ctx context.Context) {
	var (
		ps   *redis.PubSub
		gen  uint64
		sent = make(map[string]struct{}) // rooms SUBSCRIBEd on ps and not since UNSUBSCRIBEd
		warn sometimes
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.poke:
		}

		b.mu.Lock()
		if b.pubsub == nil {
			// Between connections; the next attach wakes us again and
			// subscribes every wanted room, so the changes noted until
			// then need not be kept (they would pile up while Redis is
			// away).
			clear(b.dirty)
			b.mu.Unlock()
			continue
		}
		if b.gen != gen {
			// A new connection has no channels: every watched room needs one.
			ps, gen = b.pubsub, b.gen
			clear(sent)
			for room := range b.wanted {
				b.dirty[room] = struct{}{}
			}
		}
		var subs, unsubs []string
		for room := range b.dirty {
			if _, ok := b.wanted[room]; ok {
				// Even when already subscribed: the room was unwatched and
				// watched again, and the events in between were dropped, so
				// the hub needs the Resync that a fresh confirmation brings.
				subs = append(subs, room)
			} else if _, ok := sent[room]; ok {
				unsubs = append(unsubs, room)
			}
		}
		clear(b.dirty)
		b.mu.Unlock()

		if err := b.apply(ctx, ps, subs, unsubs, sent); err != nil && ctx.Err() == nil {
			if missed, ok := warn.allow(b.now()); ok {
				b.log.Warn("redisbus: subscribe failed; reconnecting", "err", err, "similar_warnings_suppressed", missed)
			}
			// The connection is broken or closing. Closing it makes the
			// receiver replace it, and the new one gets every room.
			ps.Close()
		}
	}
}

// apply sends the UNSUBSCRIBEs and SUBSCRIBEs and records them in sent.
func (b *Bus) apply(ctx context.Context, ps *redis.PubSub, subs, unsubs []string, sent map[string]struct{}) error {
	// slices.Chunk yields nothing for no rooms, and an UNSUBSCRIBE naming no
	// channels would leave them all.
	for chunk := range slices.Chunk(unsubs, subscribeBatch) {
		if err := ps.Unsubscribe(ctx, b.channels(chunk)...); err != nil {
			return err
		}
		for _, room := range chunk {
			delete(sent, room)
		}
	}
	for chunk := range slices.Chunk(subs, subscribeBatch) {
		if err := ps.Subscribe(ctx, b.channels(chunk)...); err != nil {
			return err
		}
		for _, room := range chunk {
			sent[room] = struct{}{}
		}
	}
	return nil
}

func (b *Bus) channels(rooms []string) []string {
	chs := make([]string, len(rooms))
	for i, room := range rooms {
		chs[i] = b.channel(room)
	}
	return chs
}

// deliver hands ev to the receiver. A message gets a delivery span: one per
// message and replica, however many members it reaches here, in the
// sender's trace and linked to the span that published it.
//
// ctx is the bus's own: it ends when the bus closes, so a receiver that
// waits on it (an injected slow fan-out) cannot hold Close up.
func (b *Bus) deliver(ctx context.Context, recv Receiver, ev chat.Event, traceparent string) {
	if ev.Kind != chat.EventMessage {
		recv.Receive(ctx, ev)
		return
	}
	if b.lag != nil {
		// Clocks of two replicas may disagree by more than the lag.
		b.lag(max(0, b.now().Sub(ev.Message.TS)))
	}
	ctx = b.propagator.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("messaging.system", "redis"),
			attribute.Int64("parley.seq", ev.Message.Seq)),
	}
	if published := trace.SpanContextFromContext(ctx); published.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: published}))
	}
	ctx, span := b.tracer.Start(ctx, "chat.deliver", opts...)
	defer span.End()
	recv.Receive(ctx, ev)
}
