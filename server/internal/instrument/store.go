// Package instrument measures the parts that must not import Prometheus or
// OpenTelemetry themselves: it times and traces the store, and exports what
// the hub, the bus and the PostgreSQL pool count in their Stats. The
// composition root wires it in, so that the domain and the adapters stay
// free of both libraries and every store is measured alike.
package instrument

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/storehook"
)

// Store wraps s so that every operation gets a client span (store.append,
// ...) and is timed by operation and outcome in
// parley_store_operation_duration_seconds, which it registers with reg. now
// is the clock the timing reads; nil means time.Now.
//
// The span matters most for appends: PostgreSQL's group commit runs them in
// a writer goroutine, whose queries cannot be children of the sender's
// span, so this span is what a trace shows of the wait and the commit.
func Store(s chat.Store, reg prometheus.Registerer, tracer trace.Tracer, now func() time.Time) chat.Store {
	if now == nil {
		now = time.Now
	}
	seconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "parley_store_operation_duration_seconds",
		Help:    "Time of each store operation, by operation and outcome (ok, not_found, conflict, invalid, too_large, unavailable, error).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"op", "outcome"})
	reg.MustRegister(seconds)
	t := &storeTimer{seconds: seconds, tracer: tracer, now: now}
	return storehook.Wrap(s, t.around)
}

type storeTimer struct {
	seconds *prometheus.HistogramVec
	tracer  trace.Tracer
	now     func() time.Time
}

// around records one operation. It ends the span and records in a defer so
// that a store that panics still closes its span.
func (t *storeTimer) around(ctx context.Context, op string, call func(context.Context) error) (err error) {
	start := t.now()
	ctx, span := t.tracer.Start(ctx, "store."+op, trace.WithSpanKind(trace.SpanKindClient))
	defer func() {
		out := outcome(err)
		if out == "unavailable" || out == "error" {
			span.SetStatus(codes.Error, out)
		}
		span.End()
		t.seconds.WithLabelValues(op, out).Observe(t.now().Sub(start).Seconds())
	}()
	return call(ctx)
}

// outcomes names the kinds of store error in the outcome label. It is not
// the API's error table: these names are a metric contract of their own
// (invalid where the API says bad_request), and a store knows no HTTP.
// The first entry that matches wins; anything unmatched is "error".
var outcomes = []struct {
	kind  error
	label string
}{
	{chat.ErrNotFound, "not_found"},
	{chat.ErrConflict, "conflict"},
	{chat.ErrInvalid, "invalid"},
	{chat.ErrTooLarge, "too_large"},
	{chat.ErrUnavailable, "unavailable"},
	{context.DeadlineExceeded, "unavailable"},
	{context.Canceled, "unavailable"},
}

// outcome names an error by its kind, so the label stays bounded.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	for _, o := range outcomes {
		if errors.Is(err, o.kind) {
			return o.label
		}
	}
	return "error"
}
