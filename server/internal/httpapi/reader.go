package httpapi

import (
	"errors"
	"net"
	"time"

	"github.com/gorilla/websocket"
)

// readLoop is the connection's reader: it reads one frame at a time, has
// a handler handle it (pool.go), and goes on until reading stops,
// with the close code chosen. A client that sends faster than its replies
// drain is slowed by its own queue (see awaitQueue), and a drain lets the
// frame in hand finish. The reader itself does nothing deep, so its
// stack, which it keeps while it waits for the client, stays small.
func (c *conn) readLoop() {
	// The deadline is extended after the wait: a wait is bounded by the
	// writer, whose writes time out, not by the client's pongs, which
	// are read only while reading.
	for c.awaitQueue() && c.extendRead() {
		kind, data, err := c.readMessage()
		if err != nil {
			c.readFailed(err)
			return
		}
		c.framesIn.Add(1)
		if !c.handleOnPool(kind, data) {
			return
		}
	}
	c.readFailed(nil)
}

// readFailed picks the close code for a reader that stopped.
func (c *conn) readFailed(err error) {
	var closeErr *websocket.CloseError
	var netErr net.Error
	var protoErr protocolError
	switch {
	case c.draining.Load():
		c.closeWith(websocket.CloseGoingAway, "server going away")
	case errors.Is(err, errMessageTooBig):
		c.closeWith(websocket.CloseMessageTooBig, "frame too large")
	case errors.As(err, &protoErr):
		c.closeWith(websocket.CloseProtocolError, string(protoErr))
	case errors.As(err, &closeErr):
		c.closeWith(closeErr.Code, "")
	case errors.As(err, &netErr) && netErr.Timeout():
		c.closeWith(closeLost, "") // no pong in time, or no close reply
	default:
		c.closeWith(closeLost, "")
	}
}

// awaitQueue is the backpressure on a client's own frames: it waits, before
// the next frame is read, while the client's queue holds more than the
// watermark, so that the replies to its frames (acks, errors, joined, left)
// never take the room that the frames its rooms fan out need. A client
// that sends faster than it reads is slowed down, with the excess left in
// its socket, rather than closed as too slow. It reports whether reading
// may go on: false once the connection closes or reading stops.
func (c *conn) awaitQueue() bool {
	for c.out.length() > c.watermark {
		select {
		case <-c.drained:
		case <-c.closing:
			return false
		case <-c.readStop:
			return false
		}
	}
	return true
}

// stopReading makes the reader's next (or current) read fail at t, wakes it
// if it waits for its queue, and keeps anything from extending the
// deadline again.
func (c *conn) stopReading(t time.Time) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if !c.stopped {
		close(c.readStop)
	}
	c.stopped = true
	_ = c.nc.SetReadDeadline(t) // fails only on a closed socket, whose reads fail anyway
}

// extendRead pushes the read deadline out, unless reading has been stopped.
// It reports whether reading may go on.
func (c *conn) extendRead() bool {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if !c.stopped {
		_ = c.nc.SetReadDeadline(deadline(2 * c.s.cfg.PingInterval)) // as in stopReading
	}
	return !c.stopped
}

// frameJob is a frame read from c, for a handler; done receives whether c
// reads on.
type frameJob struct {
	c    *conn
	kind int
	data []byte
	done chan<- bool
}

// handleFrame is the handlers' job (see pool.go).
func handleFrame(j frameJob) { j.done <- j.c.handle(j.kind, j.data) }

// handleOnPool has a handler of the pool handle the frame, waits for it,
// and reports whether c reads on. The reader waits, so a connection's
// frames are handled one at a time and in order.
func (c *conn) handleOnPool(kind int, data []byte) bool {
	done := make(chan bool, 1)
	c.s.handlers.submit(frameJob{c: c, kind: kind, data: data, done: done})
	return <-done
}
