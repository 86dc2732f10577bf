// Package httpapi is every HTTP surface of Parley: on the public listener
// the REST handlers, the /ws endpoint and its connections, the probes and
// the web client; on the admin listener /metrics, pprof and the fault
// routes. routes.go lists them all. It knows the wire format and nothing of
// storage.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley/server/internal/auth"
	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/faults"
)

// Config tunes the API. Zero values take the defaults noted.
type Config struct {
	// WebUI, when set, serves the web client at "/" and "/assets/*".
	WebUI http.Handler
	// AllowedOrigins are the WebSocket origins allowed besides the server's
	// own host, e.g. "https://chat.example.com".
	AllowedOrigins []string
	// SendQueue is each connection's outgoing queue, in frames (default 256).
	SendQueue int
	// ConnRate limits the frames a connection may send per second (default
	// 20; bursts of twice that).
	ConnRate float64
	// UserRate limits the messages a user may send per second over all
	// connections and REST (default 10; bursts of twice that).
	UserRate float64
	// JoinRate limits the join and leave frames a user may send per second
	// over all connections (default 20), with bursts of JoinBurst (default
	// 100): enough to rejoin a hundred rooms at once after a reconnect,
	// too few to flood members with presence frames.
	JoinRate  float64
	JoinBurst int
	// TypingRate limits the typing frames a user may send per second over
	// all connections (default 5; bursts of twice that).
	TypingRate float64
	// MaxConnsPerUser caps a user's open WebSocket connections (default
	// 32); past it upgrades are refused with 429.
	MaxConnsPerUser int
	// RateLimitedClose is how long a connection may keep sending over its
	// limit before it is closed with 4029 (default 5s).
	RateLimitedClose time.Duration
	// MaxFrameBytes is the largest frame a client may send; larger ones close
	// the connection with 1009 (default 64 KiB).
	MaxFrameBytes int64
	// PingInterval is how often the server pings; a client that answers no
	// ping for two intervals is gone (default 25s).
	PingInterval time.Duration
	// WriteTimeout bounds every socket write (default 10s).
	WriteTimeout time.Duration
	// DrainJitter spreads the 1001 closes of a drain over this long, so that
	// clients do not all reconnect at once (default 2s).
	DrainJitter time.Duration
	// SessionCheck is how often CheckSessions asks the store which of the
	// open sockets' sessions have ended (default 2s). With the time the
	// check takes, it bounds how long a socket of a session ended on
	// another replica stays open.
	SessionCheck time.Duration
	// Telemetry traces requests and frames and reports errors.
	Telemetry Telemetry
	// Now is the clock for what the API measures and decides: latencies,
	// rate limits, token expiry (default time.Now). Socket deadlines keep
	// the real clock, the only one the network runs on.
	Now func() time.Time

	// Metrics serves /metrics on the admin listener; nil leaves it out.
	Metrics http.Handler
	// AdminToken is the bearer token /admin/* wants; empty refuses everyone.
	AdminToken string
	// Faults is the fault injector that /admin/faults drives; nil while
	// fault injection is off.
	Faults *faults.Injector
	// Replica names this process among the replicas (the id the bus
	// publishes under). The WebSocket upgrade's 101 carries it in
	// X-Parley-Replica, and joined frames in "replica", so that a client
	// (the canary) knows which replica serves it; no other answer does.
	// Empty leaves both out.
	Replica string
	// TrustedProxies are the peers whose X-Forwarded-For is believed when
	// telling which address a request comes from (see clientAddr).
	TrustedProxies []netip.Prefix
	// Limits are the REST calls' rate limits (see limits.go).
	Limits Limits
	// MaxConnsPerAddr caps the requests one client address may have in
	// flight on this server, every open WebSocket among them; past it the
	// server answers 429 (default 16000; see addrlimit.go).
	MaxConnsPerAddr int
	// HandshakeTimeout bounds writing the upgrade's 101 to a client that
	// does not read it (default 10s).
	HandshakeTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.SendQueue <= 0 {
		c.SendQueue = 256
	}
	if c.ConnRate <= 0 {
		c.ConnRate = 20
	}
	if c.UserRate <= 0 {
		c.UserRate = 10
	}
	if c.JoinRate <= 0 {
		c.JoinRate = 20
	}
	if c.JoinBurst <= 0 {
		c.JoinBurst = 100
	}
	if c.TypingRate <= 0 {
		c.TypingRate = 5
	}
	if c.MaxConnsPerUser <= 0 {
		c.MaxConnsPerUser = 32
	}
	if c.RateLimitedClose <= 0 {
		c.RateLimitedClose = 5 * time.Second
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = 64 << 10
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.DrainJitter <= 0 {
		c.DrainJitter = 2 * time.Second
	}
	if c.SessionCheck <= 0 {
		c.SessionCheck = 2 * time.Second
	}
	if c.MaxConnsPerAddr <= 0 {
		c.MaxConnsPerAddr = 16000
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Telemetry.setDefaults()
}

// Server serves both listeners. Build it with New, mount Handler on the
// public listener and AdminHandler on the admin one, and call Drain when
// shutting down.
type Server struct {
	chat    *chat.Service
	auth    *auth.Service
	log     *slog.Logger
	metrics *metrics
	cfg     Config
	tel     Telemetry        // cfg.Telemetry, for short
	now     func() time.Time // cfg.Now, for short

	upgrader websocket.Upgrader
	// upgraded is the header of the 101 answer, which the upgrader writes
	// itself: it sees only the headers it is handed, not w's.
	upgraded http.Header
	sends    *keyedLimiter // the per-user send limit, UserRate
	connRate rateSpec      // each connection's frame limit, ConnRate
	limits   *restLimits
	ws       *wsLimits

	draining atomic.Bool
	mu       sync.Mutex
	conns    map[*conn]struct{}
	keeping  bool            // the keepalive loop runs (keepalive.go)
	rings    sync.Pool       // the connections' small send buffers (sendqueue.go)
	handlers *pool[frameJob] // the goroutines that handle frames (pool.go)
	writers  *pool[*conn]    // and those that write them (writer.go)
	batches  sync.Pool       // of *wireBatch, the writers' scratch space
	inbufs   sync.Pool       // of *inboundBuf, the readers' (inbound.go)
	checkMu  sync.Mutex      // one session check at a time, for checked
	checked  []string        // the session check's buffer (sessioncheck.go)
	connWG   sync.WaitGroup  // the connections' readers and the keepalive loop
}

// New returns a Server. Its metrics are registered with reg.
func New(svc *chat.Service, authn *auth.Service, log *slog.Logger, reg prometheus.Registerer, cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{
		chat:     svc,
		auth:     authn,
		log:      log,
		metrics:  newMetrics(reg),
		cfg:      cfg,
		tel:      cfg.Telemetry,
		now:      cfg.Now,
		sends:    newKeyedLimiter(cfg.UserRate, int(2*cfg.UserRate), cfg.Now),
		connRate: newRateSpec(cfg.ConnRate, int(2*cfg.ConnRate)),
		limits:   newRESTLimits(cfg.Limits, cfg.Now),
		ws:       newWSLimits(cfg),
		conns:    make(map[*conn]struct{}),
		handlers: newPool(handleFrame),
		writers:  newPool((*conn).writeQueued),
	}
	s.batches.New = func() any { return new(wireBatch) }
	s.inbufs.New = func() any { return new(inboundBuf) }
	s.rings.New = func() any { return new([smallRing]chat.Frame) }
	if cfg.Replica != "" {
		s.upgraded = http.Header{replicaHeader: {cfg.Replica}}
	}
	s.upgrader = websocket.Upgrader{
		// No write buffer: the upgrader then writes the 101 through the
		// one net/http already has. A read buffer size is set, however
		// small, because then a client's bytes that net/http read past
		// the request (a client that did not wait for the 101) stay in
		// front of the socket that NetConn returns; gorilla's own reader,
		// allocated for it, is never used. Once upgraded, the connection
		// reads and writes its socket itself (clientframes.go,
		// framing.go) and gorilla's conn is let go.
		ReadBufferSize: 1,
		// Origins are checked before the upgrade, where a refusal can still
		// be a 403 with a JSON body.
		CheckOrigin: func(*http.Request) bool { return true },
		// Without it the upgrader clears the listener's deadlines and
		// writes the 101 with none: a client that never reads it would
		// hold the handler for good.
		HandshakeTimeout: cfg.HandshakeTimeout,
	}
	return s
}

// Draining reports whether Drain has begun.
func (s *Server) Draining() bool { return s.draining.Load() }

// Drain refuses new WebSocket upgrades, turns /readyz to 503, and closes
// every socket with 1001 after a random delay within DrainJitter. Each
// connection first finishes the frame it is handling, so a send in flight is
// stored and acked. Drain returns when every connection has ended, or when
// ctx ends, after closing the rest abruptly.
func (s *Server) Drain(ctx context.Context) error {
	s.mu.Lock()
	s.draining.Store(true)
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	for _, c := range conns {
		c.drainAfter(jitter(s.cfg.DrainJitter))
	}
	done := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.handlers.stop()
		s.writers.stop()
		return nil
	case <-ctx.Done():
		for _, c := range conns {
			c.abort()
		}
		// Aborted connections end as soon as their sockets and contexts
		// close; a store call that ignores its context could still hold
		// one, and must not hold shutdown with it.
		select {
		case <-done:
			s.handlers.stop()
			s.writers.stop()
		case <-time.After(abortGrace):
			s.log.Error("connections still running after the drain was aborted", "grace", abortGrace.String())
		}
		return ctx.Err()
	}
}

// abortGrace bounds the wait for connections after a drain is aborted.
const abortGrace = 5 * time.Second

// track registers a new connection unless the server is draining.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	c.nextPing = s.firstPing()
	s.connWG.Add(1)
	if !s.keeping {
		s.keeping = true
		s.connWG.Add(1)
		go s.keepAlive()
	}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.connWG.Done()
}
