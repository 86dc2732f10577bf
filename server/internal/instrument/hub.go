package instrument

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley/server/internal/chat"
)

// Hub registers with reg the series of the hub's Stats, read once per
// scrape.
func Hub(reg prometheus.Registerer, stats func() chat.HubStats) {
	reg.MustRegister(hubCollector{
		stats:      stats,
		rooms:      prometheus.NewDesc("parley_hub_rooms", "Rooms with members on this replica.", nil, nil),
		members:    prometheus.NewDesc("parley_hub_members", "Room memberships on this replica (a connection in two rooms counts twice).", nil, nil),
		backfills:  prometheus.NewDesc("parley_backfills_total", "Gaps in a room's messages that were read from the store.", nil, nil),
		backfilled: prometheus.NewDesc("parley_backfilled_messages_total", "Messages read from the store by backfills.", nil, nil),
		catchUps:   prometheus.NewDesc("parley_catchups_total", "Comparisons of this replica's rooms with the store, by result.", []string{"result"}, nil),
		resyncs:    prometheus.NewDesc("parley_resyncs_total", "Room subscriptions the bus started or restarted, each followed by a catch-up.", nil, nil),
		expired:    prometheus.NewDesc("parley_presence_rosters_expired_total", "Times another replica fell silent about a room and its users were taken offline.", nil, nil),
	})
}

type hubCollector struct {
	stats                                                             func() chat.HubStats
	rooms, members, backfills, backfilled, catchUps, resyncs, expired *prometheus.Desc
}

func (c hubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.rooms, c.members, c.backfills, c.backfilled, c.catchUps, c.resyncs, c.expired} {
		ch <- d
	}
}

func (c hubCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(c.rooms, prometheus.GaugeValue, float64(st.Rooms))
	ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(st.Members))
	ch <- prometheus.MustNewConstMetric(c.backfills, prometheus.CounterValue, float64(st.Backfills))
	ch <- prometheus.MustNewConstMetric(c.backfilled, prometheus.CounterValue, float64(st.Backfilled))
	ch <- prometheus.MustNewConstMetric(c.catchUps, prometheus.CounterValue, float64(st.CatchUps), "ok")
	ch <- prometheus.MustNewConstMetric(c.catchUps, prometheus.CounterValue, float64(st.CatchUpFailures), "error")
	ch <- prometheus.MustNewConstMetric(c.resyncs, prometheus.CounterValue, float64(st.ResyncsRequested))
	ch <- prometheus.MustNewConstMetric(c.expired, prometheus.CounterValue, float64(st.RostersExpired))
}
