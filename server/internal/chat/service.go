package chat

import (
	"context"
	"time"
)

// appendTimeout bounds one send's wait for the store.
const appendTimeout = 15 * time.Second

// History page sizes of the public API.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 500
)

// Service is what transports call: it validates input, stores, and hands
// stored messages to the hub.
type Service struct {
	store Store
	hub   *Hub
	now   func() time.Time
}

// NewService wires a service; now may be nil for the wall clock.
func NewService(store Store, hub *Hub, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, hub: hub, now: now}
}

// timestamp is the time stamped on new records: UTC, cut to microseconds,
// which is what PostgreSQL keeps, so an ack and a later read agree.
func (s *Service) timestamp() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}

// CreateRoom creates a room with a unique name.
func (s *Service) CreateRoom(ctx context.Context, name string) (Room, error) {
	if err := ValidateRoomName(name); err != nil {
		return Room{}, err
	}
	now := s.timestamp()
	return s.store.CreateRoom(ctx, Room{ID: NewID(now), Name: name, CreatedAt: now})
}

// Rooms lists every room.
func (s *Service) Rooms(ctx context.Context) ([]Room, error) {
	return s.store.Rooms(ctx)
}

// Room list page sizes of the public API.
const (
	DefaultRoomPage = 100
	MaxRoomPage     = 500
)

// RoomsAfter reads a page of the room list: up to limit rooms (0 means
// DefaultRoomPage) whose ids follow the cursor after ("" for the first
// page), in id order, which is creation order. next is the cursor of the
// following page, empty when no room follows.
func (s *Service) RoomsAfter(ctx context.Context, after string, limit int) (rooms []Room, next string, err error) {
	switch {
	case limit == 0:
		limit = DefaultRoomPage
	case limit < 1 || limit > MaxRoomPage:
		return nil, "", Errorf(ErrInvalid, "limit must be from 1 to %d", MaxRoomPage)
	}
	if after != "" && !isID(after) {
		return nil, "", Errorf(ErrInvalid, "after must be a cursor from a previous page")
	}
	// One room more than asked says whether another page follows.
	rooms, err = s.store.RoomsAfter(ctx, after, limit+1)
	if err != nil {
		return nil, "", err
	}
	if len(rooms) > limit {
		rooms = rooms[:limit]
		next = rooms[limit-1].ID
	}
	return rooms, next, nil
}

// isID reports whether s could be an id NewID made.
func isID(s string) bool {
	b, err := idEncoding.DecodeString(s)
	return err == nil && len(s) == 26 && len(b) == 16
}

// History reads a page of a room's messages. A zero limit means the default.
func (s *Service) History(ctx context.Context, room string, p Page) ([]Message, bool, error) {
	switch {
	case p.Limit == 0:
		p.Limit = DefaultPageLimit
	case p.Limit < 0:
		return nil, false, Errorf(ErrInvalid, "limit must be positive")
	case p.Limit > MaxPageLimit:
		p.Limit = MaxPageLimit
	}
	if p.Cursor < 0 {
		return nil, false, Errorf(ErrInvalid, "seq cursor must not be negative")
	}
	return s.store.History(ctx, room, p)
}

// Send stores a message and delivers it. created is false when the same user
// already sent clientID to the room: the original message is returned, and
// members that have it do not get it again.
func (s *Service) Send(ctx context.Context, u User, room, clientID, body string) (msg Message, created bool, err error) {
	if err := ValidateClientID(clientID); err != nil {
		return Message{}, false, err
	}
	if err := ValidateBody(body); err != nil {
		return Message{}, false, err
	}
	// Once a send is handed to the store it runs to the end even if its
	// caller leaves: a message committed for a caller that gave up would
	// otherwise be stored but not delivered until a later one exposed it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), appendTimeout)
	defer cancel()
	now := s.timestamp()
	msg, created, err = s.store.Append(ctx, Draft{ID: NewID(now), Room: room, ClientID: clientID, User: u, Body: body, TS: now})
	if err != nil {
		return msg, false, err
	}
	// A repeat is delivered again too: the first attempt may have been
	// stored but not delivered (its caller gave up before the commit), and
	// the hub drops seqs that its members already have.
	s.hub.Deliver(ctx, msg)
	return msg, created, nil
}

// Join adds sub to a room; see Hub.Join.
func (s *Service) Join(ctx context.Context, room string, sub Subscriber, u User, since *int64) error {
	if since != nil && *since < 0 {
		return Errorf(ErrInvalid, "since must not be negative")
	}
	return s.hub.Join(ctx, room, sub, u, since)
}

// Leave removes sub from a room and reports whether it was a member.
func (s *Service) Leave(room string, sub Subscriber) bool {
	return s.hub.Leave(room, sub)
}

// Typing tells a room's other users that u is typing.
func (s *Service) Typing(room string, sub Subscriber, u User) error {
	return s.hub.Typing(room, sub, u)
}

// Ready reports whether the store can be reached.
func (s *Service) Ready(ctx context.Context) error {
	return s.store.Ping(ctx)
}
