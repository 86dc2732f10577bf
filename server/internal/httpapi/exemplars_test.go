package httpapi

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/trace"
)

func spanWithID(b byte, sampled bool) trace.SpanContext {
	cfg := trace.SpanContextConfig{TraceID: trace.TraceID{b}, SpanID: trace.SpanID{b}}
	if sampled {
		cfg.TraceFlags = trace.FlagsSampled
	}
	return trace.NewSpanContext(cfg)
}

// Each bucket takes an exemplar at most once a second, from a sampled span
// only; every observation is counted.
func TestDeliveryExemplarsAreTakenOncePerBucketPerInterval(t *testing.T) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "d", Buckets: []float64{.01, .1}})
	s := newSampledHistogram(h, []float64{.01, .1})
	t0 := time.Unix(1000, 0)
	s.observe(.005, spanWithID(1, false), t0)                   // not sampled: no exemplar
	s.observe(.005, spanWithID(2, true), t0)                    // the bucket's first
	s.observe(.005, spanWithID(3, true), t0.Add(time.Second/2)) // too soon
	s.observe(.05, spanWithID(4, true), t0.Add(time.Second/2))  // another bucket's first
	s.observe(.5, spanWithID(5, true), t0.Add(time.Second/2))   // +Inf's first
	s.observe(.5, spanWithID(6, true), t0.Add(3*time.Second/2)) // +Inf's next, a second after its first

	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetHistogram().GetSampleCount(); got != 6 {
		t.Errorf("got %d observations, want 6", got)
	}
	var got []string
	for _, b := range m.GetHistogram().GetBucket() {
		got = append(got, exemplarTraceID(b.GetExemplar()))
	}
	// The +Inf bucket's exemplar is reported apart from the bucket list,
	// or on a bucket of its own, depending on the library version.
	for _, b := range m.GetHistogram().GetExemplars() {
		got = append(got, exemplarTraceID(b))
	}
	want := []string{spanWithID(2, true).TraceID().String(), spanWithID(4, true).TraceID().String(), spanWithID(6, true).TraceID().String()}
	if len(got) < 2 || got[0] != want[0] || got[1] != want[1] || got[len(got)-1] != want[2] {
		t.Errorf("got exemplars %v, want %v", got, want)
	}
}
