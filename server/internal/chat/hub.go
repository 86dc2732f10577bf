package chat

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

// Frame is an encoded frame on its way to a subscriber.
type Frame struct {
	Data []byte
	// Kind names the frame for metrics: message, joined, presence, typing.
	Kind string
	// Arrived is when a live message arrived at the server that stored it
	// (its timestamp), so that the transport can time its delivery. It is
	// zero for other frames and for history replayed on request.
	Arrived time.Time
	// Ctx carries the delivery's trace for a live message (nil for other
	// frames): the hub passes it on without looking inside.
	Ctx context.Context
}

// Subscriber is one connection's side of the hub: a bounded queue of encoded
// frames on their way to the client. The hub never waits on a subscriber: it
// offers, and when the queue is full it gives up on the subscriber. The hub
// calls Offer and Slow with a room's lock held: they must return promptly and
// must not call back into the hub.
type Subscriber interface {
	// Offer queues frame without blocking and reports whether it fit.
	Offer(frame Frame) bool
	// Push queues frame, waiting while the queue is full, until ctx ends.
	// The hub uses it only to replay history that the subscriber asked for.
	Push(ctx context.Context, frame Frame) error
	// Slow tells the subscriber that it fell behind and was dropped from a
	// room. It must disconnect (close 4008) and accept nothing more, so that
	// its client sees a disconnect rather than a gap.
	Slow()
}

// Codec encodes frames for subscribers. The hub calls Message once per
// message and room and hands the same bytes to every member.
type Codec interface {
	Message(m Message) []byte
	Joined(room string, lastSeq int64, members []User) []byte
	Presence(room string, u User, online bool) []byte
	Typing(room string, u User) []byte
}

// HubOptions tunes the hub; zero values take the defaults.
type HubOptions struct {
	// GapWait is how long a message that arrived ahead of its predecessor
	// waits for it before the hub backfills the gap from the store.
	GapWait time.Duration // default 200ms
	// MaxHeld bounds the live frames held for a member while its history
	// replays; a member that needs more is too slow.
	MaxHeld int // default 4096
	// ReplayPage is the page size used to read history for replays and
	// backfills.
	ReplayPage int // default 500

	// Bus connects the hub to the other replicas; nil runs a single replica.
	Bus Bus
	// CatchUpInterval is how often a hub with a bus compares its rooms with
	// the store, to deliver messages whose broker event was lost.
	CatchUpInterval time.Duration // default 2s
	// RosterInterval is how often a hub with a bus tells the others who is
	// present in its rooms. A replica silent for three intervals is taken
	// to be gone and its users offline.
	RosterInterval time.Duration // default 5s
}

// maxPending bounds the out-of-order messages a room keeps while waiting for
// a gap to close. Past it the hub keeps only the highest seq it has seen and
// reads everything from the store, which holds every message it could drop.
const maxPending = 1024

const hubShards = 64

// Hub keeps the rooms that have members on this server, delivers each room's
// messages to them in seq order without gaps or duplicates, and tracks who is
// present. Rooms live in shards so that unrelated rooms never share a lock.
type Hub struct {
	store Store
	codec Codec
	opts  HubOptions
	seed  maphash.Seed

	shards [hubShards]shard

	// bus and the state below serve cross-replica delivery; see sync.go.
	bus       Bus
	oweMu     sync.Mutex
	resync    map[string]struct{} // rooms to compare with the store now
	hellos    map[string]struct{} // rooms to say hello in
	asked     map[string]struct{} // rooms whose roster another replica asked for
	resyncNow chan struct{}
	stats     hubCounters

	// Backfills and the sync loop run in goroutines owned by the hub: ctx
	// stops them and wg waits for them in Close.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type shard struct {
	mu    sync.Mutex
	rooms map[string]*room
}

// NewHub returns a hub that reads room state and missed messages from store.
func NewHub(store Store, codec Codec, opts HubOptions) *Hub {
	if opts.GapWait <= 0 {
		opts.GapWait = 200 * time.Millisecond
	}
	if opts.MaxHeld <= 0 {
		opts.MaxHeld = 4096
	}
	if opts.ReplayPage <= 0 {
		opts.ReplayPage = 500
	}
	if opts.CatchUpInterval <= 0 {
		opts.CatchUpInterval = 2 * time.Second
	}
	if opts.RosterInterval <= 0 {
		opts.RosterInterval = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{
		store: store, codec: codec, opts: opts, bus: opts.Bus, seed: maphash.MakeSeed(),
		ctx: ctx, cancel: cancel,
		resync: make(map[string]struct{}), hellos: make(map[string]struct{}), asked: make(map[string]struct{}),
		resyncNow: make(chan struct{}, 1),
	}
	for i := range h.shards {
		h.shards[i].rooms = make(map[string]*room)
	}
	if h.bus != nil {
		h.wg.Go(h.syncLoop)
		h.wg.Go(h.rosterLoop)
	}
	return h
}

// Close stops backfills and waits for them. Members are not notified: their
// connections are closed by their owners.
func (h *Hub) Close() {
	h.cancel()
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		for _, r := range s.rooms {
			r.mu.Lock()
			r.stopTimer()
			r.mu.Unlock()
		}
		s.mu.Unlock()
	}
	h.wg.Wait()
}

// room is a room with members on this server.
type room struct {
	id  string
	hub *Hub

	refs int // members and joins in progress; guarded by the shard's lock

	ready   chan struct{} // closed once last is known (or loading failed)
	loadErr error         // set before ready is closed

	mu          sync.Mutex
	loaded      bool
	last        int64 // seq of the newest message delivered to members
	highest     int64 // newest seq known to exist, delivered or not
	pending     map[int64]pendingMessage
	members     map[Subscriber]*member
	present     map[string]*presence // connected here, by user id
	remote      map[string]*roster   // present on other replicas, by replica
	gapTimer    *time.Timer
	timerGen    uint64
	backfilling bool
}

type member struct {
	sub  Subscriber
	user User
	// floor is the since the member joined with: it has every seq up to it,
	// so live messages at or below it are not sent again.
	floor int64
	// While replaying, live frames are held here so they follow the replayed
	// history instead of overtaking it.
	replaying bool
	held      []Frame
	dropped   bool
}

type presence struct {
	user  User
	conns int
}

func (h *Hub) shardOf(roomID string) *shard {
	return &h.shards[maphash.String(h.seed, roomID)%hubShards]
}

// acquire returns the room, creating it if needed, and counts a reference.
func (h *Hub) acquire(roomID string) (r *room, created bool) {
	s := h.shardOf(roomID)
	s.mu.Lock()
	defer s.mu.Unlock()
	r = s.rooms[roomID]
	if r == nil {
		r = &room{
			id:      roomID,
			hub:     h,
			ready:   make(chan struct{}),
			pending: make(map[int64]pendingMessage),
			members: make(map[Subscriber]*member),
			present: make(map[string]*presence),
			remote:  make(map[string]*roster),
		}
		s.rooms[roomID] = r
		created = true
		h.watch(roomID)
	}
	r.refs++
	return r, created
}

// release drops a reference; the last one removes the room.
func (h *Hub) release(r *room) {
	s := h.shardOf(r.id)
	s.mu.Lock()
	defer s.mu.Unlock()
	r.refs--
	if r.refs == 0 {
		if s.rooms[r.id] == r {
			delete(s.rooms, r.id)
			h.unwatch(r.id)
		}
		r.mu.Lock()
		r.stopTimer()
		r.mu.Unlock()
	}
}

func (h *Hub) lookup(roomID string) *room {
	s := h.shardOf(roomID)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms[roomID]
}

// loadTimeout bounds reading a room's state when its first member joins.
const loadTimeout = 10 * time.Second

// load reads the room's newest seq from the store. Messages delivered while
// it runs wait in pending and are sorted out once last is known. It runs on
// the hub's context, not the joiner's: other joiners wait for its result,
// and one client giving up must not fail them all.
func (r *room) load() error {
	ctx, cancel := context.WithTimeout(r.hub.ctx, loadTimeout)
	defer cancel()
	info, err := r.hub.store.Room(ctx, r.id)
	if err != nil {
		// Forgotten before ready closes, so that later joiners create a
		// fresh room instead of finding this failed one.
		r.hub.forget(r)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	defer close(r.ready)
	if err != nil {
		r.loadErr = err
		return err
	}
	r.loaded = true
	r.last = info.LastSeq
	r.highest = max(r.highest, r.last)
	r.drain()
	return nil
}

// ErrReplayFailed marks a Join that failed after its joined frame was sent,
// while replaying history. The subscriber is no longer a member, but its
// client was told it is: the transport must disconnect it so that it
// resumes with since.
var ErrReplayFailed = errors.New("replay failed")

// maxListedMembers bounds the members listed in a joined frame: the list is
// built under the room's lock, and a reconnect storm in a huge room must not
// cost the square of its size.
const maxListedMembers = 500

// Join adds sub to the room as user. The subscriber first gets the joined
// frame, then, when since is set, every stored message with seq > since,
// then live messages, with no gap and no duplicate between them.
func (h *Hub) Join(ctx context.Context, roomID string, sub Subscriber, user User, since *int64) error {
	r, created := h.acquire(roomID)
	if created {
		if err := r.load(); err != nil {
			return err
		}
	} else {
		select {
		case <-r.ready:
		case <-ctx.Done():
			h.release(r)
			return ctx.Err()
		}
		if r.loadErr != nil {
			h.release(r)
			return r.loadErr
		}
	}

	m, joinedAt, err := r.register(sub, user, since)
	if err != nil {
		h.release(r)
		return err
	}
	if !m.replaying {
		return nil
	}
	if err := h.replay(ctx, roomID, sub, *since, joinedAt); err != nil {
		h.Leave(roomID, sub)
		return fmt.Errorf("%w: %w", ErrReplayFailed, err)
	}
	if err := r.flushHeld(ctx, m); err != nil {
		h.Leave(roomID, sub)
		return fmt.Errorf("%w: %w", ErrReplayFailed, err)
	}
	return nil
}

// register adds the member, announces it, and queues its joined frame, all
// under the room's lock so that no live frame can come between.
func (r *room) register(sub Subscriber, user User, since *int64) (*member, int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.members[sub]; ok {
		return nil, 0, Errorf(ErrConflict, "already joined this room")
	}
	m := &member{sub: sub, user: user}
	if since != nil {
		m.floor = *since
	}
	r.members[sub] = m
	p := r.present[user.ID]
	if p == nil {
		if !r.online(user.ID) {
			r.broadcast(Frame{Data: r.hub.codec.Presence(r.id, user, true), Kind: "presence"}, sub)
		}
		p = &presence{user: user}
		r.present[user.ID] = p
		r.hub.publish(Event{Kind: EventPresence, Room: r.id, User: user, Online: true})
	}
	p.conns++
	r.offer(m, Frame{Data: r.hub.codec.Joined(r.id, r.last, r.users(maxListedMembers)), Kind: "joined"})
	// From here until the replay ends, live frames for m are held back.
	m.replaying = since != nil && *since < r.last
	// A gap left open while the room had no members to backfill for is
	// worth closing now that it has one.
	if r.highest > r.last {
		r.armTimer()
	}
	return m, r.last, nil
}

// flushHeld hands m the live frames held during its replay. It waits for
// room in m's queue, as the replay did, outside the lock; frames that arrive
// meanwhile are held in turn, until a round finds none and m goes live.
func (r *room) flushHeld(ctx context.Context, m *member) error {
	for {
		r.mu.Lock()
		held := m.held
		m.held = nil
		if len(held) == 0 || m.dropped {
			m.replaying = false
			r.mu.Unlock()
			return nil
		}
		r.mu.Unlock()
		for _, f := range held {
			if err := m.sub.Push(ctx, f); err != nil {
				return err
			}
		}
	}
}

// forget removes a room whose loading failed, so the next join tries again.
func (h *Hub) forget(r *room) {
	s := h.shardOf(r.id)
	s.mu.Lock()
	if s.rooms[r.id] == r {
		delete(s.rooms, r.id)
		h.unwatch(r.id)
	}
	s.mu.Unlock()
}

// replay pushes the stored messages (from, to] to sub.
func (h *Hub) replay(ctx context.Context, roomID string, sub Subscriber, from, to int64) error {
	for cursor := from; cursor < to; {
		msgs, _, err := h.store.History(ctx, roomID, Page{Cursor: cursor, Limit: int(min(int64(h.opts.ReplayPage), to-cursor))})
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			return nil // the store keeps no more (bounded in-memory history)
		}
		for _, msg := range msgs {
			if msg.Seq > to {
				return nil
			}
			if err := sub.Push(ctx, Frame{Data: h.codec.Message(msg), Kind: "message"}); err != nil {
				return err
			}
			cursor = msg.Seq
		}
	}
	return nil
}

// Leave removes sub from the room and reports whether it was a member.
func (h *Hub) Leave(roomID string, sub Subscriber) bool {
	r := h.lookup(roomID)
	if r == nil {
		return false
	}
	r.mu.Lock()
	m, ok := r.members[sub]
	if ok {
		delete(r.members, sub)
		if p := r.present[m.user.ID]; p != nil {
			p.conns--
			if p.conns == 0 {
				delete(r.present, m.user.ID)
				if !r.online(m.user.ID) {
					r.broadcast(Frame{Data: h.codec.Presence(roomID, m.user, false), Kind: "presence"}, nil)
				}
				h.publish(Event{Kind: EventPresence, Room: roomID, User: m.user, Online: false})
			}
		}
	}
	r.mu.Unlock()
	if ok {
		h.release(r)
	}
	return ok
}

// Typing tells the room's other users that user is typing. sub must have
// joined the room.
func (h *Hub) Typing(roomID string, sub Subscriber, user User) error {
	r := h.lookup(roomID)
	if r == nil {
		return errNotJoined
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.members[sub]; !ok {
		return errNotJoined
	}
	r.typing(user)
	h.publish(Event{Kind: EventTyping, Room: roomID, User: user})
	return nil
}

// typing offers a typing frame to the members who are not user. r.mu is held.
func (r *room) typing(user User) {
	var frame Frame
	for _, m := range r.members {
		if m.user.ID == user.ID {
			continue
		}
		if frame.Data == nil {
			frame = Frame{Data: r.hub.codec.Typing(r.id, user), Kind: "typing"}
		}
		r.offer(m, frame)
	}
}

var errNotJoined = Errorf(ErrInvalid, "join the room first")

// Deliver hands a stored message to the room's members here and, through the
// bus, to those on other replicas. ctx carries the sender's trace.
func (h *Hub) Deliver(ctx context.Context, msg Message) {
	h.deliverHere(ctx, msg)
	h.publishCtx(ctx, Event{Kind: EventMessage, Room: msg.Room, Message: msg})
}

// deliverHere hands a stored message to the room's members on this replica,
// if it has any. Messages may arrive out of order or twice (from this
// replica, the broker and backfills); members still see each seq once and in
// order.
func (h *Hub) deliverHere(ctx context.Context, msg Message) {
	r := h.lookup(msg.Room)
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accept(ctx, msg)
}

// pendingMessage is a message that arrived ahead of a gap, with the context
// of its delivery.
type pendingMessage struct {
	msg Message
	ctx context.Context
}

// accept is the single path by which messages reach members; ctx carries
// the trace of the delivery, if it has one. r.mu is held.
func (r *room) accept(ctx context.Context, msg Message) {
	r.highest = max(r.highest, msg.Seq)
	switch {
	case r.loaded && msg.Seq <= r.last:
		return // delivered already
	case r.loaded && msg.Seq == r.last+1:
		r.last = msg.Seq
		r.fanout(ctx, msg)
	case len(r.pending) < maxPending:
		r.pending[msg.Seq] = pendingMessage{msg, ctx}
	}
	if r.loaded {
		r.drain()
	}
}

// drain delivers pending messages that continue the sequence and, if a gap
// remains, arms the timer that will backfill it. r.mu is held.
func (r *room) drain() {
	for seq := range r.pending {
		if seq <= r.last {
			delete(r.pending, seq)
		}
	}
	for {
		p, ok := r.pending[r.last+1]
		if !ok {
			break
		}
		delete(r.pending, p.msg.Seq)
		r.last = p.msg.Seq
		r.fanout(p.ctx, p.msg)
	}
	if r.highest > r.last {
		r.armTimer()
	} else {
		r.stopTimer()
	}
}

func (r *room) armTimer() {
	if r.gapTimer != nil || r.backfilling {
		return
	}
	// The generation tells a timer that fires late, after it was stopped or
	// replaced, that it is no longer wanted.
	r.timerGen++
	gen := r.timerGen
	r.gapTimer = time.AfterFunc(r.hub.opts.GapWait, func() { r.startBackfill(gen) })
}

func (r *room) stopTimer() {
	if r.gapTimer != nil {
		r.gapTimer.Stop()
		r.gapTimer = nil
	}
}

func (r *room) startBackfill(gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gapTimer == nil || r.timerGen != gen {
		return // stopped, or replaced by a newer timer
	}
	r.gapTimer = nil
	if r.backfilling || r.highest <= r.last || len(r.members) == 0 || r.hub.ctx.Err() != nil {
		return
	}
	r.backfilling = true
	r.hub.stats.backfills.Add(1)
	r.hub.wg.Add(1)
	go r.backfill()
}

// backfill reads the missing messages from the store, which has every
// message that was ever acked, and delivers them through accept. A store
// that fails is retried with backoff until the gap closes, the room empties
// or the hub closes.
func (r *room) backfill() {
	defer r.hub.wg.Done()
	ctx := r.hub.ctx
	retry := 50 * time.Millisecond
	for {
		r.mu.Lock()
		cursor, highest, members := r.last, r.highest, len(r.members)
		if highest <= cursor || members == 0 || ctx.Err() != nil {
			r.backfilling = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()

		limit := int(min(int64(r.hub.opts.ReplayPage), highest-cursor))
		msgs, _, err := r.hub.store.History(ctx, r.id, Page{Cursor: cursor, Limit: limit})
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(retry):
				retry = min(retry*2, 5*time.Second)
			}
			continue
		}
		r.mu.Lock()
		switch {
		case len(msgs) == 0:
			// Nothing past cursor is stored, so whatever announced seqs up
			// to highest was not a stored message (a bad broker event):
			// forget those claims. Moving last up to them instead would
			// make every real message below them look delivered. Claims
			// made during the read get a read of their own.
			for seq := range r.pending {
				if seq <= highest {
					delete(r.pending, seq)
				}
			}
			if r.highest == highest {
				r.highest = r.last
				for seq := range r.pending {
					r.highest = max(r.highest, seq)
				}
			}
		case msgs[0].Seq > r.last+1:
			// The store no longer keeps the start of the gap (bounded
			// in-memory history): skip what cannot be had.
			r.last = msgs[0].Seq - 1
		}
		r.hub.stats.backfilled.Add(int64(len(msgs)))
		for _, msg := range msgs {
			r.accept(context.Background(), msg) // no trace: a store read
		}
		r.mu.Unlock()
	}
}

// fanout encodes msg once and offers the same bytes to every member that
// does not have it yet. r.mu is held.
func (r *room) fanout(ctx context.Context, msg Message) {
	var frame Frame
	for _, m := range r.members {
		if msg.Seq <= m.floor {
			continue
		}
		if frame.Data == nil {
			frame = Frame{Data: r.hub.codec.Message(msg), Kind: "message", Arrived: msg.TS, Ctx: ctx}
		}
		r.offer(m, frame)
	}
}

// broadcast offers frame to every member but except. r.mu is held.
func (r *room) broadcast(frame Frame, except Subscriber) {
	for sub, m := range r.members {
		if sub != except {
			r.offer(m, frame)
		}
	}
}

// offer queues frame for m, or holds it while m replays history. A member
// whose queue or hold is full is dropped and told it is too slow: it must
// never see a later frame after missing an earlier one. r.mu is held.
func (r *room) offer(m *member, frame Frame) bool {
	if m.dropped {
		return false
	}
	if m.replaying {
		if len(m.held) < r.hub.opts.MaxHeld {
			m.held = append(m.held, frame)
			return true
		}
	} else if m.sub.Offer(frame) {
		return true
	}
	m.dropped = true
	m.held = nil
	m.sub.Slow()
	return false
}

// users lists up to limit of the users present in the room, here or on
// other replicas. r.mu is held.
func (r *room) users(limit int) []User {
	out := make([]User, 0, min(limit, len(r.present)))
	for _, p := range r.present {
		if len(out) == limit {
			return out
		}
		out = append(out, p.user)
	}
	listed := make(map[string]bool)
	for _, ro := range r.remote {
		for id, u := range ro.users {
			if len(out) == limit {
				return out
			}
			if r.present[id] == nil && !listed[id] {
				listed[id] = true
				out = append(out, u)
			}
		}
	}
	return out
}
