package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/canary/probe"
	"github.com/parleychat/parley/internal/httpserve"
	"github.com/parleychat/parley/telemetry"
)

// run is the whole program, for main and for tests: getenv stands in for
// the environment, which nothing below run reads. It probes until ctx
// ends; only bad settings and a metrics address it cannot listen on stop
// it sooner. A server it cannot reach is what it reports, not a reason to
// exit.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	tel, err := telemetry.Setup(ctx, telemetry.Config{Service: "parley-canary", Version: version, LogLevel: cfg.logLevel, Stdout: stdout, Getenv: getenv})
	if err != nil {
		return err
	}
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(shutdownCtx); err != nil {
			fmt.Fprintln(stderr, "parley-canary: telemetry:", err)
		}
	}()
	log := tel.Logger
	log.Info("starting parley-canary", "version", version, "target", cfg.target, "username", cfg.username, "room", cfg.room,
		"interval", cfg.interval.String(), "timeout", cfg.timeout.String(), "redial", cfg.redial.String(), "metrics_addr", cfg.metricsAddr)

	// A registry of its own, not tel.Registry: that one holds
	// parley_build_info, which the dashboards read as "a replica of this
	// build", and the canary is not one.
	reg := telemetry.NewRegistry()
	metrics := probe.NewMetrics(reg, float64(time.Now().UnixNano())/1e9)
	prober, err := probe.New(probe.Config{
		Target: cfg.target, Username: cfg.username, Password: cfg.password, Room: cfg.room,
		Interval: cfg.interval, Timeout: cfg.timeout, Redial: cfg.redial,
		HTTP:       &http.Client{Timeout: cfg.timeout},
		Dialer:     &websocket.Dialer{HandshakeTimeout: cfg.timeout, Proxy: http.ProxyFromEnvironment},
		Tracer:     tel.Tracer.Tracer("github.com/parleychat/parley/canary"),
		Propagator: tel.Propagator,
		Log:        log,
		Now:        time.Now,
		Metrics:    metrics,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.metricsAddr)
	if err != nil {
		return fmt.Errorf("-metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", telemetry.MetricsHandler(reg))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	log.Info("listening", "addr", ln.Addr().String())

	// The probes run as long as the metrics listener serves: until ctx
	// ends, or the listener fails.
	probing := make(chan struct{})
	probeCtx, stopProbing := context.WithCancel(ctx)
	go func() { defer close(probing); prober.Run(probeCtx) }()
	if err = httpserve.Serve(ctx, ln, srv); err != nil {
		err = fmt.Errorf("metrics listener: %w", err)
	}
	stopProbing()
	<-probing
	log.Info("stopped")
	return err
}
