package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"runtime/debug"
	"slices"
	"time"

	"github.com/gorilla/websocket"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/parleychat/parley/server/internal/chat"
)

// handle handles one frame and reports whether to read on. A panic is
// recovered here: it ends this connection and no other.
func (c *conn) handle(kind int, data []byte) (readOn bool) {
	start := c.s.now()
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
	}
	if err := c.admit(start, f, ferr == nil); err != nil {
		c.s.metrics.rateLimited.Inc()
		if f.Type == frameSend {
			c.s.recordSend(ctx, "ws", start, errRateLimited)
		}
		c.sendRefusal(err, refOf(f))
		// Only refusals of frames sent before the wait the last refusal
		// asked for make a flood: a client that honours retry_after is
		// paced, not flooding, however long it keeps at the limit.
		wait, _ := retryAfter(err)
		early := start.Before(c.retryAt)
		c.retryAt = start.Add(wait)
		if early && c.flood.refused(start) {
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
			slog.Int64("duration_us", c.s.now().Sub(start).Microseconds()))
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

// admit charges a frame to the limits it counts against and returns the
// refusal of the first that has no room for it. Every frame counts against
// the connection's limit, bad ones too, so garbage cannot be sent faster
// than good frames; valid frames also count against their user's limit
// for their type, shared by all of the user's connections.
func (c *conn) admit(now time.Time, f clientFrame, valid bool) error {
	if ok, wait := c.s.connRate.take(&c.frames, now); !ok {
		return c.s.refuse(limitWSFrames, wait, "too many frames; slow down")
	}
	if !valid {
		return nil
	}
	var limit, msg string
	var users *keyedLimiter
	switch f.Type {
	case frameSend:
		users, limit, msg = c.s.sends, limitSends, "too many messages; slow down"
	case frameJoin, frameLeave:
		users, limit, msg = c.s.ws.joins, limitWSJoins, "too many joins and leaves; slow down"
	case frameTyping:
		users, limit, msg = c.s.ws.typing, limitWSTyping, "too many typing frames; slow down"
	default:
		return nil
	}
	ok, wait := users.allow(c.user.ID)
	if ok {
		return nil
	}
	return c.s.refuse(limit, wait, msg)
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
	if !slices.Contains(c.rooms, f.Room) {
		c.rooms = append(c.rooms, f.Room)
	}
}

func (c *conn) leave(f clientFrame) {
	if !c.s.chat.Leave(f.Room, c) {
		c.sendError(codeBadRequest, "not in this room", refOf(f))
		return
	}
	c.rooms = slices.DeleteFunc(c.rooms, func(r string) bool { return r == f.Room })
	c.send("left", encode(leftFrame{Type: "left", Room: f.Room}))
}

func (c *conn) sendMessage(ctx context.Context, start time.Time, f clientFrame) {
	msg, _, err := c.s.chat.Send(ctx, c.user, f.Room, f.ClientID, f.Body)
	c.s.recordSend(ctx, "ws", start, err)
	if err != nil {
		c.fail(ctx, err, f.ClientID)
		return
	}
	c.send("ack", appendAckFrame(make([]byte, 0, frameSizeOf(msg)), msg))
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

// sendRefusal answers a frame a limit refused, with the wait it asks for
// in retry_after: rounded up to the millisecond, so that a client waiting
// exactly that long is not refused again.
func (c *conn) sendRefusal(err error, ref string) {
	msg := "rate limited"
	var le *limitError
	if errors.As(err, &le) {
		msg = le.msg
	}
	wait, _ := retryAfter(err)
	c.send("error", encode(errorFrame{
		Type: "error", Code: codeRateLimited, Message: msg, Ref: ref,
		RetryAfter: math.Ceil(float64(wait)/float64(time.Millisecond)) / 1000,
	}))
}

func (c *conn) sendError(code, msg, ref string) {
	c.send("error", encode(errorFrame{Type: "error", Code: code, Message: msg, Ref: ref}))
}
