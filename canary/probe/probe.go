// Package probe is the synthetic canary: it chats through the public entry
// point as one user on two connections, and measures whether a message
// sent on one reaches the other, how fast, and across which replicas.
package probe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/parleychat/parley/loadtest/wire"
)

// Config is what a Prober needs.
type Config struct {
	// Target is the public entry point: the load balancer's URL.
	Target             string
	Username, Password string
	Room               string        // the room probes go through, created if missing
	Interval           time.Duration // between probes' starts
	Timeout            time.Duration // each probe's bound, from sign-in to receipt
	Redial             time.Duration // each connection's life before it is dialled again
	HTTP               *http.Client
	Dialer             *websocket.Dialer
	Tracer             trace.Tracer
	Propagator         propagation.TextMapPropagator
	Log                *slog.Logger
	Now                func() time.Time
	Metrics            *Metrics
}

// Result is one finished probe.
type Result struct {
	Path    string        // PathSame, PathCross or PathUnknown
	Step    string        // the step that failed; "" for a success
	Err     error         // why it failed
	Latency time.Duration // send to receipt, for a success
	End     time.Time
	TraceID string // of the probe's span, when sampled
}

// Prober runs probes one after another. It is not safe for concurrent use:
// Run owns it.
type Prober struct {
	cfg     Config
	api     *wire.Client
	session *session
	roomID  string
	// The sender's messages must reach the receiver.
	sender, receiver *link
}

// New returns a Prober of cfg.
func New(cfg Config) (*Prober, error) {
	client, err := wire.NewClient(cfg.Target, cfg.HTTP)
	if err != nil {
		return nil, err
	}
	return &Prober{
		cfg:      cfg,
		api:      client,
		session:  &session{api: client, username: cfg.Username, password: cfg.Password, now: cfg.Now, metrics: cfg.Metrics},
		sender:   &link{name: "sender"},
		receiver: &link{name: "receiver"},
	}, nil
}

// Run probes every Interval until ctx ends, then closes the connections.
func (p *Prober) Run(ctx context.Context) {
	defer p.sender.close()
	defer p.receiver.close()
	tick := time.NewTicker(p.cfg.Interval)
	defer tick.Stop()
	for {
		r := p.Probe(ctx)
		if ctx.Err() != nil {
			return // a probe cut short by the shutdown says nothing
		}
		p.cfg.Metrics.record(r)
		if r.Step != "" {
			p.cfg.Log.Warn("probe failed", "step", r.Step, "path", r.Path, "err", r.Err, "trace_id", r.TraceID)
		} else {
			p.cfg.Log.Debug("probe", "path", r.Path, "latency", r.Latency.String(), "trace_id", r.TraceID)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Probe runs one probe: sign in if needed, make sure both connections are
// open and joined, send on one and wait for the message on the other.
func (p *Prober) Probe(ctx context.Context) (r Result) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	ctx, span := p.cfg.Tracer.Start(ctx, "canary probe", trace.WithSpanKind(trace.SpanKindClient))
	if sc := span.SpanContext(); sc.IsSampled() {
		r.TraceID = sc.TraceID().String()
	}
	defer func() {
		r.End = p.cfg.Now()
		span.SetAttributes(attribute.String("canary.path", r.Path))
		if r.Step != "" {
			span.SetAttributes(attribute.String("canary.step", r.Step))
			span.SetStatus(codes.Error, r.Err.Error())
		}
		span.End()
	}()
	r.Path = PathUnknown
	fail := func(step string, err error) Result {
		r.Step, r.Err = step, err
		return r
	}

	token, err := p.session.Token(ctx)
	if err != nil {
		return fail(StepLogin, err)
	}
	if p.roomID == "" {
		if p.roomID, err = p.room(ctx, token); err != nil {
			if wire.HasStatus(err, http.StatusUnauthorized) {
				p.session.Forget()
			}
			return fail(StepJoin, err)
		}
	}
	// A connection that dropped since the last probe is a failure a user
	// would have seen, even when the next dial succeeds.
	for _, l := range []*link{p.sender, p.receiver} {
		if err := l.dropped(); err != nil {
			r.Path = pathOf(p.sender.replica, p.receiver.replica)
			return fail(StepConnect, err)
		}
	}
	now := p.cfg.Now()
	p.sender.retire(now)
	p.receiver.retire(now)
	if step, err := p.sender.open(ctx, p.cfg.Dialer, p.api.WebSocketURL(), token, p.roomID, now.Add(p.cfg.Redial)); err != nil {
		return fail(step, p.refused(err))
	}
	// The receiver's first life is half as long, so the two are seldom
	// dialled together and their replicas vary.
	receiverLife := p.cfg.Redial
	if p.receiver.redialAt.IsZero() {
		receiverLife /= 2
	}
	if step, err := p.receiver.open(ctx, p.cfg.Dialer, p.api.WebSocketURL(), token, p.roomID, now.Add(receiverLife)); err != nil {
		return fail(step, p.refused(err))
	}
	r.Path = pathOf(p.sender.replica, p.receiver.replica)
	p.sender.drain()
	p.receiver.drain()

	clientID := "canary-" + randomHex(8)
	carrier := propagation.MapCarrier{}
	p.cfg.Propagator.Inject(ctx, carrier)
	start := p.cfg.Now()
	if err := p.sender.conn.Send(p.roomID, clientID, "canary probe "+clientID, carrier.Get("traceparent")); err != nil {
		// Counted here: the next probe dials again rather than count
		// the broken connection a second time as a drop.
		p.sender.close()
		return fail(StepSend, fmt.Errorf("sender: %w", err))
	}
	step, err := p.await(ctx, clientID)
	if err != nil {
		return fail(step, err)
	}
	r.Latency = p.cfg.Now().Sub(start)
	return r
}

// await waits for the sender's ack and the receiver's copy of the message
// clientID, and returns the step that failed: ack while the ack is
// missing, receive once only the message is. A connection that drops
// meanwhile fails the probe, unless it is the sender's after its ack (the
// message is the receiver's to get then): the next probe counts that drop.
func (p *Prober) await(ctx context.Context, clientID string) (step string, err error) {
	sent, sentDone := p.sender.conn.Frames(), p.sender.conn.Done()
	got, gotDone := p.receiver.conn.Frames(), p.receiver.conn.Done()
	acked, received := false, false
	for !acked || !received {
		select {
		case f := <-sent:
			switch {
			case f.Type == "ack" && f.ClientID == clientID:
				acked = true
			case f.Type == "error" && f.Ref == clientID:
				return StepAck, fmt.Errorf("send refused: %s: %s", f.Code, f.Message)
			}
		case f := <-got:
			if f.Type == "message" && f.ClientID == clientID {
				received = true
			}
		case <-sentDone:
			if !acked {
				return StepAck, p.sender.dropped()
			}
			sent, sentDone = nil, nil
		case <-gotDone:
			return StepReceive, p.receiver.dropped()
		case <-ctx.Done():
			step := StepAck
			if acked {
				step = StepReceive
			}
			return step, fmt.Errorf("no %s within %v: %w", step, p.cfg.Timeout, ctx.Err())
		}
	}
	return "", nil
}

// refused forgets what the server no longer knows, so that the next probe
// gets it again: a token it refused (401 on the upgrade: a new signing
// secret, say), or a room it does not have (a store that was reset).
func (p *Prober) refused(err error) error {
	switch {
	case wire.HasStatus(err, http.StatusUnauthorized):
		p.session.Forget()
	case errors.Is(err, errNoRoom):
		p.roomID = ""
	}
	return err
}

// room finds the probes' room by name, or creates it.
func (p *Prober) room(ctx context.Context, token string) (string, error) {
	for range 2 {
		rooms, err := p.api.Rooms(ctx, token)
		if err != nil {
			return "", fmt.Errorf("list rooms: %w", err)
		}
		for _, r := range rooms {
			if strings.EqualFold(r.Name, p.cfg.Room) {
				return r.ID, nil
			}
		}
		room, err := p.api.CreateRoom(ctx, token, p.cfg.Room)
		if err == nil {
			return room.ID, nil
		}
		if !wire.HasStatus(err, http.StatusConflict) {
			return "", fmt.Errorf("create room %s: %w", p.cfg.Room, err)
		}
		// Created meanwhile by another canary: list again.
	}
	return "", errors.New("room " + p.cfg.Room + " is neither listed nor creatable")
}

// pathOf labels a probe by its connections' replicas.
func pathOf(sender, receiver string) string {
	switch {
	case sender == "" || receiver == "":
		return PathUnknown
	case sender == receiver:
		return PathSame
	default:
		return PathCross
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b)
}
