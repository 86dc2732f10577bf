package httpapi

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.opentelemetry.io/otel/trace"

	"github.com/parleychat/parley/server/internal/auth"
	"github.com/parleychat/parley/server/internal/chat"
)

// deadline is d from now on the real clock. Socket deadlines are for the
// network, which keeps real time whatever clock Config.Now injects.
func deadline(d time.Duration) time.Time { return time.Now().Add(d) }

// closeGrace is how long a connection waits for the client's reply to its
// close frame before it drops the socket.
const closeGrace = time.Second

var errConnClosed = errors.New("connection closed")

// conn is one WebSocket connection. Its reader (reader.go) runs in a
// goroutine of its own, started once the upgrade is done so that the
// upgrade handler returns and net/http lets go of its buffers and its
// goroutine; it handles one frame at a time (handle.go). Its writer
// (writer.go) runs only while there is something to write. Everything sent
// to the client goes through out, so frames are written in the order
// queued. This file holds its state and how it ends.
type conn struct {
	s       *Server
	nc      net.Conn // the socket, once upgraded (gorilla's conn is let go)
	user    chat.User
	session string // the id of the session its token or ticket names
	expires time.Time
	ctx     context.Context
	cancel  context.CancelFunc
	start   time.Time // when it opened

	out     sendQueue
	writers sync.WaitGroup // a writer at work for it (writer.go)
	writeBy time.Time      // the socket's write deadline; the writer's only
	// The reader waits while the queue holds more than watermark frames
	// (see awaitQueue); the writer signals drained as it takes frames
	// below it, and stopReading closes readStop.
	watermark int
	drained   chan struct{}
	readStop  chan struct{}

	// closing is closed once, by closeWith, when the connection is to end;
	// code and reason are set just before and read only after.
	closing   chan struct{}
	closeOnce sync.Once
	code      int
	reason    string

	// addrSlot is the connection's place under the per-address cap; it
	// and its place under the per-user cap are given back as it ends.
	addrSlot *addrSlot

	// readMu guards the read deadline and stopped: once reading has been
	// stopped (for a drain or a close), nothing may extend the deadline again.
	// It also guards the drain timer and ended, so the timer is stopped
	// with the connection rather than left to fire on a dead one.
	readMu     sync.Mutex
	stopped    bool
	ended      bool
	drainTimer *time.Timer
	draining   atomic.Bool

	framesIn, framesOut atomic.Int64

	// nextPing is when the keepalive loop pings next: set by track, then
	// read and written by that loop only.
	nextPing time.Time

	// upgrade is the upgrade request's span, which frame spans link to.
	upgrade trace.SpanContext

	in   inbound         // read from the socket, not yet taken (inbound.go)
	head [frameHead]byte // the header of the frame being read (clientframes.go)

	// Used while a frame is handled, one frame at a time (pool.go).
	frame   string   // the type of the frame being handled, for error reports
	rooms   []string // joined; a slice, as a connection joins few
	frames  bucket   // the connection's own frame limit, ConnRate
	flood   floodGuard
	retryAt time.Time // when the last refusal said to send again
}

func newConn(s *Server, nc net.Conn, claims auth.Claims, addrSlot *addrSlot) *conn {
	// The connection's own context: it outlives the upgrade request, and
	// carries none of the request's values, which would keep the request
	// (and net/http's buffers) alive for as long as the socket.
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		ctx:      ctx,
		cancel:   cancel,
		s:        s,
		nc:       nc,
		user:     claims.User,
		session:  claims.Session,
		expires:  claims.ExpiresAt,
		out:      sendQueue{limit: s.cfg.SendQueue, rings: &s.rings},
		addrSlot: addrSlot,
		// Half the queue stays free for what the rooms fan out.
		watermark: s.cfg.SendQueue / 2,
		drained:   make(chan struct{}, 1),
		readStop:  make(chan struct{}),
		closing:   make(chan struct{}),
		frames:    s.connRate.full(),
		flood:     floodGuard{window: s.cfg.RateLimitedClose},
		start:     s.now(),
	}
	c.in.init(nc, &s.inbufs)
	return c
}

// serve runs the connection's reader (reader.go) on a goroutine of its
// own until reading stops, and then ends the connection. The server counts
// it among its connections (track) until end, and Drain waits for it.
// Pings and the token's expiry are the server's keepalive loop's to check
// (keepalive.go): a connection has no timer of its own.
func (c *conn) serve() {
	go func() {
		// Deferred first, so that it also catches a panic in end (whose
		// own deferred calls still give the connection's places back).
		defer c.recoverPanic()
		defer c.end()
		c.readLoop()
	}()
}

// recoverPanic ends, with 1011, a connection whose reader panicked outside
// a frame's handling (handle recovers its own), rather than the process.
func (c *conn) recoverPanic() {
	if v := recover(); v != nil {
		c.recovered(v)
	}
}

// recovered ends, with 1011, a connection whose reader panicked.
func (c *conn) recovered(v any) {
	c.s.metrics.panics.WithLabelValues("ws").Inc()
	logPanic(c.s.log, c.ctx, "ws reader", v, debug.Stack())
	c.s.tel.Reporter.CapturePanic(c.ctx, v, nil)
	c.closeWith(websocket.CloseInternalServerErr, "internal error")
}

// end cleans up after the reader, deferred so that it runs even if the
// reader died unexpectedly.
func (c *conn) end() {
	defer c.s.untrack(c)
	defer c.releaseSlots()
	defer c.s.metrics.connections.Dec()
	// The reader has set the close code on every way out it knows; if it
	// has not, it died, and the writer must still be told to stop.
	c.closeWith(websocket.CloseInternalServerErr, "internal error")
	c.in.release() // what the reader read and will not take now
	c.readMu.Lock()
	c.ended = true
	if c.drainTimer != nil {
		c.drainTimer.Stop()
	}
	c.readMu.Unlock()
	for _, room := range c.rooms {
		c.s.chat.Leave(room, c)
	}
	c.writers.Wait()
	c.lingeringClose()

	code := c.closeCode()
	c.s.metrics.disconnects.WithLabelValues(closeCodeLabel(code)).Inc()
	c.s.log.InfoContext(c.ctx, "ws session ended",
		"user_id", c.user.ID, "duration_ms", c.s.now().Sub(c.start).Milliseconds(),
		"frames_in", c.framesIn.Load(), "frames_out", c.framesOut.Load(), "close_code", code)
}

// releaseSlots gives back the connection's places under the per-address
// and per-user caps.
func (c *conn) releaseSlots() {
	c.addrSlot.release()
	c.s.ws.conns.give(c.user.ID)
}

// lingeringClose closes the socket without losing the close frame. Closing a
// socket with unread input makes the kernel send a reset, which can destroy
// the close frame before the client reads it (after 1009 the rest of the
// oversized frame is still arriving). So: send FIN, read and discard until
// the client closes too or closeGrace passes, then close.
func (c *conn) lingeringClose() {
	if tcp, ok := c.nc.(*net.TCPConn); ok {
		tcp.CloseWrite()
		_ = tcp.SetReadDeadline(deadline(closeGrace))
		io.Copy(io.Discard, tcp)
	}
	c.nc.Close()
}

// refuse closes a fresh connection that the server will not serve.
func (c *conn) refuse() {
	c.cancel()
	payload := closePayload(websocket.CloseGoingAway, "server is draining")
	_ = c.nc.SetWriteDeadline(deadline(c.s.cfg.WriteTimeout))
	// Best effort: a client that misses the close sees the socket close.
	_, _ = c.nc.Write(append(appendFrameHeader(nil, websocket.CloseMessage, len(payload)), payload...))
	c.nc.Close()
}

// closeWith asks the connection to end with code and reports whether this
// call decided the code (the first one does). It cancels the connection's
// context, so that a join waiting on the store gives up; sends run to their
// end regardless (see chat.Service.Send).
func (c *conn) closeWith(code int, reason string) bool {
	first := false
	c.closeOnce.Do(func() {
		c.code, c.reason = code, reason
		close(c.closing)
		c.cancel()
		// Inside Do, so that a later caller (end, on the reader) returns
		// only once the writer that writes the close frame is counted,
		// and its wait for the writers covers it.
		c.wakeWriter()
		first = true
	})
	return first
}

func (c *conn) closeCode() int {
	select {
	case <-c.closing:
		return c.code
	default:
		return closeLost
	}
}

// endSession ends the connection with 1008 because its session ended
// (logged out, revoked, its account deleted); reason says which.
func (c *conn) endSession(reason string) {
	c.closeWith(websocket.ClosePolicyViolation, reason)
}

// drainAfter ends the connection with 1001 after d. The reader finishes the
// frame in hand first, so a send in flight is acked before the close.
func (c *conn) drainAfter(d time.Duration) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.ended {
		return
	}
	c.drainTimer = time.AfterFunc(d, func() {
		c.draining.Store(true)
		c.stopReading(deadline(0))
	})
}

// abort ends the connection at once: the drain ran out of time.
func (c *conn) abort() {
	c.closeWith(websocket.CloseGoingAway, "server going away")
	c.cancel()
	c.nc.Close()
}

// closeCodeLabel keeps the disconnects metric's label bounded: close codes
// a client may send are arbitrary numbers.
func closeCodeLabel(code int) string {
	switch code {
	case websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseProtocolError,
		websocket.CloseUnsupportedData, websocket.CloseInvalidFramePayloadData, websocket.ClosePolicyViolation,
		websocket.CloseMessageTooBig, websocket.CloseInternalServerErr, closeLost, closeTooSlow, closeRateLimited:
		return strconv.Itoa(code)
	default:
		return "other"
	}
}
