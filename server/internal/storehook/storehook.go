// Package storehook builds chat.Store decorators from one function, so that
// a decorator (fault injection, timing and tracing) is only what it does
// around a call, and no decorator repeats the store's methods.
//
// It lives outside chat because chat is the domain and has no use for it,
// and outside both of its users so that neither depends on the other. Like
// chat, it imports only the standard library.
package storehook

import (
	"context"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

// The operations of chat.Store, as an Around hook is told them. They are
// metric labels and span names too (store.append), so they never change.
const (
	CreateUser  = "create_user"
	Credentials = "credentials"
	CreateRoom  = "create_room"
	Room        = "room"
	Rooms       = "rooms"
	LastSeqs    = "last_seqs"
	Append      = "append"
	History     = "history"
	SaveTicket  = "save_ticket"
	TakeTicket  = "take_ticket"
	Ping        = "ping"

	// Paging the room list.
	RoomsAfter = "rooms_after"
	// Accounts and sessions.
	CreateSession   = "create_session"
	Session         = "session"
	SessionStatuses = "session_statuses"
	RevokeSession   = "revoke_session"
	RevokeSessions  = "revoke_sessions"
	SetPassword     = "set_password"
	DeleteUser      = "delete_user"
)

// Around runs one store call. op names the operation; call makes it with
// the context it is given and returns its error, its other results going
// straight to the caller. An Around may replace the context (to start a
// span), wait or refuse before calling, and look at the error after. If it
// returns without calling, the caller gets the error and zero results.
type Around func(ctx context.Context, op string, call func(context.Context) error) error

// Wrap returns s with every call passed through around. Besides what around
// does, a call costs one small allocation: the closure that makes it.
func Wrap(s chat.Store, around Around) chat.Store {
	return &store{next: s, around: around}
}

type store struct {
	next   chat.Store
	around Around
}

func (s *store) CreateUser(ctx context.Context, u chat.User, passwordHash string) error {
	return s.around(ctx, CreateUser, func(ctx context.Context) error {
		return s.next.CreateUser(ctx, u, passwordHash)
	})
}

func (s *store) Credentials(ctx context.Context, username string) (u chat.User, hash string, err error) {
	err = s.around(ctx, Credentials, func(ctx context.Context) (err error) {
		u, hash, err = s.next.Credentials(ctx, username)
		return err
	})
	return u, hash, err
}

func (s *store) CreateRoom(ctx context.Context, r chat.Room) (room chat.Room, err error) {
	err = s.around(ctx, CreateRoom, func(ctx context.Context) (err error) {
		room, err = s.next.CreateRoom(ctx, r)
		return err
	})
	return room, err
}

func (s *store) Room(ctx context.Context, id string) (room chat.Room, err error) {
	err = s.around(ctx, Room, func(ctx context.Context) (err error) {
		room, err = s.next.Room(ctx, id)
		return err
	})
	return room, err
}

func (s *store) Rooms(ctx context.Context) (rooms []chat.Room, err error) {
	err = s.around(ctx, Rooms, func(ctx context.Context) (err error) {
		rooms, err = s.next.Rooms(ctx)
		return err
	})
	return rooms, err
}

func (s *store) RoomsAfter(ctx context.Context, after string, limit int) (rooms []chat.Room, err error) {
	err = s.around(ctx, RoomsAfter, func(ctx context.Context) (err error) {
		rooms, err = s.next.RoomsAfter(ctx, after, limit)
		return err
	})
	return rooms, err
}

func (s *store) LastSeqs(ctx context.Context, rooms []string) (seqs map[string]int64, err error) {
	err = s.around(ctx, LastSeqs, func(ctx context.Context) (err error) {
		seqs, err = s.next.LastSeqs(ctx, rooms)
		return err
	})
	return seqs, err
}

func (s *store) Append(ctx context.Context, d chat.Draft) (msg chat.Message, created bool, err error) {
	err = s.around(ctx, Append, func(ctx context.Context) (err error) {
		msg, created, err = s.next.Append(ctx, d)
		return err
	})
	return msg, created, err
}

func (s *store) History(ctx context.Context, room string, p chat.Page) (msgs []chat.Message, hasMore bool, err error) {
	err = s.around(ctx, History, func(ctx context.Context) (err error) {
		msgs, hasMore, err = s.next.History(ctx, room, p)
		return err
	})
	return msgs, hasMore, err
}

func (s *store) SaveTicket(ctx context.Context, t chat.Ticket) error {
	return s.around(ctx, SaveTicket, func(ctx context.Context) error {
		return s.next.SaveTicket(ctx, t)
	})
}

func (s *store) TakeTicket(ctx context.Context, hash string, now time.Time) (t chat.Ticket, err error) {
	err = s.around(ctx, TakeTicket, func(ctx context.Context) (err error) {
		t, err = s.next.TakeTicket(ctx, hash, now)
		return err
	})
	return t, err
}

func (s *store) Ping(ctx context.Context) error {
	return s.around(ctx, Ping, func(ctx context.Context) error {
		return s.next.Ping(ctx)
	})
}

func (s *store) CreateSession(ctx context.Context, sess chat.Session) error {
	return s.around(ctx, CreateSession, func(ctx context.Context) error {
		return s.next.CreateSession(ctx, sess)
	})
}

func (s *store) Session(ctx context.Context, id string, now time.Time) (sess chat.Session, err error) {
	err = s.around(ctx, Session, func(ctx context.Context) (err error) {
		sess, err = s.next.Session(ctx, id, now)
		return err
	})
	return sess, err
}

func (s *store) SessionStatuses(ctx context.Context, ids []string, now time.Time) (st map[string]chat.SessionStatus, err error) {
	err = s.around(ctx, SessionStatuses, func(ctx context.Context) (err error) {
		st, err = s.next.SessionStatuses(ctx, ids, now)
		return err
	})
	return st, err
}

func (s *store) RevokeSession(ctx context.Context, id string) error {
	return s.around(ctx, RevokeSession, func(ctx context.Context) error {
		return s.next.RevokeSession(ctx, id)
	})
}

func (s *store) RevokeSessions(ctx context.Context, userID, except string) error {
	return s.around(ctx, RevokeSessions, func(ctx context.Context) error {
		return s.next.RevokeSessions(ctx, userID, except)
	})
}

func (s *store) SetPassword(ctx context.Context, userID, passwordHash string) error {
	return s.around(ctx, SetPassword, func(ctx context.Context) error {
		return s.next.SetPassword(ctx, userID, passwordHash)
	})
}

func (s *store) DeleteUser(ctx context.Context, userID string) error {
	return s.around(ctx, DeleteUser, func(ctx context.Context) error {
		return s.next.DeleteUser(ctx, userID)
	})
}
