// Package telemetry sets up Parley's traces, metrics, logs and error
// reporting. It is a leaf: it imports observability libraries only, never the
// server's packages, and it keeps no package-level state: everything it builds
// hangs off the [Telemetry] value that [Setup] returns.
//
// # Configuration
//
// Setup reads the standard OpenTelemetry variables and SENTRY_DSN through
// [Config.Getenv], never the process environment directly, and rejects bad
// values with an error that names the variable. Whatever decides behaviour is
// parsed here: OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL,
// OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, OTEL_TRACES_SAMPLER(_ARG),
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the results are handed to
// the SDK as explicit options, which take precedence over its own environment
// reading. Transport details that do not change what is exported (headers,
// TLS certificates, compression, timeout) are left to the OTLP exporter, which
// reads them from the process environment itself.
//
// # Tracing without an endpoint
//
// The platform contract says tracing is off without an endpoint. Here that
// means nothing is exported, not that spans disappear: with no OTLP endpoint
// (and no injected exporter) Setup still builds an SDK tracer provider with the
// configured sampler and no exporter, so every request has a real trace id to
// put in its log lines, exemplars and Sentry events. Only
// OTEL_TRACES_EXPORTER=none switches tracing off entirely (a no-op provider).
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/getsentry/sentry-go"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Config is what Setup needs from the composition root.
type Config struct {
	// Service is the resource's service.name unless OTEL_SERVICE_NAME says
	// otherwise; "" means "parley".
	Service string
	// Version is the release, reported as service.version, the Sentry release
	// and the parley_build_info version label; "" means "dev".
	Version string
	// Environment is the deployment environment (Sentry environment and the
	// deployment.environment.name resource attribute); "" leaves both unset.
	Environment string
	// LogLevel is the lowest level the logger writes.
	LogLevel slog.Level
	// Stdout receives the JSON log lines. It must not be nil.
	Stdout io.Writer
	// Getenv reads OTEL_* and SENTRY_DSN. Nil means an empty environment.
	Getenv func(string) string
	// SpanExporter, when set, receives every sampled span synchronously,
	// whatever OTEL_TRACES_EXPORTER and the OTLP endpoint say: tests use an
	// in-memory exporter to see spans as soon as they end.
	SpanExporter sdktrace.SpanExporter
	// SentryTransport, when set, replaces the HTTP transport built for
	// SENTRY_DSN. It is ignored when SENTRY_DSN is unset.
	SentryTransport sentry.Transport
}

// Telemetry holds the process's observability plumbing. Build it with Setup
// and release it with Shutdown.
type Telemetry struct {
	// Tracer is never nil: a no-op provider when tracing is off.
	Tracer trace.TracerProvider
	// Propagator carries trace context across process boundaries (W3C
	// traceparent/tracestate). Middleware uses it instead of a global one.
	Propagator propagation.TextMapPropagator
	// Registry holds the Go and process collectors and parley_build_info.
	Registry *prometheus.Registry
	// Logger writes JSON and adds trace_id and span_id from the context.
	Logger *slog.Logger
	// Sentry reports errors and panics; it is nil when SENTRY_DSN is unset,
	// and its methods do nothing on a nil receiver.
	Sentry *Reporter

	shutdownTraces func(context.Context) error
	shutdownOnce   sync.Once
	shutdownErr    error
}

// Setup builds the tracer provider, metrics registry, logger and error
// reporter from cfg. Bad configuration is reported all at once, each error
// naming its variable.
func Setup(ctx context.Context, cfg Config) (*Telemetry, error) {
	if cfg.Stdout == nil {
		return nil, errors.New("telemetry: Config.Stdout is nil")
	}
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if cfg.Service == "" {
		cfg.Service = "parley"
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}

	traces, traceErr := parseTraceSettings(getenv)
	dsn, dsnErr := parseSentryDSN(getenv)
	if err := errors.Join(traceErr, dsnErr); err != nil {
		return nil, fmt.Errorf("telemetry config: %w", err)
	}

	tp, shutdownTraces, err := newTracerProvider(ctx, traces, cfg)
	if err != nil {
		return nil, err
	}
	reporter, err := newReporter(dsn, cfg.Version, cfg.Environment, cfg.SentryTransport)
	if err != nil {
		// Nothing has been exported yet; this only releases the exporter.
		_ = shutdownTraces(ctx)
		return nil, err
	}

	reg := NewRegistry()
	reg.MustRegister(newBuildInfo(cfg.Version))

	return &Telemetry{
		Tracer:         tp,
		Propagator:     propagation.TraceContext{},
		Registry:       reg,
		Logger:         NewLogger(cfg.Stdout, cfg.LogLevel),
		Sentry:         reporter,
		shutdownTraces: shutdownTraces,
	}, nil
}

// Shutdown flushes buffered spans and Sentry events and releases their
// exporters, giving up when ctx is done. Only the first call does the work;
// later calls return its result.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.shutdownOnce.Do(func() {
		// Spans and events flush concurrently so that a dead collector does not
		// eat the time a live Sentry needs, or the other way round.
		var wg sync.WaitGroup
		var traceErr error
		wg.Go(func() { traceErr = t.shutdownTraces(ctx) })
		sentryErr := t.Sentry.shutdown(ctx)
		wg.Wait()
		if traceErr != nil {
			traceErr = fmt.Errorf("shut down tracing: %w", traceErr)
		}
		t.shutdownErr = errors.Join(traceErr, sentryErr)
	})
	return t.shutdownErr
}
