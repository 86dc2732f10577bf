package probe

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Paths a probe can take: whether its two connections were served by one
// replica or by two, or unknown when it failed before both knew theirs.
const (
	PathSame    = "same_replica"
	PathCross   = "cross_replica"
	PathUnknown = "unknown"
)

// Steps a probe can fail at, in the order it takes them.
const (
	StepLogin   = "login"
	StepConnect = "connect"
	StepJoin    = "join"
	StepSend    = "send"
	StepAck     = "ack"
	StepReceive = "receive"
)

var (
	paths = []string{PathSame, PathCross, PathUnknown}
	steps = []string{StepLogin, StepConnect, StepJoin, StepSend, StepAck, StepReceive}
)

// latencyBuckets bound the end-to-end latency: 1 s is the canary SLO's
// threshold (alerts/slos.yaml), 10 s the longest a probe waits by default.
var latencyBuckets = []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Metrics are the canary's parley_canary_* series. It is one collector
// whose scrape and whose record of a probe exclude each other, so that
// every scrape sees probes = failures + successes: a probe is counted
// once, at its end, with its failure or its latency.
type Metrics struct {
	mu          sync.Mutex
	probes      *prometheus.CounterVec
	failures    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	lastSuccess prometheus.Gauge
	logins      *prometheus.CounterVec
}

// NewMetrics registers the series with reg, every label value at zero
// from the start. The last-success gauge starts at started: a canary that
// has never succeeded has not succeeded since it started.
func NewMetrics(reg prometheus.Registerer, started float64) *Metrics {
	m := &Metrics{
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_canary_probes_total",
			Help: "Probes finished, successful or not, by path (same_replica, cross_replica, or unknown when the probe failed before both connections knew their replica).",
		}, []string{"path"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_canary_failures_total",
			Help: "Failed probes by the step that failed: login, connect, join, send, ack, receive.",
		}, []string{"step"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "parley_canary_latency_seconds",
			Help:    "Successful probes: time from just before the send to the message's receipt on the second connection, by path; exemplars carry trace ids.",
			Buckets: latencyBuckets,
		}, []string{"path"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_canary_last_success_timestamp_seconds",
			Help: "Unix time of the last successful probe (the canary's start time until the first).",
		}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_canary_logins_total",
			Help: "Sign-ins of the canary user by result (ok, failed); rare, as a token is reused until it nears expiry.",
		}, []string{"result"}),
	}
	for _, p := range paths {
		m.probes.WithLabelValues(p)
		m.latency.WithLabelValues(p)
	}
	for _, s := range steps {
		m.failures.WithLabelValues(s)
	}
	m.logins.WithLabelValues("ok")
	m.logins.WithLabelValues("failed")
	m.lastSuccess.Set(started)
	reg.MustRegister(m)
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.probes.Describe(ch)
	m.failures.Describe(ch)
	m.latency.Describe(ch)
	m.lastSuccess.Describe(ch)
	m.logins.Describe(ch)
}

// Collect implements prometheus.Collector. It hands over snapshots taken
// under the lock that record holds: a registry reads a collected metric's
// value only later (Write), so handing over the live counters would let a
// probe finish between reading probes and failures, and a scrape could
// show more failures than probes.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	live := make(chan prometheus.Metric)
	var snapshots []prometheus.Metric
	written := make(chan struct{})
	go func() {
		defer close(written)
		for metric := range live {
			s := &snapshot{desc: metric.Desc()}
			if err := metric.Write(&s.value); err != nil {
				snapshots = append(snapshots, prometheus.NewInvalidMetric(metric.Desc(), err))
				continue
			}
			snapshots = append(snapshots, s)
		}
	}()
	m.mu.Lock()
	m.probes.Collect(live)
	m.failures.Collect(live)
	m.latency.Collect(live)
	m.lastSuccess.Collect(live)
	m.logins.Collect(live)
	close(live)
	<-written
	m.mu.Unlock()
	for _, s := range snapshots {
		ch <- s
	}
}

// snapshot is a metric's value as written at one moment.
type snapshot struct {
	desc  *prometheus.Desc
	value dto.Metric
}

func (s *snapshot) Desc() *prometheus.Desc { return s.desc }

func (s *snapshot) Write(out *dto.Metric) error {
	out.Label = s.value.Label
	out.Counter = s.value.Counter
	out.Gauge = s.value.Gauge
	out.Histogram = s.value.Histogram
	out.TimestampMs = s.value.TimestampMs
	return nil
}

// record counts a finished probe.
func (m *Metrics) record(r Result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.probes.WithLabelValues(r.Path).Inc()
	if r.Step != "" {
		m.failures.WithLabelValues(r.Step).Inc()
		return
	}
	obs := m.latency.WithLabelValues(r.Path)
	if eo, ok := obs.(prometheus.ExemplarObserver); ok && r.TraceID != "" {
		eo.ObserveWithExemplar(r.Latency.Seconds(), prometheus.Labels{"trace_id": r.TraceID})
	} else {
		obs.Observe(r.Latency.Seconds())
	}
	m.lastSuccess.Set(float64(r.End.UnixNano()) / 1e9)
}

// login counts a sign-in.
func (m *Metrics) login(ok bool) {
	result := "ok"
	if !ok {
		result = "failed"
	}
	m.logins.WithLabelValues(result).Inc()
}
