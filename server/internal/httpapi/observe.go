package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Reporter sends internal errors and recovered panics to the error tracker.
// It must never block its caller. The composition root passes telemetry's
// Sentry reporter.
type Reporter interface {
	Capture(ctx context.Context, err error, tags map[string]string)
	CapturePanic(ctx context.Context, recovered any, tags map[string]string)
}

type nopReporter struct{}

func (nopReporter) Capture(context.Context, error, map[string]string)    {}
func (nopReporter) CapturePanic(context.Context, any, map[string]string) {}

// Telemetry is what the API needs to be observed beyond its metrics. Zero
// fields take inert defaults: no spans, W3C trace context, no error reports.
type Telemetry struct {
	Tracer     trace.Tracer
	Propagator propagation.TextMapPropagator
	Reporter   Reporter
}

func (t *Telemetry) setDefaults() {
	if t.Tracer == nil {
		t.Tracer = noop.NewTracerProvider().Tracer("")
	}
	if t.Propagator == nil {
		t.Propagator = propagation.TraceContext{}
	}
	if t.Reporter == nil {
		t.Reporter = nopReporter{}
	}
}

// wsPath is the one route that observe leaves to its handler: an upgraded
// request lasts as long as its socket, which is neither a request's latency
// nor a span anyone could read. The upgrade traces itself.
const wsPath = "/ws"

// observe gives each HTTP request a server span named by its route pattern,
// counts it and times it by route, method and status class (with the trace
// id as the latency's exemplar), and writes one access log record. Route
// patterns, not paths, keep the labels bounded.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == wsPath {
			next.ServeHTTP(w, r)
			return
		}
		start := s.now()
		ctx := s.tel.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := s.tel.Tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r.WithContext(ctx))

		route := routeOf(r)
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK // nothing written: net/http sends 200
		}
		method := methodLabel(r.Method)
		span.SetName(method + " " + route)
		span.SetAttributes(
			attribute.String("http.request.method", method),
			attribute.String("http.route", route),
			attribute.Int("http.response.status_code", status),
		)
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		span.End()

		elapsed := s.now().Sub(start)
		class := strconv.Itoa(status/100) + "xx"
		s.metrics.httpRequests.WithLabelValues(route, method, class).Inc()
		observeWithTrace(s.metrics.httpDuration.WithLabelValues(route, method), elapsed.Seconds(), span.SpanContext())

		level := slog.LevelInfo
		if route == "/healthz" || route == "/readyz" {
			level = slog.LevelDebug // probes every few seconds would drown the rest
		}
		s.log.LogAttrs(ctx, level, "http request",
			slog.String("method", method), slog.String("route", route), slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.Int64("duration_us", elapsed.Microseconds()),
			slog.Int("bytes", ww.BytesWritten()), slog.String("client_addr", s.clientAddr(r).String()))
	})
}

// methodLabel keeps the method label bounded: clients may send any token.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// observeWithTrace records v, with the trace id as an exemplar when the span
// is sampled, so that a latency bucket on a dashboard leads to a trace.
func observeWithTrace(o prometheus.Observer, v float64, sc trace.SpanContext) {
	if eo, ok := o.(prometheus.ExemplarObserver); ok && sc.IsSampled() {
		eo.ObserveWithExemplar(v, prometheus.Labels{"trace_id": sc.TraceID().String()})
		return
	}
	o.Observe(v)
}

// routeOf is the matched route pattern of r, for tags and logs.
func routeOf(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
		return rc.RoutePattern()
	}
	return "unmatched"
}

// recordSend counts a send by its outcome and, when it was acked, times it.
// err is nil for an ack; otherwise its protocol code decides whether the
// client (rejected) or the server (failed) is to blame, which is what the
// ack SLO counts.
func (s *Server) recordSend(ctx context.Context, transport string, start time.Time, err error) {
	if err == nil {
		s.metrics.sends.WithLabelValues(transport, "acked", "").Inc()
		observeWithTrace(s.metrics.ackLatency.WithLabelValues(transport), s.now().Sub(start).Seconds(), trace.SpanContextFromContext(ctx))
		return
	}
	_, code, _ := classify(err)
	s.recordRefusal(transport, code)
}

// recordRefusal counts a send that was not acked, with its protocol error
// code as the reason.
func (s *Server) recordRefusal(transport, code string) {
	outcome := "rejected"
	if code == codeUnavailable || code == codeInternal {
		outcome = "failed"
	}
	s.metrics.sends.WithLabelValues(transport, outcome, code).Inc()
}
