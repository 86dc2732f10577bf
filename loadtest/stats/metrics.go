package stats

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parleychat/parley/loadtest/ledger"
)

// runCollector exposes the run as Prometheus series, read from the ledger
// at each scrape, so that the load-test dashboard shows the load beside
// the servers' view of it without costing the hot path anything.
type runCollector struct {
	ledger   *ledger.Ledger
	counters *Counters

	sends, deliveries, connections, connectErrors, inFlight *prometheus.Desc
}

func newRunCollector(l *ledger.Ledger, c *Counters) *runCollector {
	return &runCollector{
		ledger: l, counters: c,
		sends:         prometheus.NewDesc("parley_loadtest_sends_total", "Messages the generator sent, by what became of them: sent (all), acked, failed (refused by the server).", []string{"outcome"}, nil),
		deliveries:    prometheus.NewDesc("parley_loadtest_deliveries_total", "Messages received by virtual users, by kind: live, replayed (history after a reconnect), duplicate, reordered.", []string{"kind"}, nil),
		connections:   prometheus.NewDesc("parley_loadtest_connections", "Open WebSocket connections of virtual users.", nil, nil),
		connectErrors: prometheus.NewDesc("parley_loadtest_connect_errors_total", "Connection attempts that failed.", nil, nil),
		inFlight:      prometheus.NewDesc("parley_loadtest_in_flight", "Messages sent and not yet acked or refused.", nil, nil),
	}
}

func (c *runCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.sends, c.deliveries, c.connections, c.connectErrors, c.inFlight} {
		ch <- d
	}
}

func (c *runCollector) Collect(ch chan<- prometheus.Metric) {
	p := c.ledger.Snapshot(time.Now())
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.sends, p.Sent, "sent")
	counter(c.sends, p.Acked, "acked")
	counter(c.sends, p.AckErrors, "failed")
	counter(c.deliveries, p.Delivered-p.Replayed, "live")
	counter(c.deliveries, p.Replayed, "replayed")
	counter(c.deliveries, p.Duplicates, "duplicate")
	counter(c.deliveries, p.Reordered, "reordered")
	counter(c.connectErrors, p.ConnectErrors)
	ch <- prometheus.MustNewConstMetric(c.connections, prometheus.GaugeValue, float64(c.counters.Connections.Load()))
	ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(p.InFlight))
}

// latencyBuckets span a healthy fan-out (milliseconds) to a stalled one
// (seconds), with the SLO's 250 ms as a bound.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// ServeMetrics serves the generator's series at addr until the returned
// function is called, and returns the address it listens on. It also
// makes the ledger feed the latency histograms.
func ServeMetrics(addr string, l *ledger.Ledger, c *Counters) (bound string, stop func(), err error) {
	ack := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "parley_loadtest_ack_latency_seconds", Help: "Time from a message's intended send time to its ack.", Buckets: latencyBuckets,
	})
	delivery := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "parley_loadtest_delivery_latency_seconds", Help: "Time from a message's intended send time to its receipt by each member (live deliveries; replays after a reconnect excluded).", Buckets: latencyBuckets,
	})
	l.Observe(func(d time.Duration) { ack.Observe(d.Seconds()) }, func(d time.Duration) { delivery.Observe(d.Seconds()) })
	reg := prometheus.NewRegistry()
	reg.MustRegister(newRunCollector(l, c), ack, delivery, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Serve ends with ErrServerClosed at stop; a scrape endpoint that
		// fails earlier costs the dashboard its series, not the run.
		_ = srv.Serve(ln)
	}()
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}
