// Package memstore is Parley's embedded default store: users, rooms, messages
// and tickets live in memory and are gone when the process exits. It needs no
// setup, which makes it the store for development, tests and single-replica
// demos; a deployment that must not lose acknowledged messages uses a
// persistent store instead.
//
// Each room keeps only its newest messages (Options.HistoryLimit), so memory
// stays bounded however long the server runs. What callers see of that:
//
//   - History never returns an evicted message. A forward page whose cursor is
//     older than the oldest kept message starts at the oldest kept one; a
//     backward page reports hasMore=false once it reaches it.
//   - Append is idempotent only while the original message is kept: once it is
//     evicted, a repeat of its (room, user, client id) is stored as a new
//     message. Clients retry within seconds, long before a busy room evicts.
//   - Room.LastSeq keeps counting past evictions, so a seq is never reused.
//
// Nothing here waits on I/O, so the methods do not consult their context.
package memstore

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

// DefaultHistoryLimit is how many messages a room keeps when
// Options.HistoryLimit is not set.
const DefaultHistoryLimit = 10000

// minTicketSweep is the smallest number of held tickets that triggers a sweep
// for expired ones, so a quiet store does not sweep on every save.
const minTicketSweep = 64

// Options configures a Store.
type Options struct {
	// HistoryLimit is how many of its newest messages each room keeps;
	// zero or less means DefaultHistoryLimit.
	HistoryLimit int

	// Now is the clock that decides which saved tickets have expired and may
	// be dropped; nil means time.Now. Give it the clock that issues tickets,
	// so a test with a fake clock does not see its tickets swept away.
	Now func() time.Time
}

// Store is an in-memory chat.Store. It is safe for concurrent use: the room
// index and each room have their own lock, so rooms do not contend with each
// other. The zero value is not usable; call New.
type Store struct {
	historyLimit int
	now          func() time.Time

	usersMu sync.RWMutex
	users   map[string]account // by folded username

	roomsMu    sync.RWMutex
	rooms      map[string]*room // by id
	roomNames  map[string]bool  // folded names in use
	roomsInAge []*room          // creation order, so Rooms lists them stably
	roomsByID  []*room          // id order, so RoomsAfter finds a page by binary search

	ticketsMu sync.Mutex
	tickets   map[string]chat.Ticket // by hash
	nextSweep int                    // sweep expired tickets once this many are held

	// Accounts that end and their sessions (sessions.go). userKeys and
	// deleted are guarded by usersMu.
	userKeys         map[string]string // folded username by user id
	deleted          map[string]bool   // ids of deleted users
	sessionsMu       sync.Mutex
	sessions         map[string]chat.Session // live or expired, by id; revoked ones are removed
	nextSessionSweep int                     // sweep expired sessions once this many are held
}

type account struct {
	user         chat.User
	passwordHash string
	deleted      bool // the account was deleted; its name stays taken
}

var _ chat.Store = (*Store)(nil)

// New returns an empty Store.
func New(opts Options) *Store {
	if opts.HistoryLimit <= 0 {
		opts.HistoryLimit = DefaultHistoryLimit
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{
		historyLimit: opts.HistoryLimit,
		now:          opts.Now,
		users:        make(map[string]account),
		rooms:        make(map[string]*room),
		roomNames:    make(map[string]bool),
		tickets:      make(map[string]chat.Ticket),
		nextSweep:    minTicketSweep,

		userKeys:         make(map[string]string),
		deleted:          make(map[string]bool),
		sessions:         make(map[string]chat.Session),
		nextSessionSweep: minTicketSweep,
	}
}

// Close releases nothing: it exists so that every store can be closed the
// same way by the code that wires it.
func (s *Store) Close() {}

// Ping reports that the store is reachable, which memory always is.
func (s *Store) Ping(context.Context) error { return nil }

// fold is the key under which names are unique "in any letter case". It
// lowercases rather than case-folds, as SQL's lower() does, so that the
// embedded store and a SQL store agree on which names collide.
func fold(name string) string { return strings.ToLower(name) }

// CreateUser stores u with its password hash. A username taken in any letter
// case, by a live or a deleted account, is chat.ErrConflict.
func (s *Store) CreateUser(_ context.Context, u chat.User, passwordHash string) error {
	key := fold(u.Username)
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	if _, taken := s.users[key]; taken {
		return chat.Errorf(chat.ErrConflict, "username is taken")
	}
	s.users[key] = account{user: u, passwordHash: passwordHash}
	s.userKeys[u.ID] = key
	return nil
}

// Credentials returns the user whose username matches in any letter case,
// and its password hash. An unknown or deleted user is chat.ErrNotFound.
func (s *Store) Credentials(_ context.Context, username string) (chat.User, string, error) {
	s.usersMu.RLock()
	a, ok := s.users[fold(username)]
	s.usersMu.RUnlock()
	if !ok || a.deleted {
		return chat.User{}, "", chat.Errorf(chat.ErrNotFound, "user not found")
	}
	return a.user, a.passwordHash, nil
}

// CreateRoom stores r as an empty room and returns it. A name taken in any
// letter case, or an id already in use, is chat.ErrConflict.
func (s *Store) CreateRoom(_ context.Context, r chat.Room) (chat.Room, error) {
	key := fold(r.Name)
	s.roomsMu.Lock()
	defer s.roomsMu.Unlock()
	if s.roomNames[key] {
		return chat.Room{}, chat.Errorf(chat.ErrConflict, "room name is taken")
	}
	if _, taken := s.rooms[r.ID]; taken {
		return chat.Room{}, chat.Errorf(chat.ErrConflict, "room already exists")
	}
	rm := newRoom(r, s.historyLimit)
	s.rooms[r.ID] = rm
	s.roomNames[key] = true
	s.roomsInAge = append(s.roomsInAge, rm)
	// Ids are time-ordered: a new room almost always goes at the end.
	at, _ := slices.BinarySearchFunc(s.roomsByID, r.ID, func(rm *room, id string) int { return strings.Compare(rm.id, id) })
	s.roomsByID = slices.Insert(s.roomsByID, at, rm)
	return rm.info(), nil
}

// Room returns the room with the given id; an unknown id is chat.ErrNotFound.
func (s *Store) Room(_ context.Context, id string) (chat.Room, error) {
	rm, err := s.room(id)
	if err != nil {
		return chat.Room{}, err
	}
	return rm.info(), nil
}

// Rooms returns every room in the order they were created.
func (s *Store) Rooms(context.Context) ([]chat.Room, error) {
	s.roomsMu.RLock()
	all := slices.Clone(s.roomsInAge)
	s.roomsMu.RUnlock()

	out := make([]chat.Room, len(all))
	for i, rm := range all {
		out[i] = rm.info()
	}
	return out, nil
}

// RoomsAfter returns up to limit rooms whose ids sort after after, in id
// order.
func (s *Store) RoomsAfter(_ context.Context, after string, limit int) ([]chat.Room, error) {
	s.roomsMu.RLock()
	from, found := slices.BinarySearchFunc(s.roomsByID, after, func(rm *room, id string) int { return strings.Compare(rm.id, id) })
	if found {
		from++
	}
	rest := s.roomsByID[from:]
	page := slices.Clone(rest[:max(0, min(limit, len(rest)))])
	s.roomsMu.RUnlock()

	out := make([]chat.Room, len(page))
	for i, rm := range page {
		out[i] = rm.info()
	}
	return out, nil
}

// LastSeqs returns the last seq of each listed room that exists, in a map
// that is never nil. It holds the index's read lock once for the whole list
// and reads each seq without its room's lock, so a caller polling every room
// never waits behind appends.
func (s *Store) LastSeqs(_ context.Context, ids []string) (map[string]int64, error) {
	seqs := make(map[string]int64, len(ids))
	s.roomsMu.RLock()
	defer s.roomsMu.RUnlock()
	for _, id := range ids {
		if rm, ok := s.rooms[id]; ok {
			seqs[id] = rm.lastSeq.Load()
		}
	}
	return seqs, nil
}

// Append stores d as the next message of its room, or returns the message
// already stored under the same (room, user, client id) with created=false.
// An unknown room is chat.ErrNotFound.
func (s *Store) Append(_ context.Context, d chat.Draft) (chat.Message, bool, error) {
	rm, err := s.room(d.Room)
	if err != nil {
		return chat.Message{}, false, err
	}
	msg, created := rm.append(d)
	return msg, created, nil
}

// History returns a page of the messages the room still keeps, in ascending
// seq order. An unknown room is chat.ErrNotFound; a limit of zero or less
// yields an empty page.
func (s *Store) History(_ context.Context, roomID string, p chat.Page) ([]chat.Message, bool, error) {
	rm, err := s.room(roomID)
	if err != nil {
		return nil, false, err
	}
	msgs, hasMore := rm.page(p)
	s.markDeleted(msgs)
	return msgs, hasMore, nil
}

func (s *Store) room(id string) (*room, error) {
	s.roomsMu.RLock()
	rm, ok := s.rooms[id]
	s.roomsMu.RUnlock()
	if !ok {
		return nil, chat.Errorf(chat.ErrNotFound, "room not found")
	}
	return rm, nil
}

// SaveTicket stores t until it is taken. Tickets that are never redeemed
// would otherwise pile up, so saving also drops the expired ones now and then.
func (s *Store) SaveTicket(_ context.Context, t chat.Ticket) error {
	s.ticketsMu.Lock()
	defer s.ticketsMu.Unlock()
	if len(s.tickets) >= s.nextSweep {
		s.dropExpiredTickets()
	}
	s.tickets[t.Hash] = t
	return nil
}

// dropExpiredTickets runs only once the number of held tickets has doubled
// since the last sweep, which keeps SaveTicket amortized O(1) and the map at
// most about twice the tickets still live. s.ticketsMu is held.
func (s *Store) dropExpiredTickets() {
	now := s.now()
	for hash, t := range s.tickets {
		if expired(t, now) {
			delete(s.tickets, hash)
		}
	}
	s.nextSweep = max(2*len(s.tickets), minTicketSweep)
}

// TakeTicket removes the ticket with the given hash and returns it. A ticket
// that is missing, or expired at now, is chat.ErrNotFound (and gone too).
func (s *Store) TakeTicket(_ context.Context, hash string, now time.Time) (chat.Ticket, error) {
	s.ticketsMu.Lock()
	t, ok := s.tickets[hash]
	delete(s.tickets, hash)
	s.ticketsMu.Unlock()
	if !ok || expired(t, now) {
		return chat.Ticket{}, chat.Errorf(chat.ErrNotFound, "ticket not found or expired")
	}
	return t, nil
}

// expired follows chat.Ticket: a ticket must be redeemed before Expires.
func expired(t chat.Ticket, now time.Time) bool { return !now.Before(t.Expires) }
