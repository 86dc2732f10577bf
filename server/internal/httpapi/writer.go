package httpapi

import (
	"context"

	"github.com/gorilla/websocket"
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

// writeJob is what the writer does next.
type writeJob int

const (
	jobNone writeJob = iota
	jobFrame
	jobPing
	jobClose
)

// next picks the writer's next job, waiting for one. A close takes
// precedence over queued frames: a member dropped as too slow must not be
// fed the frames it could not take. A writer retired while it waited
// gets jobNone, and is no longer the writer.
func (c *conn) next() (writeJob, chat.Frame, int) {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	for {
		select {
		case <-c.closing:
			return jobClose, chat.Frame{}, 0
		default:
		}
		if c.out.pingDue {
			c.out.pingDue = false
			return jobPing, chat.Frame{}, 0
		}
		if f, ok := c.out.pop(); ok {
			return jobFrame, f, c.out.n
		}
		if !c.out.await() {
			return jobNone, chat.Frame{}, 0
		}
	}
}

// writeLoop is the connection's writer. It runs only while there is
// something to write (a frame queued, a ping due, the close) or there was
// a moment ago: a connection quiet for a keepalive tick has no writer
// goroutine at all, and its next frame starts one. Frames are written in
// the order queued, since one writer at most runs at a time.
func (c *conn) writeLoop() {
	defer c.writers.Done()
	for {
		job, frame, left := c.next()
		switch job {
		case jobNone:
			return
		case jobFrame:
			if left <= c.watermark {
				c.wakeReader()
			}
			if !c.write(frame) {
				c.shutQueue()
				return
			}
		case jobPing:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, deadline(c.s.cfg.WriteTimeout)); err != nil {
				c.lost()
				c.shutQueue()
				return
			}
		case jobClose:
			c.finish()
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

// finish writes what a drain leaves queued (acks of the last sends among it)
// and then the close frame, and gives the client closeGrace to answer.
func (c *conn) finish() {
	if c.draining.Load() {
		for {
			c.out.mu.Lock()
			frame, ok := c.out.pop()
			c.out.mu.Unlock()
			if !ok {
				break
			}
			if !c.write(frame) {
				return
			}
		}
	}
	if c.code != closeLost {
		c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.code, c.reason),
			deadline(c.s.cfg.WriteTimeout))
	}
	c.stopReading(deadline(closeGrace))
}

// write writes one frame. A live message's delivery is timed here, from its
// arrival at the server that stored it to its write on this socket: the
// delivery SLI, with the delivery's trace as exemplar.
func (c *conn) write(frame chat.Frame) bool {
	c.ws.SetWriteDeadline(deadline(c.s.cfg.WriteTimeout))
	if err := c.ws.WriteMessage(websocket.TextMessage, frame.Data); err != nil {
		c.lost()
		return false
	}
	c.framesOut.Add(1)
	c.s.metrics.framesOut(frame.Kind).Inc()
	if !frame.Arrived.IsZero() {
		var sc trace.SpanContext
		if frame.Ctx != nil {
			sc = trace.SpanContextFromContext(frame.Ctx)
		}
		// Clocks of two replicas may disagree by more than the latency.
		observeWithTrace(c.s.metrics.deliveryLatency, max(0, c.s.now().Sub(frame.Arrived)).Seconds(), sc)
	}
	return true
}

// lost ends a connection whose socket failed.
func (c *conn) lost() {
	c.closeWith(closeLost, "")
	c.stopReading(deadline(0))
}
