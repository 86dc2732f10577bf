package storehook_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/storehook"
)

// hookKey marks the context an Around hands on, so the store can tell that
// it got the hook's context and not the caller's.
type hookKey struct{}

var (
	alice   = chat.User{ID: "u1", Username: "alice"}
	lobby   = chat.Room{ID: "r1", Name: "lobby", CreatedAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), LastSeq: 7}
	message = chat.Message{ID: "m1", Room: "r1", Seq: 8, ClientID: "c1", User: alice, Body: "hi", TS: lobby.CreatedAt}
	ticket  = chat.Ticket{Hash: "h", User: alice, Session: "s1", Expires: lobby.CreatedAt}
	session = chat.Session{ID: "s1", User: alice, Expires: lobby.CreatedAt}
)

// call is one store method called through a store, with what it returned
// besides its error.
type call struct {
	op   string
	make func(ctx context.Context, s chat.Store) (any, error)
	args []any // what the store must be given besides the context
	want any   // the results besides the error that fakeStore returns
}

var calls = []call{
	{storehook.CreateUser, func(ctx context.Context, s chat.Store) (any, error) {
		return nil, s.CreateUser(ctx, alice, "hash")
	}, []any{alice, "hash"}, nil},
	{storehook.Credentials, func(ctx context.Context, s chat.Store) (any, error) {
		u, hash, err := s.Credentials(ctx, "alice")
		return []any{u, hash}, err
	}, []any{"alice"}, []any{alice, "hash"}},
	{storehook.CreateRoom, func(ctx context.Context, s chat.Store) (any, error) {
		return s.CreateRoom(ctx, lobby)
	}, []any{lobby}, lobby},
	{storehook.Room, func(ctx context.Context, s chat.Store) (any, error) {
		return s.Room(ctx, "r1")
	}, []any{"r1"}, lobby},
	{storehook.Rooms, func(ctx context.Context, s chat.Store) (any, error) {
		return s.Rooms(ctx)
	}, []any(nil), []chat.Room{lobby}},
	{storehook.RoomsAfter, func(ctx context.Context, s chat.Store) (any, error) {
		return s.RoomsAfter(ctx, "r0", 10)
	}, []any{"r0", 10}, []chat.Room{lobby}},
	{storehook.LastSeqs, func(ctx context.Context, s chat.Store) (any, error) {
		return s.LastSeqs(ctx, []string{"r1"})
	}, []any{[]string{"r1"}}, map[string]int64{"r1": 7}},
	{storehook.Append, func(ctx context.Context, s chat.Store) (any, error) {
		msg, created, err := s.Append(ctx, chat.Draft{ID: "m1", Room: "r1", ClientID: "c1", User: alice, Body: "hi"})
		return []any{msg, created}, err
	}, []any{chat.Draft{ID: "m1", Room: "r1", ClientID: "c1", User: alice, Body: "hi"}}, []any{message, true}},
	{storehook.History, func(ctx context.Context, s chat.Store) (any, error) {
		msgs, hasMore, err := s.History(ctx, "r1", chat.Page{Limit: 1})
		return []any{msgs, hasMore}, err
	}, []any{"r1", chat.Page{Limit: 1}}, []any{[]chat.Message{message}, true}},
	{storehook.SaveTicket, func(ctx context.Context, s chat.Store) (any, error) {
		return nil, s.SaveTicket(ctx, ticket)
	}, []any{ticket}, nil},
	{storehook.TakeTicket, func(ctx context.Context, s chat.Store) (any, error) {
		return s.TakeTicket(ctx, "h", lobby.CreatedAt)
	}, []any{"h", lobby.CreatedAt}, ticket},
	{storehook.Ping, func(ctx context.Context, s chat.Store) (any, error) {
		return nil, s.Ping(ctx)
	}, []any(nil), nil},

	{storehook.CreateSession, func(ctx context.Context, s chat.Store) (any, error) {
		return nil, s.CreateSession(ctx, session)
	}, []any{session}, nil},
	{storehook.Session, func(ctx context.Context, s chat.Store) (any, error) {
		return s.Session(ctx, "s1", lobby.CreatedAt)
	}, []any{"s1", lobby.CreatedAt}, session},
	{storehook.SessionStatuses, func(ctx context.Context, s chat.Store) (any, error) {
		return s.SessionStatuses(ctx, []string{"s1", "s2"}, lobby.CreatedAt)
	}, []any{[]string{"s1", "s2"}, lobby.CreatedAt}, map[string]chat.SessionStatus{"s2": chat.SessionUserDeleted}},
	{storehook.RevokeSession, func(ctx context.Context, s chat.Store) (any, error) {
		return nil, s.RevokeSession(ctx, "s1")
	}, []any{"s1"}, nil},
	{storehook.RevokeSessions, func(ctx context.Context, s chat.Store) (any, error) {
		return nil, s.RevokeSessions(ctx, "u1", "s1")
	}, []any{"u1", "s1"}, nil},
	{storehook.SetPassword, func(ctx context.Context, s chat.Store) (any, error) {
		return nil, s.SetPassword(ctx, "u1", "new hash")
	}, []any{"u1", "new hash"}, nil},
	{storehook.DeleteUser, func(ctx context.Context, s chat.Store) (any, error) {
		return nil, s.DeleteUser(ctx, "u1")
	}, []any{"u1"}, nil},
}

// zeroOf is what a call returns besides its error when the store was never
// called.
var zeroOf = map[string]any{
	storehook.CreateUser:  nil,
	storehook.Credentials: []any{chat.User{}, ""},
	storehook.CreateRoom:  chat.Room{},
	storehook.Room:        chat.Room{},
	storehook.Rooms:       []chat.Room(nil),
	storehook.LastSeqs:    map[string]int64(nil),
	storehook.Append:      []any{chat.Message{}, false},
	storehook.History:     []any{[]chat.Message(nil), false},
	storehook.SaveTicket:  nil,
	storehook.TakeTicket:  chat.Ticket{},
	storehook.Ping:        nil,
	storehook.RoomsAfter:  []chat.Room(nil),

	storehook.CreateSession:   nil,
	storehook.Session:         chat.Session{},
	storehook.SessionStatuses: map[string]chat.SessionStatus(nil),
	storehook.RevokeSession:   nil,
	storehook.RevokeSessions:  nil,
	storehook.SetPassword:     nil,
	storehook.DeleteUser:      nil,
}

func TestEveryMethodPassesThroughTheHookWithItsOpName(t *testing.T) {
	t.Parallel()
	for _, c := range calls {
		t.Run(c.op, func(t *testing.T) {
			t.Parallel()
			next := &fakeStore{err: errors.New("store says no")}
			var ops []string
			s := storehook.Wrap(next, func(ctx context.Context, op string, call func(context.Context) error) error {
				ops = append(ops, op)
				return call(context.WithValue(ctx, hookKey{}, op))
			})

			got, err := c.make(context.Background(), s)
			if !errors.Is(err, next.err) {
				t.Errorf("got error %v, want the store's %v", err, next.err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got results %#v, want the store's %#v", got, c.want)
			}
			if want := []string{c.op}; !reflect.DeepEqual(ops, want) {
				t.Errorf("the hook was told %v, want %v", ops, want)
			}
			if want := []string{c.op}; !reflect.DeepEqual(next.calls, want) {
				t.Errorf("the store got calls %v with the hook's context, want %v", next.calls, want)
			}
			if !reflect.DeepEqual(next.args, c.args) {
				t.Errorf("the store got arguments %#v, want %#v", next.args, c.args)
			}
		})
	}
}

func TestAHookThatDoesNotCallGivesItsErrorAndZeroResults(t *testing.T) {
	t.Parallel()
	refused := errors.New("refused by the hook")
	for _, c := range calls {
		t.Run(c.op, func(t *testing.T) {
			t.Parallel()
			next := &fakeStore{}
			s := storehook.Wrap(next, func(context.Context, string, func(context.Context) error) error {
				return refused
			})

			got, err := c.make(context.Background(), s)
			if !errors.Is(err, refused) {
				t.Errorf("got error %v, want %v", err, refused)
			}
			if want := zeroOf[c.op]; !reflect.DeepEqual(got, want) {
				t.Errorf("got results %#v, want zero values %#v", got, want)
			}
			if len(next.calls) != 0 {
				t.Errorf("the store got calls %v, want none", next.calls)
			}
		})
	}
}

// fakeStore returns fixed results and err from every method, and records
// the methods called with the hook's context (tagged with the op name) and
// the arguments of the last call.
type fakeStore struct {
	err   error
	calls []string
	args  []any
}

func (s *fakeStore) record(ctx context.Context, args ...any) {
	if op, ok := ctx.Value(hookKey{}).(string); ok {
		s.calls = append(s.calls, op)
	}
	s.args = args
}

func (s *fakeStore) CreateUser(ctx context.Context, u chat.User, hash string) error {
	s.record(ctx, u, hash)
	return s.err
}

func (s *fakeStore) Credentials(ctx context.Context, username string) (chat.User, string, error) {
	s.record(ctx, username)
	return alice, "hash", s.err
}

func (s *fakeStore) CreateRoom(ctx context.Context, r chat.Room) (chat.Room, error) {
	s.record(ctx, r)
	return lobby, s.err
}

func (s *fakeStore) Room(ctx context.Context, id string) (chat.Room, error) {
	s.record(ctx, id)
	return lobby, s.err
}

func (s *fakeStore) Rooms(ctx context.Context) ([]chat.Room, error) {
	s.record(ctx)
	return []chat.Room{lobby}, s.err
}

func (s *fakeStore) RoomsAfter(ctx context.Context, after string, limit int) ([]chat.Room, error) {
	s.record(ctx, after, limit)
	return []chat.Room{lobby}, s.err
}

func (s *fakeStore) LastSeqs(ctx context.Context, rooms []string) (map[string]int64, error) {
	s.record(ctx, rooms)
	return map[string]int64{"r1": 7}, s.err
}

func (s *fakeStore) Append(ctx context.Context, d chat.Draft) (chat.Message, bool, error) {
	s.record(ctx, d)
	return message, true, s.err
}

func (s *fakeStore) History(ctx context.Context, room string, p chat.Page) ([]chat.Message, bool, error) {
	s.record(ctx, room, p)
	return []chat.Message{message}, true, s.err
}

func (s *fakeStore) SaveTicket(ctx context.Context, t chat.Ticket) error {
	s.record(ctx, t)
	return s.err
}

func (s *fakeStore) TakeTicket(ctx context.Context, hash string, now time.Time) (chat.Ticket, error) {
	s.record(ctx, hash, now)
	return ticket, s.err
}

func (s *fakeStore) Ping(ctx context.Context) error {
	s.record(ctx)
	return s.err
}

func (s *fakeStore) CreateSession(ctx context.Context, sess chat.Session) error {
	s.record(ctx, sess)
	return s.err
}

func (s *fakeStore) Session(ctx context.Context, id string, now time.Time) (chat.Session, error) {
	s.record(ctx, id, now)
	return session, s.err
}

func (s *fakeStore) SessionStatuses(ctx context.Context, ids []string, now time.Time) (map[string]chat.SessionStatus, error) {
	s.record(ctx, ids, now)
	return map[string]chat.SessionStatus{"s2": chat.SessionUserDeleted}, s.err
}

func (s *fakeStore) RevokeSession(ctx context.Context, id string) error {
	s.record(ctx, id)
	return s.err
}

func (s *fakeStore) RevokeSessions(ctx context.Context, userID, except string) error {
	s.record(ctx, userID, except)
	return s.err
}

func (s *fakeStore) SetPassword(ctx context.Context, userID, hash string) error {
	s.record(ctx, userID, hash)
	return s.err
}

func (s *fakeStore) DeleteUser(ctx context.Context, userID string) error {
	s.record(ctx, userID)
	return s.err
}
