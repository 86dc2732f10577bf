package httpapi

import (
	"context"

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

// ping asks the writer for a ping; keepalive.go calls it when one is due.
func (c *conn) ping() {
	c.out.mu.Lock()
	if !c.out.shut {
		c.out.pingDue = true
		c.startWriter(c.out.callWriter())
	}
	c.out.mu.Unlock()
}

// pong asks the writer to answer the client's ping; gorilla calls it as
// the ping handler, on the reader's goroutine. A ping not yet answered is
// answered by the pong to the latest (RFC 6455, section 5.5.3).
func (c *conn) pong(data string) error {
	c.out.mu.Lock()
	if !c.out.shut {
		c.out.pong = []byte(data)
		c.startWriter(c.out.callWriter())
	}
	c.out.mu.Unlock()
	return nil
}

// wakeWriter makes sure a writer runs to see that the connection is
// closing. closeWith calls it.
func (c *conn) wakeWriter() {
	c.out.mu.Lock()
	c.startWriter(c.out.callWriter())
	c.out.mu.Unlock()
}

// startWriter starts the writer that callWriter or push asked for. It is
// counted while out.mu is held, before the queue can be shut, so that end
// cannot wait for the writers while one is about to start.
func (c *conn) startWriter(start bool) {
	if start {
		c.writers.Add(1)
		go c.writeLoop()
	}
}

// next waits for the writer's next batch and takes it into b. It reports
// false when the writer is to end: retired while it waited, or because
// the connection is closing, in which case b holds what is still to be
// written (see finish). A close takes precedence over queued frames: a
// member dropped as too slow must not be fed the frames it could not
// take. A writer that has just written only a ping or a pong does not wait
// for more: that is all an idle connection writes, every few seconds.
func (c *conn) next(b *wireBatch, linger bool) (closing bool, ok bool) {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	for {
		select {
		case <-c.closing:
			return true, false
		default:
		}
		b.ping, c.out.pingDue = c.out.pingDue, false
		b.pong, c.out.pong = c.out.pong, nil
		b.frames = c.out.popInto(b.frames, maxBatch)
		if !b.empty() {
			if c.out.n <= c.watermark {
				c.wakeReader()
			}
			return false, true
		}
		if !linger {
			c.out.writing = false
			return false, false
		}
		if !c.out.await() {
			return false, false
		}
	}
}

// writeLoop is the connection's writer. It runs only while there is
// something to write (frames queued, a ping or pong due, the close) or
// there was a moment ago: a connection quiet for a keepalive tick has no
// writer goroutine at all, and its next frame starts one. It writes
// everything waiting at once (framing.go), in the order queued, since one
// writer at most runs at a time.
func (c *conn) writeLoop() {
	defer c.writers.Done()
	var b wireBatch
	linger := true
	for {
		closing, ok := c.next(&b, linger)
		switch {
		case closing:
			c.finish(&b)
			c.shutQueue()
			return
		case !ok:
			return
		}
		linger = len(b.frames) > 0
		if !c.write(&b) {
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
	nc := c.ws.NetConn()
	if err := nc.SetWriteDeadline(deadline(c.s.cfg.WriteTimeout)); err != nil {
		c.lost() // the socket is closed
		return false
	}
	bufs := b.encode()
	if _, err := bufs.WriteTo(nc); err != nil {
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
		observeWithTrace(c.s.metrics.deliveryLatency, max(0, now.Sub(f.Arrived)).Seconds(), sc)
	}
	return true
}

// lost ends a connection whose socket failed.
func (c *conn) lost() {
	c.closeWith(closeLost, "")
	c.stopReading(deadline(0))
}
