package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/postgres"
	"github.com/parleychat/parley/server/internal/redisbus"
)

// The hub and the bus count their work in plain counters (the domain does
// not import Prometheus); these collectors read them once per scrape.

var (
	hubRoomsDesc   = prometheus.NewDesc("parley_hub_rooms", "Rooms with members on this replica.", nil, nil)
	hubMembersDesc = prometheus.NewDesc("parley_hub_members", "Room memberships on this replica (a connection in two rooms counts twice).", nil, nil)
	backfillsDesc  = prometheus.NewDesc("parley_backfills_total", "Gaps in a room's messages that were read from the store.", nil, nil)
	backfilledDesc = prometheus.NewDesc("parley_backfilled_messages_total", "Messages read from the store by backfills.", nil, nil)
	catchUpsDesc   = prometheus.NewDesc("parley_catchups_total", "Comparisons of this replica's rooms with the store, by result.", []string{"result"}, nil)
	resyncsDesc    = prometheus.NewDesc("parley_resyncs_total", "Room subscriptions the bus started or restarted, each followed by a catch-up.", nil, nil)
	expiredDesc    = prometheus.NewDesc("parley_presence_rosters_expired_total", "Times another replica fell silent about a room and its users were taken offline.", nil, nil)
)

type hubCollector struct{ hub *chat.Hub }

func (c hubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{hubRoomsDesc, hubMembersDesc, backfillsDesc, backfilledDesc, catchUpsDesc, resyncsDesc, expiredDesc} {
		ch <- d
	}
}

func (c hubCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.hub.Stats()
	ch <- prometheus.MustNewConstMetric(hubRoomsDesc, prometheus.GaugeValue, float64(st.Rooms))
	ch <- prometheus.MustNewConstMetric(hubMembersDesc, prometheus.GaugeValue, float64(st.Members))
	ch <- prometheus.MustNewConstMetric(backfillsDesc, prometheus.CounterValue, float64(st.Backfills))
	ch <- prometheus.MustNewConstMetric(backfilledDesc, prometheus.CounterValue, float64(st.Backfilled))
	ch <- prometheus.MustNewConstMetric(catchUpsDesc, prometheus.CounterValue, float64(st.CatchUps), "ok")
	ch <- prometheus.MustNewConstMetric(catchUpsDesc, prometheus.CounterValue, float64(st.CatchUpFailures), "error")
	ch <- prometheus.MustNewConstMetric(resyncsDesc, prometheus.CounterValue, float64(st.ResyncsRequested))
	ch <- prometheus.MustNewConstMetric(expiredDesc, prometheus.CounterValue, float64(st.RostersExpired))
}

var (
	busPublishedDesc  = prometheus.NewDesc("parley_bus_published_total", "Events published to the other replicas.", nil, nil)
	busLostDesc       = prometheus.NewDesc("parley_bus_publish_dropped_total", "Events not published, by reason; catch-up from the store makes up for them.", []string{"reason"}, nil)
	busReceivedDesc   = prometheus.NewDesc("parley_bus_received_total", "Events received from the other replicas.", nil, nil)
	busMalformedDesc  = prometheus.NewDesc("parley_bus_malformed_total", "Payloads on a room channel that could not be decoded.", nil, nil)
	busReconnectsDesc = prometheus.NewDesc("parley_bus_reconnects_total", "Subscription connections to Redis made again after one failed.", nil, nil)
	busChannelsDesc   = prometheus.NewDesc("parley_bus_subscribed_channels", "Room channels this replica is subscribed to, as Redis last confirmed.", nil, nil)
)

type busCollector struct{ bus *redisbus.Bus }

func (c busCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{busPublishedDesc, busLostDesc, busReceivedDesc, busMalformedDesc, busReconnectsDesc, busChannelsDesc} {
		ch <- d
	}
}

func (c busCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.bus.Stats()
	ch <- prometheus.MustNewConstMetric(busPublishedDesc, prometheus.CounterValue, float64(st.Published))
	ch <- prometheus.MustNewConstMetric(busLostDesc, prometheus.CounterValue, float64(st.PublishErrors), "error")
	ch <- prometheus.MustNewConstMetric(busLostDesc, prometheus.CounterValue, float64(st.Dropped), "queue_full")
	ch <- prometheus.MustNewConstMetric(busReceivedDesc, prometheus.CounterValue, float64(st.Received))
	ch <- prometheus.MustNewConstMetric(busMalformedDesc, prometheus.CounterValue, float64(st.Malformed))
	ch <- prometheus.MustNewConstMetric(busReconnectsDesc, prometheus.CounterValue, float64(st.Reconnects))
	ch <- prometheus.MustNewConstMetric(busChannelsDesc, prometheus.GaugeValue, float64(st.Subscribed))
}

// serverMetrics are series the composition root records itself, through
// hooks it hands the adapters.
type serverMetrics struct {
	reg         prometheus.Registerer
	busLag      prometheus.Histogram
	commitBatch prometheus.Histogram
}

func newServerMetrics(reg prometheus.Registerer) *serverMetrics {
	m := &serverMetrics{
		reg: reg,
		busLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "parley_bus_lag_seconds",
			Help:    "Time from a message's arrival at the sender's replica to its receipt from Redis here (includes the replicas' clock difference).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		commitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "parley_store_commit_batch_size",
			Help:    "Messages stored by each group commit of the PostgreSQL writers.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
	}
	reg.MustRegister(m.busLag, m.commitBatch)
	return m
}

// watchPool exports the PostgreSQL connection pool's state.
func (m *serverMetrics) watchPool(s *postgres.Store) {
	m.reg.MustRegister(poolCollector{s})
}

var (
	poolConnsDesc    = prometheus.NewDesc("parley_db_pool_connections", "PostgreSQL pool connections by state (idle, acquired, constructing).", []string{"state"}, nil)
	poolMaxDesc      = prometheus.NewDesc("parley_db_pool_max_connections", "The PostgreSQL pool's size limit.", nil, nil)
	poolAcquiresDesc = prometheus.NewDesc("parley_db_pool_acquires_total", "Connections acquired from the pool.", nil, nil)
	poolWaitsDesc    = prometheus.NewDesc("parley_db_pool_empty_acquires_total", "Acquires that had to wait because the pool had no idle connection.", nil, nil)
	poolWaitDesc     = prometheus.NewDesc("parley_db_pool_acquire_wait_seconds_total", "Time spent waiting for pool connections.", nil, nil)
)

type poolCollector struct{ s *postgres.Store }

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolConnsDesc, poolMaxDesc, poolAcquiresDesc, poolWaitsDesc, poolWaitDesc} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.PoolStat()
	ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, float64(st.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, float64(st.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, float64(st.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(poolMaxDesc, prometheus.GaugeValue, float64(st.MaxConns()))
	ch <- prometheus.MustNewConstMetric(poolAcquiresDesc, prometheus.CounterValue, float64(st.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWaitsDesc, prometheus.CounterValue, float64(st.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWaitDesc, prometheus.CounterValue, st.AcquireDuration().Seconds())
}
