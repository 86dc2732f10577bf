package httpapi

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/parleychat/parley/server/internal/auth"
	"github.com/parleychat/parley/server/internal/chat"
)

// Close codes of the protocol, besides the standard ones in gorilla/websocket.
const (
	closeTooSlow     = 4008
	closeRateLimited = 4029
	// closeLost is never sent (RFC 6455 reserves it): it stands for a
	// connection that ended without a close frame, in metrics and logs.
	closeLost = 1006
)

// connCapWait is the Retry-After of an upgrade refused by the per-user
// connection cap. A slot frees only when one of the user's connections
// ends, which the server cannot foresee; this is a reconnect back-off's
// scale, not a promise.
const connCapWait = 5 * time.Second

var (
	errDraining        = chat.Errorf(chat.ErrUnavailable, "server is draining; connect again")
	errNotUpgrade      = chat.Errorf(chat.ErrInvalid, "expected a WebSocket upgrade request")
	errOriginForbidden = &chat.Error{Kind: errKindForbidden, Msg: "origin not allowed"}
)

// upgrade turns GET /ws into a WebSocket connection, after checking that the
// server takes new connections, the origin, and the credentials.
func (s *Server) upgrade() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// The upgrade's span ends once the socket is open or refused: the
		// session that follows is traced frame by frame, in traces of their
		// own linked to this one.
		ctx := s.tel.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := s.tel.Tracer.Start(ctx, "GET /ws", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.route", wsPath)))
		upgraded := false
		defer func() {
			if !upgraded {
				span.End()
			}
		}()
		r = r.WithContext(ctx)
		if s.Draining() {
			s.metrics.upgrades.WithLabelValues("draining").Inc()
			s.writeError(w, r, errDraining)
			return
		}
		if !websocket.IsWebSocketUpgrade(r) {
			// Checked before the credentials, so a malformed request does not
			// spend a ticket.
			s.metrics.upgrades.WithLabelValues("bad_request").Inc()
			s.writeError(w, r, errNotUpgrade)
			return
		}
		if !s.originAllowed(r) {
			s.metrics.upgrades.WithLabelValues("forbidden").Inc()
			s.writeError(w, r, errOriginForbidden)
			return
		}
		claims, err := s.wsCredentials(r)
		if err != nil {
			_, code, _ := classify(err) // unauthorized, or unavailable when the ticket store failed
			s.metrics.upgrades.WithLabelValues(code).Inc()
			s.writeError(w, r, err)
			return
		}
		// Counted from before the upgrade until the connection ends.
		if !s.ws.conns.take(claims.User.ID) {
			s.metrics.upgrades.WithLabelValues(codeRateLimited).Inc()
			s.writeError(w, r, s.refuse(limitConnsPerUser, connCapWait,
				fmt.Sprintf("too many connections: at most %d per user", s.cfg.MaxConnsPerUser)))
			return
		}
		// Once it is served, the connection, not this handler, holds its
		// places under both caps (the handler returns as soon as it is
		// open); until then, however this handler ends, they go back.
		addrSlot := keepAddrSlot(r)
		served := false
		defer func() {
			if !served {
				addrSlot.release()
				s.ws.conns.give(claims.User.ID)
			}
		}()
		ws, err := s.upgrader.Upgrade(w, r, s.upgraded)
		if err != nil {
			// The upgrader has answered with an HTTP error already.
			s.metrics.upgrades.WithLabelValues("failed").Inc()
			return
		}
		upgraded = true
		span.End()
		c := newConn(s, ws.NetConn(), claims, addrSlot)
		c.upgrade = span.SpanContext()
		if !s.track(c) {
			// Drain began during the upgrade.
			s.metrics.upgrades.WithLabelValues("draining").Inc()
			c.refuse()
			return
		}
		s.metrics.upgrades.WithLabelValues("ok").Inc()
		s.metrics.connections.Inc()
		// The reader runs on goroutines of its own, which track counted
		// and Drain waits for: serve starts it, and this handler returns
		// now, and with it net/http's request, buffers and goroutine,
		// which an open socket would otherwise hold for its whole life.
		served = true
		c.serve()
	}
}

// wsCredentials accepts a ticket (browsers) or a bearer token (programs).
func (s *Server) wsCredentials(r *http.Request) (auth.Claims, error) {
	if ticket := r.URL.Query().Get("ticket"); ticket != "" {
		claims, err := s.auth.RedeemTicket(r.Context(), ticket)
		if errors.Is(err, auth.ErrUnauthorized) {
			return claims, &chat.Error{Kind: auth.ErrUnauthorized, Msg: "invalid, used or expired ticket"}
		}
		return claims, err
	}
	return s.verify(r)
}

// originAllowed accepts requests without an Origin header (programs), from
// the server's own host, or from a configured origin.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, allowed := range s.cfg.AllowedOrigins {
		if strings.EqualFold(strings.TrimSuffix(allowed, "/"), origin) {
			return true
		}
	}
	return false
}

// jitter returns a random duration in [0, d).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}
