package httpapi

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's own series. Labels hold only bounded values: close
// codes, frame types from a fixed list, and where a panic happened.
type metrics struct {
	connections prometheus.Gauge
	upgrades    *prometheus.CounterVec
	disconnects *prometheus.CounterVec
	framesIn    *prometheus.CounterVec
	slowCloses  prometheus.Counter
	rateLimited prometheus.Counter
	panics      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_ws_connections",
			Help: "Open WebSocket connections.",
		}),
		upgrades: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_ws_upgrades_total",
			Help: "WebSocket upgrade attempts by result.",
		}, []string{"result"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_ws_disconnects_total",
			Help: "Closed WebSocket connections by the close code the server sent or received.",
		}, []string{"code"}),
		framesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_ws_frames_in_total",
			Help: "Frames received from clients by type (invalid for frames that did not decode).",
		}, []string{"type"}),
		slowCloses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_ws_slow_consumer_closes_total",
			Help: "Connections closed with 4008 because they could not keep up.",
		}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_ws_rate_limited_frames_total",
			Help: "Frames refused by a connection or user rate limit.",
		}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_panics_recovered_total",
			Help: "Panics recovered, by where they happened (http, ws).",
		}, []string{"where"}),
	}
	reg.MustRegister(m.connections, m.upgrades, m.disconnects, m.framesIn, m.slowCloses, m.rateLimited, m.panics)
	for _, t := range frameTypes {
		m.framesIn.WithLabelValues(t)
	}
	return m
}
