package instrument_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/instrument"
	"github.com/parleychat/parley/server/internal/redisbus"
)

func TestHubSeriesReadTheHubsStatsAtEachScrape(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	stats := chat.HubStats{
		Rooms: 1, Members: 2, Backfills: 3, Backfilled: 4, CatchUps: 5, CatchUpFailures: 6,
		EventsReceived: 7, RostersExpired: 8, ResyncsRequested: 9,
	}
	instrument.Hub(reg, func() chat.HubStats { return stats })

	want := map[string]float64{
		"parley_hub_rooms":                      1,
		"parley_hub_members":                    2,
		"parley_backfills_total":                3,
		"parley_backfilled_messages_total":      4,
		`parley_catchups_total{result="ok"}`:    5,
		`parley_catchups_total{result="error"}`: 6,
		"parley_presence_rosters_expired_total": 8,
		"parley_resyncs_total":                  9,
	}
	wantSeries(t, reg, want)

	stats.Rooms, stats.CatchUpFailures = 10, 60
	want["parley_hub_rooms"], want[`parley_catchups_total{result="error"}`] = 10, 60
	wantSeries(t, reg, want)
}

func TestBusSeriesReadTheBussStats(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	instrument.Bus(reg, func() redisbus.Stats {
		return redisbus.Stats{Published: 1, PublishErrors: 2, Dropped: 3, Received: 4, Malformed: 5, Reconnects: 6, Subscribed: 7}
	})
	wantSeries(t, reg, map[string]float64{
		"parley_bus_published_total":                            1,
		`parley_bus_publish_dropped_total{reason="error"}`:      2,
		`parley_bus_publish_dropped_total{reason="queue_full"}`: 3,
		"parley_bus_received_total":                             4,
		"parley_bus_malformed_total":                            5,
		"parley_bus_reconnects_total":                           6,
		"parley_bus_subscribed_channels":                        7,
	})
}

func TestPoolSeriesReadThePoolsStat(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	instrument.Pool(reg, func() instrument.PoolStat {
		return poolStat{idle: 1, acquired: 2, constructing: 3, max: 4, acquires: 5, emptyAcquires: 6, wait: 1500 * time.Millisecond}
	})
	wantSeries(t, reg, map[string]float64{
		`parley_db_pool_connections{state="idle"}`:         1,
		`parley_db_pool_connections{state="acquired"}`:     2,
		`parley_db_pool_connections{state="constructing"}`: 3,
		"parley_db_pool_max_connections":                   4,
		"parley_db_pool_acquires_total":                    5,
		"parley_db_pool_empty_acquires_total":              6,
		"parley_db_pool_acquire_wait_seconds_total":        1.5,
	})
}

func TestHookHistogramsExistEmptyAndRecordWhatTheyAreTold(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	lag := instrument.BusLag(reg)
	batch := instrument.CommitBatches(reg)
	wantSeries(t, reg, map[string]float64{
		"parley_bus_lag_seconds_count": 0, "parley_bus_lag_seconds_sum": 0,
		"parley_store_commit_batch_size_count": 0, "parley_store_commit_batch_size_sum": 0,
	})

	lag(250 * time.Millisecond)
	lag(time.Second)
	batch(8)
	wantSeries(t, reg, map[string]float64{
		"parley_bus_lag_seconds_count": 2, "parley_bus_lag_seconds_sum": 1.25,
		"parley_store_commit_batch_size_count": 1, "parley_store_commit_batch_size_sum": 8,
	})
}

// poolStat is a pool's state as pgxpool.Stat reports it.
type poolStat struct {
	idle, acquired, constructing, max int32
	acquires, emptyAcquires           int64
	wait                              time.Duration
}

func (s poolStat) IdleConns() int32               { return s.idle }
func (s poolStat) AcquiredConns() int32           { return s.acquired }
func (s poolStat) ConstructingConns() int32       { return s.constructing }
func (s poolStat) MaxConns() int32                { return s.max }
func (s poolStat) AcquireCount() int64            { return s.acquires }
func (s poolStat) EmptyAcquireCount() int64       { return s.emptyAcquires }
func (s poolStat) AcquireDuration() time.Duration { return s.wait }
