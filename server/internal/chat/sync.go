package chat

import (
	"context"
	"sync/atomic"
	"time"
)

// This file holds the hub's side of running several replicas. A message is
// stored, delivered to the members on the sender's replica, and published
// once to the bus; the other replicas deliver it through the same path as
// their own messages, which puts each room's messages in seq order and drops
// repeats. Whatever the bus loses, the store still has: a seq that arrives
// after a gap makes the hub read the gap from the store, and two kinds of
// catch-up find losses that no later message reveals:
//
//   - when the bus (re)starts a room's subscription, it calls Resync, and the
//     hub compares the room with the store right away;
//   - every CatchUpInterval the hub compares all its rooms with the store, in
//     one query. This covers a publisher that failed or died between storing
//     and publishing while the subscribers' own connections stayed up.
//
// Presence is the union of the users connected here and the rosters of the
// other replicas. Rosters come and go with presence events, are refreshed
// every RosterInterval, and expire when a replica falls silent, so a
// replica's crash does not leave its users online.

// catchUpTimeout bounds one catch-up query.
const catchUpTimeout = 5 * time.Second

// rosterTTL is how many roster intervals a replica may stay silent before its
// users are taken offline.
const rosterTTL = 3

// roster is what the hub knows about a room on another replica.
type roster struct {
	users map[string]User // by user id
	seen  time.Time       // when the replica last spoke about the room
}

// HubStats counts the hub's work for the cross-replica path and its size.
type HubStats struct {
	Rooms   int // rooms with members here
	Members int // memberships here (a connection in two rooms counts twice)

	Backfills        int64 // gaps read from the store
	Backfilled       int64 // messages read by backfills
	CatchUps         int64 // comparisons of rooms with the store
	CatchUpFailures  int64 // of which the store failed
	EventsReceived   int64 // events from other replicas
	RostersExpired   int64 // replicas taken to be gone from a room
	ResyncsRequested int64 // subscriptions (re)started by the bus
}

type hubCounters struct {
	backfills, backfilled, catchUps, catchUpFailures atomic.Int64
	received, expired, resyncs                       atomic.Int64
}

// Stats reads the hub's counters and counts its rooms and members.
func (h *Hub) Stats() HubStats {
	st := HubStats{
		Backfills:        h.stats.backfills.Load(),
		Backfilled:       h.stats.backfilled.Load(),
		CatchUps:         h.stats.catchUps.Load(),
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

func (h *Hub) watch(room string) {
	if h.bus != nil {
		h.bus.Watch(room)
	}
}

func (h *Hub) unwatch(room string) {
	if h.bus != nil {
		h.bus.Unwatch(room)
	}
}

func (h *Hub) publish(ev Event) {
	if h.bus != nil {
		h.bus.Publish(ev)
	}
}

// Receive takes an event from another replica.
func (h *Hub) Receive(ev Event) {
	h.stats.received.Add(1)
	if ev.Kind == EventMessage {
		h.deliverHere(ev.Message)
		return
	}
	r := h.lookup(ev.Room)
	if r == nil {
		return // no members here
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev.Kind {
	case EventPresence:
		r.remotePresence(ev.Origin, ev.User, ev.Online, time.Now())
	case EventTyping:
		r.typing(ev.User)
	case EventRoster:
		r.setRoster(ev.Origin, ev.Users, time.Now())
	case EventHello:
		h.publish(r.roster())
	}
}

// Resync tells the hub that the bus (re)started its subscription to room and
// may have missed events before: the hub compares the room with the store
// and asks the other replicas for their rosters. It never blocks.
func (h *Hub) Resync(room string) {
	h.stats.resyncs.Add(1)
	h.resyncMu.Lock()
	h.resync[room] = struct{}{}
	h.resyncMu.Unlock()
	select {
	case h.resyncNow <- struct{}{}:
	default:
	}
}

// keepInSync is the loop of a hub with a bus: it answers resyncs, catches up
// with the store and exchanges rosters, until the hub closes.
func (h *Hub) keepInSync() {
	catchUp := time.NewTicker(h.opts.CatchUpInterval)
	defer catchUp.Stop()
	rosters := time.NewTicker(h.opts.RosterInterval)
	defer rosters.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-h.resyncNow:
			h.resyncMu.Lock()
			rooms := make([]string, 0, len(h.resync))
			for id := range h.resync {
				rooms = append(rooms, id)
			}
			clear(h.resync)
			h.resyncMu.Unlock()
			for _, id := range rooms {
				h.publish(Event{Kind: EventHello, Room: id})
			}
			h.catchUp(rooms)
		case <-catchUp.C:
			rooms := h.rooms()
			ids := make([]string, len(rooms))
			for i, r := range rooms {
				ids[i] = r.id
			}
			h.catchUp(ids)
		case now := <-rosters.C:
			h.exchangeRosters(now)
		}
	}
}

// catchUp reads the newest seq of each room from the store. A room that is
// behind treats it like a message that arrived ahead of a gap: unless the
// broker brings the missing messages within GapWait, they are backfilled.
func (h *Hub) catchUp(ids []string) {
	if len(ids) == 0 {
		return
	}
	h.stats.catchUps.Add(1)
	ctx, cancel := context.WithTimeout(h.ctx, catchUpTimeout)
	defer cancel()
	seqs, err := h.store.LastSeqs(ctx, ids)
	if err != nil {
		// The next tick tries again; backfills retry on their own.
		h.stats.catchUpFailures.Add(1)
		return
	}
	for id, seq := range seqs {
		r := h.lookup(id)
		if r == nil {
			continue
		}
		r.mu.Lock()
		if seq > r.highest {
			r.highest = seq
			if r.loaded {
				r.drain()
			}
		}
		r.mu.Unlock()
	}
}

// exchangeRosters sends this replica's roster of every room to the others
// and forgets the rosters of replicas that fell silent.
func (h *Hub) exchangeRosters(now time.Time) {
	deadline := now.Add(-rosterTTL * h.opts.RosterInterval)
	for _, r := range h.rooms() {
		r.mu.Lock()
		h.publish(r.roster())
		for origin, ro := range r.remote {
			if ro.seen.Before(deadline) {
				h.stats.expired.Add(1)
				r.setRoster(origin, nil, now)
			}
		}
		r.mu.Unlock()
	}
}

// rooms lists the rooms with members (or joins in progress) here.
func (h *Hub) rooms() []*room {
	var out []*room
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		for _, r := range s.rooms {
			out = append(out, r)
		}
		s.mu.Unlock()
	}
	return out
}

// roster is the event listing the users present here. r.mu is held.
func (r *room) roster() Event {
	users := make([]User, 0, len(r.present))
	for _, p := range r.present {
		users = append(users, p.user)
	}
	return Event{Kind: EventRoster, Room: r.id, Users: users}
}

// online reports whether the user is present here or on another replica.
// r.mu is held.
func (r *room) online(userID string) bool {
	if r.present[userID] != nil {
		return true
	}
	for _, ro := range r.remote {
		if _, ok := ro.users[userID]; ok {
			return true
		}
	}
	return false
}

// remotePresence records a user's arrival on or departure from another
// replica, and tells the members here if the room gained or lost the user.
// r.mu is held.
func (r *room) remotePresence(origin string, u User, online bool, now time.Time) {
	ro := r.remote[origin]
	if ro == nil {
		if !online {
			return
		}
		ro = &roster{users: make(map[string]User)}
		r.remote[origin] = ro
	}
	ro.seen = now
	was := r.online(u.ID)
	if online {
		ro.users[u.ID] = u
	} else {
		delete(ro.users, u.ID)
	}
	r.announcePresence(u, was)
}

// setRoster replaces what the hub knows of the room on another replica; no
// users forgets the replica. Members here hear of every user the room gained
// or lost by it. r.mu is held.
func (r *room) setRoster(origin string, users []User, now time.Time) {
	old := r.remote[origin]
	next := &roster{users: make(map[string]User, len(users)), seen: now}
	for _, u := range users {
		next.users[u.ID] = u
	}
	// Who was online before the change, among the users it touches.
	was := make(map[string]bool, len(users))
	for _, u := range users {
		was[u.ID] = r.online(u.ID)
	}
	if old != nil {
		for id := range old.users {
			was[id] = r.online(id)
		}
	}
	if len(users) == 0 {
		delete(r.remote, origin)
	} else {
		r.remote[origin] = next
	}
	for _, u := range users {
		r.announcePresence(u, was[u.ID])
	}
	if old != nil {
		for id, u := range old.users {
			if _, still := next.users[id]; !still {
				r.announcePresence(u, was[id])
			}
		}
	}
}

// announcePresence tells the members here that u came online or went
// offline, if that changed since was. r.mu is held.
func (r *room) announcePresence(u User, was bool) {
	if now := r.online(u.ID); now != was {
		r.broadcast(r.hub.codec.Presence(r.id, u, now), nil)
	}
}
