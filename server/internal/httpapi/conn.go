package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/parleychat/parley/server/internal/auth"
	"github.com/parleychat/parley/server/internal/chat"
)

// closeGrace is how long a connection waits for the client's reply to its
// close frame before it drops the socket.
const closeGrace = time.Second

var errConnClosed = errors.New("connection closed")

// conn is one WebSocket connection. Its reader runs in the upgrade handler's
// goroutine and handles one frame at a time; its writer runs in a goroutine
// of its own that the reader starts and waits for. Everything sent to the
// client goes through queue, so frames are written in the order queued.
type conn struct {
	s       *Server
	ws      *websocket.Conn
	user    chat.User
	expires time.Time
	ctx     context.Context
	cancel  context.CancelFunc

	queue chan chat.Frame

	// closing is closed once, by closeWith, when the connection is to end;
	// code and reason are set just before and read only after.
	closing   chan struct{}
	closeOnce sync.Once
	code      int
	reason    string

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

	// upgrade is the upgrade request's span, which frame spans link to.
	upgrade trace.SpanContext

	// Used by the reader goroutine only.
	frame   string // the type of the frame being handled, for error reports
	rooms   map[string]struct{}
	limiter *rate.Limiter
	flood   floodGuard
}

func newConn(parent context.Context, s *Server, ws *websocket.Conn, claims auth.Claims) *conn {
	ctx, cancel := sessionContext(parent)
	return &conn{
		ctx:     ctx,
		cancel:  cancel,
		s:       s,
		ws:      ws,
		user:    claims.User,
		expires: claims.ExpiresAt,
		queue:   make(chan chat.Frame, s.cfg.SendQueue),
		closing: make(chan struct{}),
		rooms:   make(map[string]struct{}),
		limiter: rate.NewLimiter(rate.Limit(s.cfg.ConnRate), max(1, int(2*s.cfg.ConnRate))),
		flood:   floodGuard{window: s.cfg.RateLimitedClose},
	}
}

// serve runs the connection until it ends and cleans up after it.
func (c *conn) serve() {
	start := time.Now()
	c.s.metrics.connections.Inc()
	var writer sync.WaitGroup
	writer.Go(c.writeLoop)
	expiry := time.AfterFunc(time.Until(c.expires), func() {
		c.closeWith(websocket.ClosePolicyViolation, "token expired")
	})
	defer c.end(start, expiry, &writer)
	c.readLoop()
}

// end cleans up after the reader, deferred so that it runs even if the
// reader died unexpectedly.
func (c *conn) end(start time.Time, expiry *time.Timer, writer *sync.WaitGroup) {
	defer c.s.metrics.connections.Dec()
	// The reader has set the close code on every way out it knows; if it
	// has not, it died, and the writer must still be told to stop.
	c.closeWith(websocket.CloseInternalServerErr, "internal error")
	expiry.Stop()
	c.readMu.Lock()
	c.ended = true
	if c.drainTimer != nil {
		c.drainTimer.Stop()
	}
	c.readMu.Unlock()
	for room := range c.rooms {
		c.s.chat.Leave(room, c)
	}
	writer.Wait()
	c.lingeringClose()

	code := c.closeCode()
	c.s.metrics.disconnects.WithLabelValues(closeCodeLabel(code)).Inc()
	c.s.log.InfoContext(c.ctx, "ws session ended",
		"user_id", c.user.ID, "duration_ms", time.Since(start).Milliseconds(),
		"frames_in", c.framesIn.Load(), "frames_out", c.framesOut.Load(), "close_code", code)
}

// lingeringClose closes the socket without losing the close frame. Closing a
// socket with unread input makes the kernel send a reset, which can destroy
// the close frame before the client reads it (after 1009 the rest of the
// oversized frame is still arriving). So: send FIN, read and discard until
// the client closes too or closeGrace passes, then close.
func (c *conn) lingeringClose() {
	nc := c.ws.NetConn()
	if tcp, ok := nc.(*net.TCPConn); ok {
		tcp.CloseWrite()
		_ = tcp.SetReadDeadline(time.Now().Add(closeGrace))
		io.Copy(io.Discard, tcp)
	}
	nc.Close()
}

// refuse closes a fresh connection that the server will not serve.
func (c *conn) refuse() {
	c.cancel()
	c.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseGoingAway, "server is draining"),
		time.Now().Add(c.s.cfg.WriteTimeout))
	c.ws.Close()
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
		c.ws.SetReadDeadline(time.Now().Add(2 * c.s.cfg.PingInterval))
	}
	return !c.stopped
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
		c.stopReading(time.Now())
	})
}

// abort ends the connection at once: the drain ran out of time.
func (c *conn) abort() {
	c.closeWith(websocket.CloseGoingAway, "server going away")
	c.cancel()
	c.ws.Close()
}

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

// Push implements chat.Subscriber.
func (c *conn) Push(ctx context.Context, frame chat.Frame) error {
	select {
	case c.queue <- frame:
		return nil
	case <-c.closing:
		return errConnClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Slow implements chat.Subscriber.
func (c *conn) Slow() {
	if c.closeWith(closeTooSlow, "too slow") {
		c.s.metrics.slowCloses.Inc()
	}
}

// send queues a reply of the given kind (ack, error, left) to the client; a
// client that lets its queue fill up is too slow.
func (c *conn) send(kind string, data []byte) {
	if !c.Offer(chat.Frame{Data: data, Kind: kind}) {
		c.Slow()
	}
}

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
			if !c.write(frame) {
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.s.cfg.WriteTimeout)); err != nil {
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
			time.Now().Add(c.s.cfg.WriteTimeout))
	}
	c.stopReading(time.Now().Add(closeGrace))
}

// write writes one frame. A live message's delivery is timed here, from its
// arrival at the server that stored it to its write on this socket: the
// delivery SLI, with the delivery's trace as exemplar.
func (c *conn) write(frame chat.Frame) bool {
	c.ws.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
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
		observeWithTrace(c.s.metrics.deliveryLatency, max(0, time.Since(frame.Arrived)).Seconds(), sc)
	}
	return true
}

// lost ends a connection whose socket failed.
func (c *conn) lost() {
	c.closeWith(closeLost, "")
	c.stopReading(time.Now())
}

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

// handle handles one frame and reports whether to read on. A panic is
// recovered here: it ends this connection and no other.
func (c *conn) handle(kind int, data []byte) (readOn bool) {
	start := time.Now()
	ctx := c.ctx // the frame's span joins it once the frame is known
	frameType := "invalid"
	defer func() {
		if v := recover(); v != nil {
			c.s.metrics.panics.WithLabelValues("ws").Inc()
			logPanic(c.s.log, ctx, "ws frame", v, debug.Stack())
			c.s.tel.Reporter.CapturePanic(ctx, v, map[string]string{"frame": frameType})
			trace.SpanFromContext(ctx).SetStatus(codes.Error, "panic")
			if frameType == frameSend {
				c.s.recordRefusal("ws", codeInternal)
			}
			c.closeWith(websocket.CloseInternalServerErr, "internal error")
			readOn = false
		}
	}()
	// Every frame counts against the connection's limit, bad ones too, so
	// garbage cannot be sent faster than good frames.
	allowed := c.limiter.Allow()
	var f clientFrame
	var ferr *frameError
	if kind != websocket.TextMessage {
		ferr = &frameError{codeBadRequest, "frames must be text frames holding JSON", ""}
	} else {
		f, ferr = decodeFrame(data)
	}
	if ferr != nil {
		c.s.metrics.framesIn.WithLabelValues("invalid").Inc()
	} else {
		frameType = f.Type
		c.s.metrics.framesIn.WithLabelValues(f.Type).Inc()
		allowed = allowed && (f.Type != frameSend || c.s.users.allow(c.user.ID))
	}
	if !allowed {
		c.s.metrics.rateLimited.Inc()
		if f.Type == frameSend {
			c.s.recordSend(ctx, "ws", start, errRateLimited)
		}
		c.sendError(codeRateLimited, "too many frames; slow down", refOf(f))
		if c.flood.refused(time.Now()) {
			c.closeWith(closeRateLimited, "rate limited too long")
			return false
		}
		return true
	}
	if ferr != nil {
		if f.Type == frameSend {
			c.s.recordRefusal("ws", ferr.code)
		}
		c.sendError(ferr.code, ferr.msg, ferr.ref)
		return true
	}
	c.frame = f.Type
	ctx, span := c.startFrame(f)
	defer span.End()
	defer func() {
		c.s.log.LogAttrs(ctx, slog.LevelDebug, "frame handled", slog.String("type", f.Type),
			slog.Int64("duration_us", time.Since(start).Microseconds()))
	}()
	switch f.Type {
	case frameJoin:
		c.join(ctx, f)
	case frameLeave:
		c.leave(f)
	case frameSend:
		c.sendMessage(ctx, start, f)
	case frameTyping:
		if err := c.s.chat.Typing(f.Room, c, c.user); err != nil {
			c.fail(ctx, err, refOf(f))
		}
	}
	return true
}

// startFrame starts the span of a frame: chat.join, chat.send, ... Each frame
// starts a trace of its own, linked to the upgrade, unless a send names its
// client's span as the parent; a socket's frames in one trace would make a
// trace as long as the socket.
func (c *conn) startFrame(f clientFrame) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("parley.frame", f.Type)),
	}
	if c.upgrade.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: c.upgrade}))
	}
	ctx := c.ctx
	if f.Trace != "" {
		ctx = c.s.tel.Propagator.Extract(ctx, propagation.MapCarrier{"traceparent": f.Trace})
	}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		opts = append(opts, trace.WithNewRoot())
	}
	return c.s.tel.Tracer.Start(ctx, "chat."+f.Type, opts...)
}

func (c *conn) join(ctx context.Context, f clientFrame) {
	err := c.s.chat.Join(ctx, f.Room, c, c.user, f.Since)
	if f.Since != nil {
		result := "ok"
		if err != nil {
			_, result, _ = classify(err)
		}
		c.s.metrics.resumes.WithLabelValues(result).Inc()
	}
	if err != nil {
		c.fail(ctx, err, refOf(f))
		if errors.Is(err, chat.ErrReplayFailed) {
			// The client was told it joined but is not a member any more:
			// only a reconnect (and a join with since) puts that right.
			c.closeWith(websocket.CloseInternalServerErr, "resume failed; reconnect")
		}
		return
	}
	c.rooms[f.Room] = struct{}{}
}

func (c *conn) leave(f clientFrame) {
	if !c.s.chat.Leave(f.Room, c) {
		c.sendError(codeBadRequest, "not in this room", refOf(f))
		return
	}
	delete(c.rooms, f.Room)
	c.send("left", encode(leftFrame{Type: "left", Room: f.Room}))
}

func (c *conn) sendMessage(ctx context.Context, start time.Time, f clientFrame) {
	msg, _, err := c.s.chat.Send(ctx, c.user, f.Room, f.ClientID, f.Body)
	c.s.recordSend(ctx, "ws", start, err)
	if err != nil {
		c.fail(ctx, err, f.ClientID)
		return
	}
	c.send("ack", encode(ackFrame{
		Type: "ack", Room: msg.Room, ClientID: msg.ClientID, ID: msg.ID, Seq: msg.Seq, TS: formatTime(msg.TS),
	}))
}

// fail answers a frame whose handling failed. Internal errors are logged
// and reported here, once.
func (c *conn) fail(ctx context.Context, err error, ref string) {
	if errors.Is(err, errConnClosed) {
		return
	}
	_, code, msg := classify(err)
	if code == codeInternal {
		c.s.log.ErrorContext(ctx, "frame failed", "ref", ref, "err", err)
		c.s.tel.Reporter.Capture(ctx, err, map[string]string{"frame": c.frame})
	}
	if span := trace.SpanFromContext(ctx); code == codeInternal || code == codeUnavailable {
		span.SetStatus(codes.Error, code)
	}
	c.sendError(code, msg, ref)
}

func (c *conn) sendError(code, msg, ref string) {
	c.send("error", encode(errorFrame{Type: "error", Code: code, Message: msg, Ref: ref}))
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
