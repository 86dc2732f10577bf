package chat

import (
	"sync/atomic"
)

// HubStats counts the hub's work for the cross-replica path and its size.
type HubStats struct {
	Rooms   int // rooms with members here
	Members int // memberships here (a connection in two rooms counts twice)

	Backfills        int64 // gaps read from the store
	Backfilled       int64 // messages read by backfills
	CatchUps         int64 // comparisons of rooms with the store that succeeded
	CatchUpFailures  int64 // and those that failed
	EventsReceived   int64 // events from other replicas
	RostersExpired   int64 // replicas taken to be gone from a room
	ResyncsRequested int64 // subscriptions (re)started by the bus
}

type hubCounters struct {
	backfills, backfilled, catchUpsOK, catchUpFailures atomic.Int64
	received, expired, resyncs                         atomic.Int64
}

// Stats reads the hub's counters and counts its rooms and members.
func (h *Hub) Stats() HubStats {
	st := HubStats{
		Backfills:        h.stats.backfills.Load(),
		Backfilled:       h.stats.backfilled.Load(),
		CatchUps:         h.stats.catchUpsOK.Load(),
		CatchUpFailures:  h.stats.catchUpFailures.Load(),
		EventsReceived:   h.stats.received.Load(),
		RostersExpired:   h.stats.expired.Load(),
		ResyncsRequested: h.stats.resyncs.Load(),
	}
	for _, r := range h.rooms() {
		r.mu.Lock()
		st.Members += len(r.members)
		r.mu.Unlock()
		st.Rooms++
	}
	return st
}
