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
	// TypingInterval is the least time between two typing frames of one
	// user in one room: typing frames within it are merged into the first
	// (see presence.go).
	TypingInterval time.Duration // default 1s

	// Now is the clock that dates what other replicas say about their
	// rooms, and so decides when their rosters expire; nil means time.Now.
	// The gap timer and the loops' tickers use package time, which
	// testing/synctest controls: they only say when to look at the clock.
	Now func() time.Time
}

// withDefaults fills in the zero fields of o.
func (o HubOptions) withDefaults() HubOptions {
	if o.GapWait <= 0 {
		o.GapWait = 200 * time.Millisecond
	}
	if o.MaxHeld <= 0 {
		o.MaxHeld = 4096
	}
	if o.ReplayPage <= 0 {
		o.ReplayPage = 500
	}
	if o.CatchUpInterval <= 0 {
		o.CatchUpInterval = 2 * time.Second
	}
	if o.RosterInterval <= 0 {
		o.RosterInterval = 5 * time.Second
	}
	if o.TypingInterval <= 0 {
		o.TypingInterval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

const hubShards = 64

// Hub keeps the rooms that have members on this server, delivers each room's
// messages to them in seq order without gaps or duplicates, and tracks who is
// present. Rooms live in shards so that unrelated rooms never share a lock.
type Hub struct {
	store Store
	codec Codec
	opts  HubOptions // with defaults filled in

	seed   maphash.Seed
	shards [hubShards]shard

	peers replicaLink // the other replicas; see replicas.go
	stats hubCounters

	// Backfills and the sync and roster loops run in goroutines owned by
	// the hub: ctx stops them and wg waits for them in Close.
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
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{
		store: store, codec: codec, opts: opts, seed: maphash.MakeSeed(),
		peers: newReplicaLink(opts.Bus),
		ctx:   ctx, cancel: cancel,
	}
	for i := range h.shards {
		h.shards[i].rooms = make(map[string]*room)
	}
	if h.peers.bus != nil {
		h.wg.Go(h.syncLoop)
		h.wg.Go(h.rosterLoop)
	}
	return h
}

// Close stops backfills and the replica loops and waits for them. Members
// are not notified: their connections are closed by their owners.
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

	ready   chan struct{} // closed once the room is loaded (or loading failed)
	loadErr error         // set before ready is closed

	mu       sync.Mutex             // guards the fields below
	members  map[Subscriber]*member // to find a member
	list     []*member              // the same members, to visit them all (see addMember)
	seq      sequence               // which seqs members have had; see ordering.go
	presence presence               // who is in the room; see presence.go
	typists  typists                // who was last announced typing; see presence.go
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
			id:       roomID,
			hub:      h,
			ready:    make(chan struct{}),
			members:  make(map[Subscriber]*member),
			seq:      sequence{pending: make(map[int64]pendingMessage)},
			presence: presence{here: make(map[string]*localUser), remote: make(map[string]*roster)},
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
