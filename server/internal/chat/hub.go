package chat

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

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

func (h *Hub) lookup(roomID string) *room {
	s := h.shardOf(roomID)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms[roomID]
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

func (h *Hub) roomIDs() []string {
	rooms := h.rooms()
	ids := make([]string, len(rooms))
	for i, r := range rooms {
		ids[i] = r.id
	}
	return ids
}
