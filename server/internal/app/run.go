package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/redis/go-redis/v9"

	"github.com/parleychat/parley/server/internal/auth"
	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/faults"
	"github.com/parleychat/parley/server/internal/httpapi"
	"github.com/parleychat/parley/server/internal/instrument"
	"github.com/parleychat/parley/server/internal/memstore"
	"github.com/parleychat/parley/server/internal/postgres"
	"github.com/parleychat/parley/server/internal/redisbus"
	"github.com/parleychat/parley/server/internal/webui"
	"github.com/parleychat/parley/telemetry"
)

// Run is the whole server: it builds everything from the environment, serves
// until ctx ends, then drains and shuts down within PARLEY_DRAIN_TIMEOUT.
// version names the build in logs, metrics and error reports.
func Run(ctx context.Context, version string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 1 && args[0] == "healthcheck" {
		return healthcheck(ctx, getenv)
	}
	if len(args) > 0 {
		return fmt.Errorf("parley takes no arguments but healthcheck (got %q): configure it with environment variables, listed in README.md", args)
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		Service: "parley", Version: version, Environment: cfg.Environment,
		LogLevel: cfg.LogLevel, Stdout: stdout, Getenv: getenv,
	})
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	defer func() {
		// Last of all: spans and error reports of the shutdown itself go too.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), telemetryFlushTimeout)
		defer cancel()
		if err := tel.Shutdown(ctx); err != nil {
			fmt.Fprintln(stderr, "parley: flushing telemetry:", err)
		}
	}()
	log := tel.Logger
	log.Info("starting parley", append(cfg.logAttrs(), "version", version)...)
	tracer := tel.Tracer.Tracer("github.com/parleychat/parley/server")
	reg := tel.Registry
	busLag := instrument.BusLag(reg)
	commitBatches := instrument.CommitBatches(reg)

	store, closeStore, err := openStore(ctx, cfg, log, tel, reg, commitBatches)
	if err != nil {
		return err
	}
	defer closeStore()
	var inj *faults.Injector
	if cfg.Faults {
		// Inside the timing, so that injected latency and failures show in
		// the store's metrics and spans as a real outage would.
		inj = faults.New(reg, nil)
		defer inj.Close()
		store = inj.Store(store)
		log.Warn("fault injection is on (PARLEY_FAULTS=on): /admin/faults can break this server on purpose")
	}
	store = instrument.Store(store, reg, tracer, nil)

	secret := []byte(cfg.JWTSecret)
	if len(secret) == 0 {
		secret = auth.RandomSecret()
		log.Warn("PARLEY_JWT_SECRET is not set: using a random secret, so tokens will not survive a restart and other replicas will refuse them")
	}

	hubOpts := chat.HubOptions{CatchUpInterval: cfg.CatchUp, RosterInterval: cfg.Presence}
	var bus *redisbus.Bus
	var closeBus func()
	if cfg.RedisURL != "" {
		bus, closeBus, err = openBus(ctx, cfg, log, redisbus.Options{
			Logger: log, Tracer: tracer, Propagator: tel.Propagator,
			Lag: busLag,
		})
		if err != nil {
			return err
		}
		hubOpts.Bus = bus
		if inj != nil {
			hubOpts.Bus = inj.Bus(bus)
		}
		instrument.Bus(reg, bus.Stats)
	}
	hub := chat.NewHub(store, httpapi.Codec(), hubOpts)
	defer hub.Close()
	if bus != nil {
		var recv redisbus.Receiver = hub
		if inj != nil {
			recv = inj.Receiver(hub)
		}
		bus.Start(recv)
		defer closeBus() // before the hub closes: the bus hands it events
		if inj != nil {
			defer inj.Close() // before the bus: it ends injected delays the bus may be waiting in
		}
	}
	instrument.Hub(reg, hub.Stats)
	svc := chat.NewService(store, hub, nil)
	authn := auth.New(store, auth.Config{Secret: secret, TokenTTL: cfg.TokenTTL, PasswordCost: cfg.PasswordCost})
	api := httpapi.New(svc, authn, log, reg, httpapi.Config{
		WebUI:          webui.Handler(),
		AllowedOrigins: cfg.AllowedOrigins,
		SendQueue:      cfg.SendQueue,
		ConnRate:       cfg.ConnRate,
		UserRate:       cfg.UserRate,
		DrainJitter:    cfg.DrainJitter,
		Telemetry:      httpapi.Telemetry{Tracer: tracer, Propagator: tel.Propagator, Reporter: tel.Sentry},
		Metrics:        telemetry.MetricsHandler(reg),
		AdminToken:     cfg.AdminToken,
		Faults:         inj,
	})

	public := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	private := &http.Server{Handler: api.AdminHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}

	serveErr := make(chan error, 2)
	for _, l := range []struct {
		name, addr string
		srv        *http.Server
	}{{"public", cfg.Addr, public}, {"admin", cfg.AdminAddr, private}} {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			public.Close()
			private.Close()
			return fmt.Errorf("listen %s on %s: %w", l.name, l.addr, err)
		}
		log.Info("listening", "listener", l.name, "addr", ln.Addr().String())
		go func() { serveErr <- l.srv.Serve(ln) }()
	}

	select {
	case <-ctx.Done():
		log.Info("draining", "timeout", cfg.DrainTimeout.String())
	case err = <-serveErr:
		log.Error("listener failed; shutting down", "err", err)
	}

	// Drain in order: stop taking sockets and close them (their last sends
	// are acked), let REST requests finish, and only then, when nothing can
	// write any more, close the hub and the store (deferred above).
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.DrainTimeout)
	defer cancel()
	if derr := api.Drain(drainCtx); derr != nil {
		log.Warn("drain timed out; closed remaining sockets", "err", derr)
	}
	if serr := public.Shutdown(drainCtx); serr != nil {
		log.Warn("public listener did not shut down in time", "err", serr)
	}
	if serr := private.Shutdown(drainCtx); serr != nil {
		log.Warn("admin listener did not shut down in time", "err", serr)
	}
	log.Info("stopped")
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// telemetryFlushTimeout bounds sending the last spans and error reports at
// exit, so that a dead collector or DSN cannot hold the process.
const telemetryFlushTimeout = 5 * time.Second

// openBus connects to the Redis of REDIS_URL for cross-replica fan-out. A
// Redis that cannot be reached at start is not fatal: members on this
// replica are served meanwhile, and the bus connects when Redis comes.
func openBus(ctx context.Context, cfg config, log *slog.Logger, opts redisbus.Options) (*redisbus.Bus, func(), error) {
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("REDIS_URL %s: %w", redactURL(cfg.RedisURL), err)
	}
	client := redis.NewClient(opt)
	replica := replicaID()
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		log.Warn("Redis cannot be reached; serving this replica's members until it can", "err", err)
	}
	log.Info("cross-replica fan-out through Redis", "replica", replica)
	bus := redisbus.New(client, replica, opts)
	return bus, func() { bus.Close(); client.Close() }, nil
}

// replicaID names this process among the replicas: the host name (the pod's,
// in Kubernetes) for people, and random bytes so that a restarted process
// is never taken for its predecessor.
func replicaID() string {
	host, err := os.Hostname()
	if err != nil {
		host = "parley"
	}
	b := make([]byte, 4)
	rand.Read(b) // never fails (crypto/rand documents it)
	return host + "-" + hex.EncodeToString(b)
}

// openStore returns PostgreSQL when DATABASE_URL is set and the in-memory
// store otherwise.
func openStore(ctx context.Context, cfg config, log *slog.Logger, tel *telemetry.Telemetry, reg prometheus.Registerer, onBatch func(int)) (chat.Store, func(), error) {
	if cfg.DatabaseURL == "" {
		log.Warn("DATABASE_URL is not set: using the in-memory store; history is not durable and is lost at restart",
			"history_per_room", cfg.MemoryHistory)
		s := memstore.New(memstore.Options{HistoryLimit: cfg.MemoryHistory})
		return s, s.Close, nil
	}
	s, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{
		Logger:  log,
		Tracer:  otelpgx.NewTracer(otelpgx.WithTracerProvider(tel.Tracer)),
		OnBatch: onBatch,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("open PostgreSQL (DATABASE_URL %s): %w", redactURL(cfg.DatabaseURL), err)
	}
	instrument.Pool(reg, func() instrument.PoolStat { return s.PoolStat() })
	return s, s.Close, nil
}
