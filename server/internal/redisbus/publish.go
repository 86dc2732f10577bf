package redisbus

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

const (
	// maxBatch bounds the events sent in one pipeline: enough to amortise a
	// round trip under load, small enough that one failure loses little.
	maxBatch = 256
	// After a failed batch the publisher waits, so that a Redis that is down
	// costs a few attempts a second rather than a hot loop; the queue fills
	// and drops meanwhile.
	publishBackoffMin = 50 * time.Millisecond
	publishBackoffMax = time.Second
	// flushTimeout bounds sending what is still queued at Close, such as the
	// presence changes of a replica that is shutting down.
	flushTimeout = time.Second
)

// publishLoop sends queued events until ctx ends, then flushes the queue.
// Only one goroutine publishes, and it sends a batch only after the previous
// one is answered, so Redis sees a room's events in the order of Publish.
func (b *Bus) publishLoop(ctx context.Context) {
	batch := make([]outgoing, 0, maxBatch)
	backoff := publishBackoffMin
	var warn sometimes
	for {
		// Checked first because select picks among ready cases at random:
		// once closed, what is queued goes to flush, with its own deadline,
		// rather than to send with a cancelled context.
		if ctx.Err() != nil {
			b.flush(ctx, batch)
			return
		}
		select {
		case <-ctx.Done():
			continue
		case out := <-b.queue:
			batch = b.fill(append(batch[:0], out))
		}
		err := b.send(ctx, batch)
		clear(batch) // let the sent events' rosters go
		if err == nil {
			backoff = publishBackoffMin
			continue
		}
		if ctx.Err() != nil {
			continue
		}
		if missed, ok := warn.allow(b.now()); ok {
			b.log.Warn("redisbus: publish failed; dropping the batch", "events", len(batch), "err", err, "similar_warnings_suppressed", missed)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, publishBackoffMax)
	}
}

// fill appends what is already queued to batch, up to maxBatch, without
// waiting for more.
func (b *Bus) fill(batch []outgoing) []outgoing {
	for len(batch) < maxBatch {
		select {
		case out := <-b.queue:
			batch = append(batch, out)
		default:
			return batch
		}
	}
	return batch
}

// flush sends what is queued when the bus closes, within flushTimeout.
func (b *Bus) flush(ctx context.Context, batch []outgoing) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer cancel()
	for {
		batch = b.fill(batch[:0])
		if len(batch) == 0 {
			return
		}
		if err := b.send(ctx, batch); err != nil {
			// Redis is failing and time is short: the rest cannot be sent.
			for {
				select {
				case out := <-b.queue:
					b.stats.publishErrors.Add(1)
					out.done(err)
				default:
					return
				}
			}
		}
	}
}

// send publishes batch in one pipeline, counts each event as published or
// failed, and ends the publish spans.
func (b *Bus) send(ctx context.Context, batch []outgoing) error {
	pipe := b.client.Pipeline()
	sent := make([]outgoing, 0, len(batch))
	for _, out := range batch {
		var traceparent string
		if sc := out.span.SpanContext(); sc.IsValid() {
			carrier := propagation.MapCarrier{}
			b.propagator.Inject(trace.ContextWithSpanContext(context.Background(), sc), carrier)
			traceparent = carrier["traceparent"]
		}
		payload, err := encode(out.ev, traceparent)
		if err != nil {
			// A bug in the caller, not in Redis: count it and send the rest.
			b.stats.publishErrors.Add(1)
			out.done(err)
			continue
		}
		pipe.Publish(ctx, b.channel(out.ev.Room), payload)
		sent = append(sent, out)
	}
	cmds, err := pipe.Exec(ctx)
	for i, out := range sent {
		cerr := err
		if i < len(cmds) {
			cerr = cmds[i].Err()
		}
		if cerr != nil {
			b.stats.publishErrors.Add(1)
		} else {
			b.stats.published.Add(1)
		}
		out.done(cerr)
	}
	return err
}
