package chat

import (
	"context"
	"math"
	"sync"
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
// Presence spans the replicas too (see presence.go): each replica tells the
// others who is present in its rooms, with presence events as users come and
// go, and with a roster of each room every RosterInterval and when another
// replica says hello.

// replicaLink is the hub's side of the bus: the work the sync and roster
// loops owe rooms, which Resync and Receive note without waiting for it.
type replicaLink struct {
	bus Bus // nil on a single replica

	mu     sync.Mutex          // guards the sets below
	resync map[string]struct{} // rooms to compare with the store now
	hellos map[string]struct{} // rooms to say hello in
	asked  map[string]struct{} // rooms whose roster another replica asked for

	resyncNow chan struct{} // wakes the sync loop; one pending wake-up covers any number of rooms
}

func newReplicaLink(bus Bus) replicaLink {
	return replicaLink{
		bus:       bus,
		resync:    make(map[string]struct{}),
		hellos:    make(map[string]struct{}),
		asked:     make(map[string]struct{}),
		resyncNow: make(chan struct{}, 1),
	}
}

// owe records that room is owed the work of set.
func (l *replicaLink) owe(set map[string]struct{}, room string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	set[room] = struct{}{}
}

// takeOwed removes and returns up to n rooms of set.
func (l *replicaLink) takeOwed(set map[string]struct{}, n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, min(n, len(set)))
	for room := range set {
		if len(out) == n {
			break
		}
		out = append(out, room)
		delete(set, room)
	}
	return out
}

// catchUpTimeout bounds one catch-up query.
const catchUpTimeout = 5 * time.Second

func (h *Hub) watch(room string) {
	if h.peers.bus != nil {
		h.peers.bus.Watch(room)
	}
}

func (h *Hub) unwatch(room string) {
	if h.peers.bus != nil {
		h.peers.bus.Unwatch(room)
	}
}

func (h *Hub) publish(ev Event) {
	h.publishCtx(context.Background(), ev)
}

// publishCtx publishes ev with the trace of ctx.
func (h *Hub) publishCtx(ctx context.Context, ev Event) {
	if h.peers.bus != nil {
		h.peers.bus.Publish(ctx, ev)
	}
}

// Receive takes an event from another replica; ctx carries the trace of
// its delivery here.
func (h *Hub) Receive(ctx context.Context, ev Event) {
	h.stats.received.Add(1)
	if ev.Kind == EventMessage {
		if ev.Message.Room != ev.Room || ev.Message.Seq < 1 {
			return // not a message of this room: never let it claim a seq
		}
		h.deliverHere(ctx, ev.Message)
		return
	}
	if ev.Kind == EventHello {
		h.peers.owe(h.peers.asked, ev.Room)
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
		r.remotePresence(ev.Origin, ev.User, ev.Online, h.opts.Now())
	case EventTyping:
		r.remoteTyping(ev.User, h.opts.Now())
	case EventRoster:
		r.setRoster(ev.Origin, ev.Users, h.opts.Now())
	}
}

// Resync tells the hub that the bus (re)started its subscription to room and
// may have missed events before: the hub compares the room with the store
// and asks the other replicas for their rosters. It never blocks.
func (h *Hub) Resync(room string) {
	h.stats.resyncs.Add(1)
	h.peers.owe(h.peers.resync, room)
	h.peers.owe(h.peers.hellos, room)
	select {
	case h.peers.resyncNow <- struct{}{}:
	default:
	}
}

// syncLoop compares rooms with the store: the rooms whose subscription
// (re)started as soon as the bus says so, and every room each
// CatchUpInterval, until the hub closes.
func (h *Hub) syncLoop() {
	tick := time.NewTicker(h.opts.CatchUpInterval)
	defer tick.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-h.peers.resyncNow:
			h.catchUp(h.peers.takeOwed(h.peers.resync, math.MaxInt))
		case <-tick.C:
			h.catchUp(h.roomIDs())
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
	ctx, cancel := context.WithTimeout(h.ctx, catchUpTimeout)
	defer cancel()
	seqs, err := h.store.LastSeqs(ctx, ids)
	if err != nil {
		// The next tick tries again; backfills retry on their own.
		h.stats.catchUpFailures.Add(1)
		return
	}
	h.stats.catchUpsOK.Add(1)
	for id, seq := range seqs {
		r := h.lookup(id)
		if r == nil {
			continue
		}
		r.mu.Lock()
		r.learnHighest(seq)
		r.mu.Unlock()
	}
}

// rosterStep is how often the roster loop sends, and rosterBurst the most
// hellos and answers to hellos it sends each time: a replica with thousands
// of rooms spreads them out rather than overflowing the bus's queue, which
// would drop them and messages with them.
const (
	rosterStep  = 100 * time.Millisecond
	rosterBurst = 256
)

// rosterLoop tells the other replicas who is present here: it says hello in
// the rooms whose subscription (re)started, answers their hellos, and sends
// every room's roster once per RosterInterval, spread over the interval.
// It also forgets the rosters of replicas that fell silent. It runs apart
// from syncLoop so that a slow store never holds rosters back, which would
// make this replica's users look gone to the others. Its ticks say when to
// look; the hub's clock says whether a pass is due and which rosters expired.
func (h *Hub) rosterLoop() {
	interval := h.opts.RosterInterval
	step := min(rosterStep, interval/2)
	steps := int(interval / step)
	tick := time.NewTicker(step)
	defer tick.Stop()
	var due []string // rooms whose roster this pass still owes
	quota := 0       // rosters of due to send per step
	next := h.opts.Now()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-tick.C:
		}
		if now := h.opts.Now(); !now.Before(next) {
			next = now.Add(interval)
			due = h.roomIDs()
			quota = (len(due) + steps - 1) / steps
			h.expireRosters(now)
		}
		for _, room := range h.peers.takeOwed(h.peers.hellos, rosterBurst) {
			h.publish(Event{Kind: EventHello, Room: room})
		}
		for _, room := range h.peers.takeOwed(h.peers.asked, rosterBurst) {
			h.sendRoster(room)
		}
		n := min(quota, len(due))
		for _, room := range due[:n] {
			h.sendRoster(room)
		}
		due = due[n:]
	}
}

// sendRoster publishes the users present in room here, if it has members.
func (h *Hub) sendRoster(room string) {
	r := h.lookup(room)
	if r == nil {
		return
	}
	r.mu.Lock()
	ev := r.roster()
	r.mu.Unlock()
	h.publish(ev)
}
