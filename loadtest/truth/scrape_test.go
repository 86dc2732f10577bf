package truth

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// replica serves a /metrics page as a Parley replica's admin listener
// does, from client_golang's own handler: the ack SLI's counter and the
// delivery SLI's histogram with the server's buckets and labels.
type replica struct {
	sends    *prometheus.CounterVec
	delivery prometheus.Histogram
	srv      *httptest.Server
	reads    atomic.Int64
	// onRead, when set, runs before each read is answered: traffic that
	// goes on while the check reads.
	onRead atomic.Pointer[func(n int64)]
}

func newReplica(t *testing.T) *replica {
	t.Helper()
	reg := prometheus.NewRegistry()
	r := &replica{
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_sends_total", Help: "Sends."}, []string{"transport", "outcome", "reason"}),
		delivery: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "parley_delivery_latency_seconds", Help: "Deliveries.", Buckets: serverBounds,
		}),
	}
	reg.MustRegister(r.sends, r.delivery)
	for _, tr := range []string{"ws", "rest"} {
		r.sends.WithLabelValues(tr, "acked", "")
		r.sends.WithLabelValues(tr, "failed", "unavailable")
	}
	page := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := r.reads.Add(1)
		if f := r.onRead.Load(); f != nil {
			(*f)(n)
		}
		page.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *replica) url() string { return r.srv.URL + "/metrics" }

func (r *replica) whenRead(f func(n int64)) { r.onRead.Store(&f) }

// traffic counts acked sends and deliveries, as a replica does under load.
func (r *replica) traffic(acked int, latencies ...time.Duration) {
	r.sends.WithLabelValues("ws", "acked", "").Add(float64(acked))
	r.sends.WithLabelValues("rest", "acked", "").Add(1000) // not the generator's transport
	r.sends.WithLabelValues("ws", "failed", "unavailable").Add(7)
	for _, l := range latencies {
		r.delivery.Observe(l.Seconds())
	}
}

func TestScrapeReadsTheSLISeries(t *testing.T) {
	t.Parallel()
	r := newReplica(t)
	r.traffic(5, time.Millisecond, 20*time.Millisecond, 300*time.Millisecond)
	s, err := scrape(t.Context(), http.DefaultClient, r.url())
	if err != nil {
		t.Fatal(err)
	}
	if s.Acked != 5 || s.Delivered != 3 {
		t.Errorf("got acked %v, delivered %v; want 5 ws acks and 3 deliveries", s.Acked, s.Delivered)
	}
	if len(s.Buckets) != len(serverBounds)+1 || !math.IsInf(s.Buckets[len(s.Buckets)-1].Le, 1) {
		t.Fatalf("got buckets %v, want the server's bounds and +Inf", s.Buckets)
	}
	for _, b := range []Bucket{{0.001, 1}, {0.025, 2}, {0.25, 2}, {0.5, 3}, {math.Inf(1), 3}} {
		found := false
		for _, got := range s.Buckets {
			found = found || got == b
		}
		if !found {
			t.Errorf("no bucket %v in %v", b, s.Buckets)
		}
	}
}

// A page that lacks a series the check compares is not a Parley replica
// (or one too old): the error names the series.
func TestParseNamesTheMissingSeries(t *testing.T) {
	t.Parallel()
	const histogram = `# TYPE parley_delivery_latency_seconds histogram
parley_delivery_latency_seconds_bucket{le="0.25"} 4
parley_delivery_latency_seconds_bucket{le="+Inf"} 5
parley_delivery_latency_seconds_sum 1.5
parley_delivery_latency_seconds_count 5
`
	const sends = `# TYPE parley_sends_total counter
parley_sends_total{outcome="acked",reason="",transport="ws"} 9
`
	tests := []struct {
		name, page, want string
	}{
		{"no sends counter", histogram, `no parley_sends_total{transport="ws",outcome="acked"} series`},
		{"only REST sends", histogram + "# TYPE parley_sends_total counter\nparley_sends_total{outcome=\"acked\",reason=\"\",transport=\"rest\"} 9\n", `no parley_sends_total{transport="ws"`},
		{"no delivery histogram", sends, "no parley_delivery_latency_seconds histogram"},
		{"the histogram as a gauge", sends + "# TYPE parley_delivery_latency_seconds gauge\nparley_delivery_latency_seconds 1\n", "no parley_delivery_latency_seconds histogram"},
		{"not the text format", "<html>hello</html>", "not the Prometheus text format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parse(strings.NewReader(tt.page))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	s, err := parse(strings.NewReader(histogram + sends + "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds 1.7e9\n"))
	if err != nil || s.Acked != 9 || s.Delivered != 5 || s.Started != 1.7e9 || len(s.Buckets) != 2 {
		t.Fatalf("got %+v, %v", s, err)
	}
}

// Begin reads every target and refuses one it cannot use, before
// anything is sent: unreachable, not a /metrics page, or without a bound
// the check is asked to hold.
func TestBeginRefusesATargetItCannotUse(t *testing.T) {
	t.Parallel()
	r := newReplica(t)
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html></html>"))
	}))
	t.Cleanup(html.Close)
	missing := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(missing.Close)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"a bound the histogram lacks", Config{Metrics: []string{r.url()}, Bounds: []float64{0.3}}, "0.3 s is not a bucket bound of parley_delivery_latency_seconds (its bounds: 0.001, 0.0025"},
		{"a page that is not found", Config{Metrics: []string{missing.URL + "/metrics"}}, "got 404 Not Found"},
		{"a web page", Config{Metrics: []string{html.URL}}, `got Content-Type "text/html"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Begin(t.Context(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// End waits for counts still climbing when the load ended (deliveries
// in flight at the edge), and gives up on a target that never stops
// counting: it serves other traffic, so its counts are not the run's.
func TestEndWaitsForTheCountsToSettle(t *testing.T) {
	t.Parallel()
	r := newReplica(t)
	cfg := Config{Metrics: []string{r.url()}, Bounds: []float64{0.25}, Quiesce: 10 * time.Second}
	p, err := Begin(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.poll = time.Millisecond
	r.traffic(10, time.Millisecond)
	// Three more reads see one more delivery each: the ones in flight.
	r.reads.Store(0)
	r.whenRead(func(n int64) {
		if n <= 3 {
			r.traffic(0, time.Millisecond)
		}
	})
	iv := p.End(t.Context())
	if iv.Err != nil {
		t.Fatal(iv.Err)
	}
	if got := iv.After[0].Delivered - iv.Before[0].Delivered; got != 4 {
		t.Errorf("got %v deliveries over the interval, want 4 (the last three arrived while End read)", got)
	}
	c := Compare(cfg, iv, Seen{Acked: 10, Deliveries: 4, Latency: spread(4, time.Millisecond).hist()})
	if !c.Pass() {
		t.Errorf("got a failure, want agreement:\n%s", table(c))
	}

	busy := newReplica(t)
	busy.whenRead(func(int64) { busy.traffic(1, time.Millisecond) })
	p, err = Begin(t.Context(), Config{Metrics: []string{busy.url()}, Quiesce: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p.poll = time.Millisecond
	iv = p.End(t.Context())
	if iv.Err == nil || !strings.Contains(iv.Err.Error(), "still changing 50ms after the load: do the targets serve other traffic?") {
		t.Fatalf("got %v, want the counts still changing", iv.Err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if iv := p.End(ctx); iv.Err == nil {
		t.Fatal("got no error from End with its context ended")
	}
}
