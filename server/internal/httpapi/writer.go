package httpapi

import (
	"context"
	"time"

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
	select {
	case c.queue <- frame:
		return true
	default:
		return false
	}
}

// Push implements chat.Subscriber. The hub pushes only the replay a join
// asked for, on the reader's goroutine: an answer to the client's own frame
// like any other, so it waits while the queue is above the watermark (as
// awaitQueue does), and the replay never leaves the queue full for the
// room's live frames that follow it.
func (c *conn) Push(ctx context.Context, frame chat.Frame) error {
	for {
		if len(c.queue) <= c.watermark {
			select {
			case c.queue <- frame:
				return nil
			default: // filled meanwhile by the rooms' frames
			}
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

// wakeReader tells a reader waiting in awaitQueue that the queue has
// drained to the watermark. The signal is kept for a reader about to wait,
// and one covers any number of frames taken.
func (c *conn) wakeReader() {
	if len(c.queue) > c.watermark {
		return
	}
	select {
	case c.drained <- struct{}{}:
	default:
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

// writeLoop is the connection's writer, on a goroutine of its own that
// serve starts and waits for: it writes the queue in order, pings, and ends
// with the close frame once the connection is closing.
func (c *conn) writeLoop() {
	ping := time.NewTicker(c.s.cfg.PingInterval)
	defer ping.Stop()
	for {
		// A close takes precedence over queued frames: a member dropped as
		// too slow must not be fed the frames it could not take.
		select {
		case <-c.closing:
			c.finish()
			return
		default:
		}
		select {
		case frame := <-c.queue:
			c.wakeReader()
			if !c.write(frame) {
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, deadline(c.s.cfg.WriteTimeout)); err != nil {
				c.lost()
				return
			}
		case <-c.closing:
			c.finish()
			return
		}
	}
}

// finish writes what a drain leaves queued (acks of the last sends among it)
// and then the close frame, and gives the client closeGrace to answer.
func (c *conn) finish() {
	if c.draining.Load() {
		for flushed := false; !flushed; {
			select {
			case frame := <-c.queue:
				if !c.write(frame) {
					return
				}
			default:
				flushed = true
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
