// Package chat is Parley's domain: users, rooms, messages, and the hub that
// fans messages out to the members of a room. It imports nothing but the
// standard library; stores, brokers and transports are adapters around it.
package chat

import (
	"context"
	"time"
)

// User is an account as other users see it.
type User struct {
	ID       string
	Username string
}

// Room is a named conversation. LastSeq is the seq of its newest message
// (0 for an empty room).
type Room struct {
	ID        string
	Name      string
	CreatedAt time.Time
	LastSeq   int64
}

// Message is a stored message. Seq numbers a room's messages 1, 2, 3, ...
// without gaps; it is assigned by the store.
type Message struct {
	ID       string
	Room     string
	Seq      int64
	ClientID string
	User     User
	Body     string
	TS       time.Time
}

// Draft is a message on its way into the store: everything but the seq.
type Draft struct {
	ID       string
	Room     string
	ClientID string
	User     User
	Body     string
	TS       time.Time
}

// Page selects a slice of a room's history. Forward pages hold messages with
// seq > Cursor; backward pages hold the newest messages with seq < Cursor.
// Both are returned in ascending seq order.
type Page struct {
	Backward bool
	Cursor   int64
	Limit    int
}

// Ticket is a single-use credential that lets a browser open a WebSocket
// (browsers cannot set headers on the upgrade request). Only a hash of the
// secret is stored.
type Ticket struct {
	Hash           string
	User           User
	SessionExpires time.Time // the expiry of the token the ticket was issued for
	Expires        time.Time // the ticket itself must be redeemed before this
}

// Store persists users, rooms, messages and tickets. Implementations must be
// safe for concurrent use and report failures with the kinds in errors.go:
//
//   - CreateUser and CreateRoom: ErrConflict when the username or room name is
//     taken in any letter case. Credentials matches the username the same way
//     and returns the stored password hash; an unknown user is ErrNotFound.
//   - Append assigns the next seq of the draft's room. A second draft with the
//     same (room, user, client id) is not stored again: Append returns the
//     original message and created=false. An unknown room is ErrNotFound.
//   - LastSeqs returns the LastSeq of each listed room in one round trip;
//     rooms that do not exist are left out.
//   - History of an unknown room is ErrNotFound. hasMore reports whether more
//     messages lie beyond the page in its direction.
//   - TakeTicket removes the ticket whatever its state (tickets are single
//     use) and returns ErrNotFound when it is missing or expired at now.
//   - RoomsAfter returns up to limit rooms whose ids sort after after (in
//     byte order; "" is before every id), in id order: a page of the room
//     list. It reads only the page, whatever the number of rooms.
//   - A store that cannot be reached reports ErrUnavailable.
type Store interface {
	CreateUser(ctx context.Context, u User, passwordHash string) error
	Credentials(ctx context.Context, username string) (User, string, error)

	CreateRoom(ctx context.Context, r Room) (Room, error)
	Room(ctx context.Context, id string) (Room, error)
	Rooms(ctx context.Context) ([]Room, error)
	LastSeqs(ctx context.Context, rooms []string) (map[string]int64, error)

	// Paging the room list (issue 16).
	RoomsAfter(ctx context.Context, after string, limit int) ([]Room, error)

	Append(ctx context.Context, d Draft) (msg Message, created bool, err error)
	History(ctx context.Context, room string, p Page) (msgs []Message, hasMore bool, err error)

	SaveTicket(ctx context.Context, t Ticket) error
	TakeTicket(ctx context.Context, hash string, now time.Time) (Ticket, error)

	Ping(ctx context.Context) error
}
