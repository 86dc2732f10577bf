// Package chat is Parley's domain: users, rooms, messages, and the hub that
// fans messages out to the members of a room. It imports nothing but the
// standard library; stores, brokers and transports are adapters around it.
package chat

import (
	"context"
	"time"
)

// User is an account as other users see it. Deleted is set on the author of
// a message whose account has since been deleted (see Store.DeleteUser).
type User struct {
	ID       string
	Username string
	Deleted  bool
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
	Session        string    // the id of the session the ticket was issued for
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
//   - Sessions: see SessionStore.
//   - A store that cannot be reached reports ErrUnavailable.
type Store interface {
	CreateUser(ctx context.Context, u User, passwordHash string) error
	Credentials(ctx context.Context, username string) (User, string, error)

	CreateRoom(ctx context.Context, r Room) (Room, error)
	Room(ctx context.Context, id string) (Room, error)
	Rooms(ctx context.Context) ([]Room, error)
	RoomsAfter(ctx context.Context, after string, limit int) ([]Room, error)
	LastSeqs(ctx context.Context, rooms []string) (map[string]int64, error)

	Append(ctx context.Context, d Draft) (msg Message, created bool, err error)
	History(ctx context.Context, room string, p Page) (msgs []Message, hasMore bool, err error)

	SaveTicket(ctx context.Context, t Ticket) error
	TakeTicket(ctx context.Context, hash string, now time.Time) (Ticket, error)

	Ping(ctx context.Context) error

	SessionStore
}

// Session is one sign-in: a token names it by ID (its JWT jti), and the
// token is honoured only while the session is live: not revoked, not past
// Expires, its user not deleted.
type Session struct {
	ID      string
	User    User
	Expires time.Time
}

// SessionStatus is what a store knows of a session at a given time.
type SessionStatus uint8

// The statuses a session can have. A session the store does not know (never
// created, revoked, or dropped after it expired) is SessionEnded.
const (
	SessionLive SessionStatus = iota
	SessionEnded
	SessionUserDeleted
)

// SessionStore keeps sessions and the accounts they end with. Its contract:
//
//   - CreateSession stores a live session of an existing user.
//   - Session returns the session with the id while it is live at now;
//     missing, revoked, expired at now, or of a deleted user is ErrNotFound.
//   - SessionStatuses tells, in one round trip, which of the listed
//     sessions are not live at now, and why (SessionEnded for a missing,
//     revoked or expired one, SessionUserDeleted); a listed id without an
//     entry is live. Live ones are left out because almost every session
//     asked about is live: the answer stays small however many sockets
//     are open.
//   - RevokeSession ends one session (an unknown id is not an error);
//     RevokeSessions ends every session of the user but except ("" for
//     none).
//   - SetPassword replaces the user's password hash; an unknown or deleted
//     user is ErrNotFound.
//   - DeleteUser deletes the account: its sessions end, its Credentials are
//     ErrNotFound, its username stays taken (CreateUser of it in any letter
//     case is ErrConflict) for as long as the store keeps anything, and its
//     messages stay, returned by History with User.Deleted set. An unknown or
//     already deleted user is ErrNotFound.
//   - Expired sessions are dropped by the store on its own, so they do not
//     pile up.
type SessionStore interface {
	CreateSession(ctx context.Context, s Session) error
	Session(ctx context.Context, id string, now time.Time) (Session, error)
	SessionStatuses(ctx context.Context, ids []string, now time.Time) (map[string]SessionStatus, error)
	RevokeSession(ctx context.Context, id string) error
	RevokeSessions(ctx context.Context, userID, except string) error
	SetPassword(ctx context.Context, userID, passwordHash string) error
	DeleteUser(ctx context.Context, userID string) error
}
