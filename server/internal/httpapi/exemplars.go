package httpapi

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// exemplarEvery is how often each bucket of the delivery histogram takes a
// new exemplar.
const exemplarEvery = time.Second

// sampledHistogram is the delivery histogram, which observes once per
// recipient, with exemplars that each bucket takes at most once per
// exemplarEvery. The client library keeps a bucket's latest exemplar
// only, and Prometheus reads it once per scrape: an exemplar for every
// observation (every recipient of every sampled message) would cost an
// allocation each, for a trace id that the next one overwrites unread.
// The counts and buckets are exact; the exemplar a scrape finds is a
// sampled delivery of that bucket at most exemplarEvery older than the
// bucket's latest.
type sampledHistogram struct {
	h      prometheus.Histogram
	bounds []float64
	due    []atomic.Int64 // per bucket, +Inf last: when it takes its next exemplar (Unix ns)
}

func newSampledHistogram(h prometheus.Histogram, bounds []float64) *sampledHistogram {
	return &sampledHistogram{h: h, bounds: bounds, due: make([]atomic.Int64, len(bounds)+1)}
}

// observe records v, with the span's trace id as exemplar when the span is
// sampled and v's bucket is due one (observeWithTrace, as every latency).
func (s *sampledHistogram) observe(v float64, sc trace.SpanContext, now time.Time) {
	if sc.IsSampled() && !s.takeTurn(v, now) {
		sc = trace.SpanContext{} // not the bucket's turn: counted, without an exemplar
	}
	observeWithTrace(s.h, v, sc)
}

// takeTurn reports whether v's bucket is due an exemplar, and if so makes
// the next one due exemplarEvery from now.
func (s *sampledHistogram) takeTurn(v float64, now time.Time) bool {
	due := &s.due[sort.SearchFloat64s(s.bounds, v)] // the first bound ≥ v: v's bucket
	// A due more than two intervals ahead is a clock that stepped back.
	d, t := due.Load(), now.UnixNano()
	return (t >= d || d-t > 2*int64(exemplarEvery)) && due.CompareAndSwap(d, t+int64(exemplarEvery))
}
