package instrument

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PoolStat is what the pool's series read of a *pgxpool.Stat (which
// postgres.Store.PoolStat returns).
type PoolStat interface {
	IdleConns() int32
	AcquiredConns() int32
	ConstructingConns() int32
	MaxConns() int32
	AcquireCount() int64
	EmptyAcquireCount() int64
	AcquireDuration() time.Duration
}

// Pool registers with reg the series of the PostgreSQL connection pool's
// state, read once per scrape.
func Pool(reg prometheus.Registerer, stat func() PoolStat) {
	reg.MustRegister(poolCollector{
		stat:     stat,
		conns:    prometheus.NewDesc("parley_db_pool_connections", "PostgreSQL pool connections by state (idle, acquired, constructing).", []string{"state"}, nil),
		max:      prometheus.NewDesc("parley_db_pool_max_connections", "The PostgreSQL pool's size limit.", nil, nil),
		acquires: prometheus.NewDesc("parley_db_pool_acquires_total", "Connections acquired from the pool.", nil, nil),
		waits:    prometheus.NewDesc("parley_db_pool_empty_acquires_total", "Acquires that had to wait because the pool had no idle connection.", nil, nil),
		wait:     prometheus.NewDesc("parley_db_pool_acquire_wait_seconds_total", "Time spent waiting for pool connections.", nil, nil),
	})
}

type poolCollector struct {
	stat                              func() PoolStat
	conns, max, acquires, waits, wait *prometheus.Desc
}

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.conns, c.max, c.acquires, c.waits, c.wait} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stat()
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(st.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(st.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(st.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(c.max, prometheus.GaugeValue, float64(st.MaxConns()))
	ch <- prometheus.MustNewConstMetric(c.acquires, prometheus.CounterValue, float64(st.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(st.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.wait, prometheus.CounterValue, st.AcquireDuration().Seconds())
}

// CommitBatches registers parley_store_commit_batch_size with reg and
// returns the hook that records into it: postgres.Options.OnBatch. It is
// registered whatever the store, so that dashboards see an empty histogram
// rather than none.
func CommitBatches(reg prometheus.Registerer) func(size int) {
	batch := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "parley_store_commit_batch_size",
		Help:    "Messages stored by each group commit of the PostgreSQL writers.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
	})
	reg.MustRegister(batch)
	return func(size int) { batch.Observe(float64(size)) }
}
