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
	limited     *prometheus.CounterVec
	panics      *prometheus.CounterVec

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	sends        *prometheus.CounterVec
	ackLatency   *prometheus.HistogramVec

	ready           prometheus.Gauge
	resumes         *prometheus.CounterVec
	framesOutByKind *prometheus.CounterVec
	framesOutKnown  map[string]prometheus.Counter // by kind, resolved once
	deliveryLatency *sampledHistogram
}

// outKinds are the kinds of frame the server writes: the values of the
// frames-out metric's label.
var outKinds = []string{"message", "joined", "presence", "typing", "ack", "error", "left"}

// framesOut is the counter of written frames of kind, without a label
// lookup on the hot path.
func (m *metrics) framesOut(kind string) prometheus.Counter {
	if c, ok := m.framesOutKnown[kind]; ok {
		return c
	}
	return m.framesOutKnown["other"]
}

// latencyBuckets cover a chat server's answers: from a fraction of a
// millisecond (in memory) to the seconds a struggling database takes. The
// SLO thresholds (100 ms, 250 ms, 1 s) are bucket bounds, so that alerts
// read exact counts rather than interpolations.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

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
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_rate_limited_total",
			Help: "Requests, upgrades and frames refused by a limit, by the limit's name (limits are per replica).",
		}, []string{"limit"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_panics_recovered_total",
			Help: "Panics recovered, by where they happened (http, ws).",
		}, []string{"where"}),
	}
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_http_requests_total",
		Help: "HTTP requests answered, by route pattern, method and status class (2xx, 4xx, ...). /ws upgrades are counted in parley_ws_upgrades_total.",
	}, []string{"route", "method", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "parley_http_request_duration_seconds",
		Help:    "Time to answer an HTTP request, by route pattern and method; exemplars carry trace ids.",
		Buckets: latencyBuckets,
	}, []string{"route", "method"})
	m.sends = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_sends_total",
		Help: "Messages sent by clients, by transport (ws, rest) and outcome: acked, rejected (the client's fault, reason is the error code) or failed (the server's, reason unavailable or internal).",
	}, []string{"transport", "outcome", "reason"})
	m.ackLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "parley_ack_latency_seconds",
		Help:    "Time from reading a send to queueing its ack (stored and delivered locally), by transport; exemplars carry trace ids.",
		Buckets: latencyBuckets,
	}, []string{"transport"})
	m.framesOutByKind = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_ws_frames_out_total",
		Help: "Frames written to clients by type.",
	}, []string{"type"})
	m.framesOutKnown = make(map[string]prometheus.Counter)
	for _, k := range append(outKinds, "other") {
		m.framesOutKnown[k] = m.framesOutByKind.WithLabelValues(k)
	}
	m.ready = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "parley_ready",
		Help: "What the last /readyz answered: 1 ready, 0 not (draining or store unreachable). Its changes show readiness flapping.",
	})
	m.resumes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_ws_resumes_total",
		Help: "Joins with since (a client resuming after a reconnect), by result: ok, or the error code that refused or broke the replay.",
	}, []string{"result"})
	for _, r := range []string{"ok", "not_found", "unavailable", "internal", "conflict", "bad_request"} {
		m.resumes.WithLabelValues(r)
	}
	delivery := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "parley_delivery_latency_seconds",
		Help:    "Time from a message's arrival at the server that stored it to its write on a recipient's socket, per recipient (replayed history excluded); exemplars carry trace ids. Across replicas it includes their clock difference.",
		Buckets: latencyBuckets,
	})
	m.deliveryLatency = newSampledHistogram(delivery, latencyBuckets)
	reg.MustRegister(m.connections, m.upgrades, m.disconnects, m.framesIn, m.slowCloses, m.rateLimited, m.limited, m.panics,
		m.httpRequests, m.httpDuration, m.sends, m.ackLatency, m.ready, m.resumes, m.framesOutByKind, delivery)
	// Every label value the server can produce exists from the start, so
	// that rates and alerts see a zero rather than no series: an SLO's
	// error ratio is 0, not missing, while nothing fails, and rate() counts
	// the first failure instead of seeing a series born at 1. (Refusals,
	// by reason, are the clients' doing and stay out of the SLO.)
	for _, transport := range []string{"ws", "rest"} {
		m.ackLatency.WithLabelValues(transport)
		m.sends.WithLabelValues(transport, "acked", "")
		m.sends.WithLabelValues(transport, "failed", "unavailable")
		m.sends.WithLabelValues(transport, "failed", "internal")
	}
	for _, t := range frameTypes {
		m.framesIn.WithLabelValues(t)
	}
	for _, r := range []string{"ok", "bad_request", "forbidden", "unauthorized", "unavailable", "draining", "failed"} {
		m.upgrades.WithLabelValues(r)
	}
	for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, closeLost, closeTooSlow, closeRateLimited} {
		m.disconnects.WithLabelValues(closeCodeLabel(code))
	}
	m.disconnects.WithLabelValues("other")
	for _, l := range limitNames {
		m.limited.WithLabelValues(l)
	}
	m.panics.WithLabelValues("http")
	m.panics.WithLabelValues("ws")
	return m
}
