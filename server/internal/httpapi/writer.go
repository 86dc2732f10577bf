package httpapi

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/parleychat/parley/server/internal/chat"
)

// Offer implements chat.Subscriber.
func (c *conn) Offer(frame chat.Frame) bool {
	select {
	case <-c.closing:
		return false
	default:
	}
	c.out.mu.Lock()
	ok, start := c.out.push(frame)
	c.startWriter(start)
	c.out.mu.Unlock()
	return ok
}

// Push implements chat.Subscriber. The hub pushes only the replay a join
// asked for, on the reader's goroutine: an answer to the client's own frame
// like any other, so it waits while the queue is above the watermark (as
// awaitQueue does), and the replay never leaves the queue full for the
// room's live frames that follow it.
func (c *conn) Push(ctx context.Context, frame chat.Frame) error {
	for {
		c.out.mu.Lock()
		if c.out.shut {
			c.out.mu.Unlock()
			return errConnClosed
		}
		if c.out.n <= c.watermark {
			ok, start := c.out.push(frame)
			c.startWriter(start)
			c.out.mu.Unlock()
			if ok {
				return nil
			}
		} else {
			c.out.mu.Unlock()
		}
		select {
		case <-c.drained:
		case <-c.closing:
			return errConnClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Slow implements chat.Subscriber.
func (c *conn) Slow() {
	if c.closeWith(closeTooSlow, "too slow") {
		c.s.metrics.slowCloses.Inc()
	}
}

// send queues a reply of the given kind (ack, error, left) to the client.
// The reader waits for the queue to drain before each frame (awaitQueue), so
// a reply finds it full only when the client's rooms filled it: a member
// that does not read what they fan out is too slow.
func (c *conn) send(kind string, data []byte) {
	if !c.Offer(chat.Frame{Data: data, Kind: kind}) {
		c.Slow()
	}
}

// ping asks for a ping; keepalive.go calls it when one is due.
func (c *conn) ping() { c.callWriter(func(q *sendQueue) { q.pingDue = true }) }

// pong asks the writer to answer the client's ping; the reader calls it
// (clientframes.go). A ping not yet answered is
// answered by the pong to the latest (RFC 6455, section 5.5.3).
func (c *conn) pong(data []byte) {
	c.callWriter(func(q *sendQueue) { q.pong = data })
}

// wakeWriter makes sure a writer sees that the connection is closing.
// closeWith calls it.
func (c *conn) wakeWriter() { c.callWriter(nil) }

// callWriter asks for a control frame with set, unless the connection has
// written its last, and makes sure a writer will see it.
func (c *conn) callWriter(set func(*sendQueue)) {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	if c.out.shut {
		return
	}
	if set != nil {
		set(&c.out)
	}
	c.startWriter(c.out.callWriter())
}

// startWriter submits the connection to the writers when callWriter or
// push asked for it. It is counted while out.mu is held, before the queue
// can be shut, so that end cannot wait for the writing while a writer is
// about to start it.
func (c *conn) startWriter(start bool) {
	if start {
		c.writers.Add(1)
		c.s.writers.submit(c)
	}
}

// next takes the writer's next batch into b and reports whether there is
// one; with none, the writer is done with the connection. closing reports
// that the connection is closing instead: a close takes precedence over
// queued frames, since a member dropped as too slow must not be fed the
// frames it could not take.
func (c *conn) next(b *wireBatch) (closing, ok bool) {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	select {
	case <-c.closing:
		return true, false
	default:
	}
	b.ping, c.out.pingDue = c.out.pingDue, false
	b.pong, c.out.pong = c.out.pong, nil
	b.frames = c.out.popInto(b.frames, maxBatch)
	if b.empty() {
		c.out.writing = false
		return false, false
	}
	if c.out.n <= c.watermark {
		c.wakeReader()
	}
	return false, true
}

// writeQueued is a writer's job for the connection (see pool.go): it
// writes everything waiting, a batch at a time (framing.go), in the order
// queued, until nothing is left, and on a closing connection the close.
// One writer at most works for a connection at a time.
func (c *conn) writeQueued() {
	defer c.writers.Done()
	b := c.s.batches.Get().(*wireBatch)
	defer c.s.batches.Put(b)
	for {
		closing, ok := c.next(b)
		switch {
		case closing:
			c.finish(b)
			c.shutQueue()
			return
		case !ok:
			return
		}
		if !c.write(b) {
			c.shutQueue()
			return
		}
	}
}

// shutQueue ends the writing for good: nothing more is queued, and no
// writer starts again.
func (c *conn) shutQueue() {
	c.out.mu.Lock()
	c.out.shut = true
	c.out.writing = false
	clear(c.out.ring)
	c.out.release()
	c.out.n, c.out.head = 0, 0
	c.out.mu.Unlock()
}

// wakeReader tells a reader waiting in awaitQueue that the queue has
// drained to the watermark. The signal is kept for a reader about to wait,
// and one covers any number of frames taken.
func (c *conn) wakeReader() {
	select {
	case c.drained <- struct{}{}:
	default:
	}
}

// finish writes what a drain leaves queued (acks of the last sends among
// it) and then the close frame, and gives the client closeGrace to answer.
func (c *conn) finish(b *wireBatch) {
	for c.draining.Load() {
		c.out.mu.Lock()
		b.frames = c.out.popInto(b.frames, maxBatch)
		c.out.mu.Unlock()
		if len(b.frames) == 0 {
			break
		}
		if !c.write(b) {
			return
		}
	}
	if c.code != closeLost {
		b.close = closePayload(c.code, c.reason)
		c.write(b)
	}
	c.stopReading(deadline(closeGrace))
}

// write writes the batch in one go, and empties it. A live message's
// delivery is timed here, from its arrival at the server that stored it
// to its write on this socket: the delivery SLI, with the delivery's trace
// as exemplar. The frames of a batch reach the socket together, so they
// share the time they did.
func (c *conn) write(b *wireBatch) bool {
	defer b.reset()
	nc := c.nc
	// The deadline is moved only once half of it has passed: setting it is
	// a timer's update, which for every write would cost more than the
	// rest of the write's own work. A write still times out after half to
	// all of WriteTimeout.
	if now := time.Now(); c.writeBy.Sub(now) < c.s.cfg.WriteTimeout/2 {
		c.writeBy = now.Add(c.s.cfg.WriteTimeout)
		if err := nc.SetWriteDeadline(c.writeBy); err != nil {
			c.lost() // the socket is closed
			return false
		}
	}
	if _, err := nc.Write(b.encode()); err != nil {
		c.lost()
		return false
	}
	if len(b.frames) == 0 {
		return true
	}
	c.framesOut.Add(int64(len(b.frames)))
	now := c.s.now()
	for _, f := range b.frames {
		c.s.metrics.framesOut(f.Kind).Inc()
		if f.Arrived.IsZero() {
			continue
		}
		var sc trace.SpanContext
		if f.Ctx != nil {
			sc = trace.SpanContextFromContext(f.Ctx)
		}
		// Clocks of two replicas may disagree by more than the latency.
		c.s.metrics.deliveryLatency.observe(max(0, now.Sub(f.Arrived)).Seconds(), sc, now)
	}
	return true
}

// lost ends a connection whose socket failed.
func (c *conn) lost() {
	c.closeWith(closeLost, "")
	c.stopReading(deadline(0))
}
