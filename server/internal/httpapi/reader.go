package httpapi

import (
	"errors"
	"net"
	"time"

	"github.com/gorilla/websocket"
)

// readLoop is the connection's reader. It runs on the upgrade handler's
// goroutine and handles one frame at a time, so a client that sends faster
// than its replies drain is slowed by its own queue, and a drain can let
// the frame in hand finish. It returns once reading stops, with the close
// code chosen.
func (c *conn) readLoop() {
	c.ws.SetReadLimit(c.s.cfg.MaxFrameBytes)
	c.ws.SetPongHandler(func(string) error {
		c.extendRead()
		return nil
	})
	for c.extendRead() {
		kind, data, err := c.ws.ReadMessage()
		if err != nil {
			c.readFailed(err)
			return
		}
		c.framesIn.Add(1)
		if !c.handle(kind, data) {
			return
		}
	}
	c.readFailed(nil)
}

// readFailed picks the close code for a reader that stopped.
func (c *conn) readFailed(err error) {
	var closeErr *websocket.CloseError
	var netErr net.Error
	switch {
	case c.draining.Load():
		c.closeWith(websocket.CloseGoingAway, "server going away")
	case errors.Is(err, websocket.ErrReadLimit):
		c.closeWith(websocket.CloseMessageTooBig, "frame too large")
	case errors.As(err, &closeErr):
		c.closeWith(closeErr.Code, "")
	case errors.As(err, &netErr) && netErr.Timeout():
		c.closeWith(closeLost, "") // no pong in time, or no close reply
	default:
		c.closeWith(closeLost, "")
	}
}

// stopReading makes the reader's next (or current) read fail at t and keeps
// anything from extending the deadline again.
func (c *conn) stopReading(t time.Time) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	c.stopped = true
	c.ws.SetReadDeadline(t)
}

// extendRead pushes the read deadline out, unless reading has been stopped.
// It reports whether reading may go on.
func (c *conn) extendRead() bool {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if !c.stopped {
		c.ws.SetReadDeadline(deadline(2 * c.s.cfg.PingInterval))
	}
	return !c.stopped
}
