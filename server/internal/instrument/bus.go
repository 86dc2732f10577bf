package instrument

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley/server/internal/redisbus"
)

// Bus registers with reg the series of the Redis bus's Stats, read once
// per scrape.
func Bus(reg prometheus.Registerer, stats func() redisbus.Stats) {
	reg.MustRegister(busCollector{
		stats:      stats,
		published:  prometheus.NewDesc("parley_bus_published_total", "Events published to the other replicas.", nil, nil),
		lost:       prometheus.NewDesc("parley_bus_publish_dropped_total", "Events not published, by reason; catch-up from the store makes up for them.", []string{"reason"}, nil),
		received:   prometheus.NewDesc("parley_bus_received_total", "Events received from the other replicas.", nil, nil),
		malformed:  prometheus.NewDesc("parley_bus_malformed_total", "Payloads on a room channel that could not be decoded.", nil, nil),
		reconnects: prometheus.NewDesc("parley_bus_reconnects_total", "Subscription connections to Redis made again after one failed.", nil, nil),
		channels:   prometheus.NewDesc("parley_bus_subscribed_channels", "Room channels this replica is subscribed to, as Redis last confirmed.", nil, nil),
	})
}

type busCollector struct {
	stats                                                      func() redisbus.Stats
	published, lost, received, malformed, reconnects, channels *prometheus.Desc
}

func (c busCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.published, c.lost, c.received, c.malformed, c.reconnects, c.channels} {
		ch <- d
	}
}

func (c busCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(c.published, prometheus.CounterValue, float64(st.Published))
	ch <- prometheus.MustNewConstMetric(c.lost, prometheus.CounterValue, float64(st.PublishErrors), "error")
	ch <- prometheus.MustNewConstMetric(c.lost, prometheus.CounterValue, float64(st.Dropped), "queue_full")
	ch <- prometheus.MustNewConstMetric(c.received, prometheus.CounterValue, float64(st.Received))
	ch <- prometheus.MustNewConstMetric(c.malformed, prometheus.CounterValue, float64(st.Malformed))
	ch <- prometheus.MustNewConstMetric(c.reconnects, prometheus.CounterValue, float64(st.Reconnects))
	ch <- prometheus.MustNewConstMetric(c.channels, prometheus.GaugeValue, float64(st.Subscribed))
}

// BusLag registers parley_bus_lag_seconds with reg and returns the hook
// that records into it: redisbus.Options.Lag. It is registered whether or
// not a bus runs, so that dashboards see an empty histogram rather than
// none.
func BusLag(reg prometheus.Registerer) func(time.Duration) {
	lag := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "parley_bus_lag_seconds",
		Help:    "Time from a message's arrival at the sender's replica to its receipt from Redis here (includes the replicas' clock difference).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	})
	reg.MustRegister(lag)
	return func(d time.Duration) { lag.Observe(d.Seconds()) }
}
