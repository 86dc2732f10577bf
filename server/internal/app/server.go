package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/parleychat/parley/server/internal/auth"
	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/faults"
	"github.com/parleychat/parley/server/internal/httpapi"
	"github.com/parleychat/parley/server/internal/instrument"
	"github.com/parleychat/parley/server/internal/redisbus"
	"github.com/parleychat/parley/server/internal/webui"
	"github.com/parleychat/parley/telemetry"
)

// server holds Parley's parts. Each is nil until it is built and again once
// it is closed, so shutdown can end a server that failed half-way through
// building, and ends nothing twice.
type server struct {
	cfg     config
	log     *slog.Logger
	replica string    // this process among the replicas: the bus's id, told to clients
	stderr  io.Writer // for what cannot be logged: telemetry failing at exit

	tel           *telemetry.Telemetry
	store         chat.Store
	closeStore    func()
	inj           *faults.Injector // nil unless PARLEY_FAULTS=on
	bus           *redisbus.Bus    // nil without REDIS_URL
	busReceiver   redisbus.Receiver
	closeBus      func()
	hub           *chat.Hub
	api           *httpapi.Server
	public, admin *http.Server

	// serving waits for the listeners' Serve goroutines, which report to
	// failed (room for both) if they end before shutdown.
	serving sync.WaitGroup
	failed  chan error

	// checking waits for the API's session checks (httpapi CheckSessions),
	// which stopChecks ends; nil until start.
	checking   sync.WaitGroup
	stopChecks context.CancelFunc
}

func newServer(cfg config, tel *telemetry.Telemetry, stderr io.Writer) *server {
	return &server{cfg: cfg, tel: tel, log: tel.Logger, replica: replicaID(), stderr: stderr, failed: make(chan error, 2)}
}

// build makes every part from the configuration and connects them, each
// after what it uses. Only the parts' own goroutines run yet: nothing
// listens, and the bus is not subscribed.
func (s *server) build(ctx context.Context) error {
	reg := s.tel.Registry
	tracer := s.tel.Tracer.Tracer("github.com/parleychat/parley/server")
	store, err := s.buildStore(ctx, reg, tracer)
	if err != nil {
		return err
	}
	if err := s.buildHub(ctx, store, reg, tracer); err != nil {
		return err
	}
	s.buildAPI(store, reg, tracer)
	return nil
}

// buildStore opens the store and returns it as the rest of the server
// sees it: behind the fault injector, when faults are on, and the timing.
func (s *server) buildStore(ctx context.Context, reg *prometheus.Registry, tracer trace.Tracer) (chat.Store, error) {
	var err error
	s.store, s.closeStore, err = openStore(ctx, s.cfg, s.log, s.tel, reg, instrument.CommitBatches(reg))
	if err != nil {
		return nil, err
	}
	store := s.store
	if s.cfg.Faults {
		// Inside the timing, so that injected latency and failures show in
		// the store's metrics and spans as a real outage would.
		s.inj = faults.New(reg, nil)
		store = s.inj.Store(store)
		s.log.Warn("fault injection is on (PARLEY_FAULTS=on): /admin/faults can break this server on purpose")
	}
	return instrument.Store(store, reg, tracer, nil), nil
}

// buildHub makes the hub and, with REDIS_URL, the bus that links it to the
// other replicas.
func (s *server) buildHub(ctx context.Context, store chat.Store, reg *prometheus.Registry, tracer trace.Tracer) error {
	// Registered without a bus too, so that dashboards see it empty.
	busLag := instrument.BusLag(reg)
	opts := chat.HubOptions{CatchUpInterval: s.cfg.CatchUp, RosterInterval: s.cfg.Presence}
	if s.cfg.RedisURL != "" {
		var err error
		s.bus, s.closeBus, err = openBus(ctx, s.cfg, s.log, s.replica, redisbus.Options{
			Logger: s.log, Tracer: tracer, Propagator: s.tel.Propagator, Lag: busLag,
		})
		if err != nil {
			return err
		}
		instrument.Bus(reg, s.bus.Stats)
		opts.Bus = s.bus
		if s.inj != nil {
			opts.Bus = s.inj.Bus(s.bus)
		}
	}
	s.hub = chat.NewHub(store, httpapi.Codec(s.replica), opts)
	instrument.Hub(reg, s.hub.Stats)
	s.busReceiver = s.hub
	if s.inj != nil {
		s.busReceiver = s.inj.Receiver(s.hub)
	}
	return nil
}

// buildAPI makes the services and both listeners' handlers.
func (s *server) buildAPI(store chat.Store, reg *prometheus.Registry, tracer trace.Tracer) {
	secret := []byte(s.cfg.JWTSecret)
	if len(secret) == 0 {
		secret = auth.RandomSecret()
		s.log.Warn("PARLEY_JWT_SECRET is not set: using a random secret, so tokens will not survive a restart and other replicas will refuse them")
	}
	svc := chat.NewService(store, s.hub, nil)
	authn := auth.New(store, auth.Config{Secret: secret, TokenTTL: s.cfg.TokenTTL, PasswordCost: s.cfg.PasswordCost})
	s.api = httpapi.New(svc, authn, s.log, reg, httpapi.Config{
		WebUI:           webui.Handler(),
		AllowedOrigins:  s.cfg.AllowedOrigins,
		SendQueue:       s.cfg.SendQueue,
		ConnRate:        s.cfg.ConnRate,
		UserRate:        s.cfg.UserRate,
		JoinRate:        s.cfg.JoinRate,
		JoinBurst:       s.cfg.JoinBurst,
		TypingRate:      s.cfg.TypingRate,
		MaxConnsPerUser: s.cfg.MaxConnsUser,
		DrainJitter:     s.cfg.DrainJitter,
		Limits:          s.cfg.Limits,
		Telemetry:       httpapi.Telemetry{Tracer: tracer, Propagator: s.tel.Propagator, Reporter: s.tel.Sentry},
		Metrics:         telemetry.MetricsHandler(reg),
		AdminToken:      s.cfg.AdminToken,
		Faults:          s.inj,
		Replica:         s.replica,

		// Who a request comes from, and how many it may have in flight.
		TrustedProxies:  s.cfg.TrustedProxies,
		MaxConnsPerAddr: s.cfg.MaxConnsPerAddr,
	})
	s.public = s.httpServer(s.api.Handler())
	s.admin = s.httpServer(s.api.AdminHandler())
}

// httpServer is a listener's server; its own errors go to the log.
//
// Its timeouts bound how long one client may hold a connection: the
// request's headers, the whole request with its body, the answer (from the
// end of the headers to the last byte written), and a keep-alive between
// requests. They end where a WebSocket begins: the upgrade bounds its own
// 101 (the upgrader's handshake timeout), and from then on the socket sets
// its own deadline before every read (two ping intervals) and every write,
// so a socket lives for hours on a listener whose requests get a minute.
// On the admin listener, net/http/pprof pushes the write deadline out by
// the seconds a profile or trace asks for.
func (s *server) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}
