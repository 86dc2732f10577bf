package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/parleychat/parley/server/internal/chat"
)

func TestHistoryPages(t *testing.T) {
	t.Parallel()
	s := mustOpenStore(t)
	room, sent := mustFillRoom(t, s, "general", 10)
	empty := mustCreateRoom(t, s, "empty")

	for _, tc := range []struct {
		name        string
		room        string
		page        chat.Page
		wantSeqs    []int64
		wantHasMore bool
	}{
		{"forward from the start", room.ID, chat.Page{Limit: 4}, []int64{1, 2, 3, 4}, true},
		{"forward to exactly the end", room.ID, chat.Page{Cursor: 6, Limit: 4}, []int64{7, 8, 9, 10}, false},
		{"forward past the end", room.ID, chat.Page{Cursor: 8, Limit: 4}, []int64{9, 10}, false},
		{"forward from the newest", room.ID, chat.Page{Cursor: 10, Limit: 4}, []int64{}, false},
		{"forward with a zero limit tells only whether there is more", room.ID, chat.Page{Cursor: 3}, []int64{}, true},
		{"backward from the top", room.ID, chat.Page{Backward: true, Cursor: math.MaxInt64, Limit: 4}, []int64{7, 8, 9, 10}, true},
		{"backward from the middle", room.ID, chat.Page{Backward: true, Cursor: 7, Limit: 3}, []int64{4, 5, 6}, true},
		{"backward to exactly the start", room.ID, chat.Page{Backward: true, Cursor: 5, Limit: 4}, []int64{1, 2, 3, 4}, false},
		{"backward past the start", room.ID, chat.Page{Backward: true, Cursor: 3, Limit: 4}, []int64{1, 2}, false},
		{"backward from the oldest", room.ID, chat.Page{Backward: true, Cursor: 1, Limit: 4}, []int64{}, false},
		{"an empty room forward", empty.ID, chat.Page{Limit: 4}, []int64{}, false},
		{"an empty room backward", empty.ID, chat.Page{Backward: true, Cursor: math.MaxInt64, Limit: 4}, []int64{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, hasMore, err := s.History(testCtx(t), tc.room, tc.page)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(seqsOf(got), tc.wantSeqs) || hasMore != tc.wantHasMore {
				t.Errorf("got seqs %v hasMore=%v, want %v hasMore=%v", seqsOf(got), hasMore, tc.wantSeqs, tc.wantHasMore)
			}
			for _, m := range got {
				if m != sent[m.Seq-1] {
					t.Errorf("got %+v, want %+v as sent", m, sent[m.Seq-1])
				}
			}
		})
	}

	t.Run("an unknown room is not found", func(t *testing.T) {
		for _, p := range []chat.Page{{Limit: 4}, {Backward: true, Cursor: math.MaxInt64, Limit: 4}} {
			if _, _, err := s.History(testCtx(t), "nope", p); !errors.Is(err, chat.ErrNotFound) {
				t.Errorf("History(%+v): got %v, want ErrNotFound", p, err)
			}
		}
	})
}

func TestNamesAreTakenInAnyCase(t *testing.T) {
	t.Parallel()
	s := mustOpenStore(t)
	mustCreateUser(t, s, "Alice")
	mustCreateRoom(t, s, "General")
	ctx := testCtx(t)

	err := s.CreateUser(ctx, chat.User{ID: "u2", Username: "alice"}, "hash")
	if ce, ok := errors.AsType[*chat.Error](err); !ok || !errors.Is(ce.Kind, chat.ErrConflict) || ce.Msg != "username taken" {
		t.Errorf("CreateUser(alice): got %v, want ErrConflict: username taken", err)
	}
	_, err = s.CreateRoom(ctx, chat.Room{ID: "r2", Name: "GENERAL", CreatedAt: time.Now()})
	if ce, ok := errors.AsType[*chat.Error](err); !ok || !errors.Is(ce.Kind, chat.ErrConflict) || ce.Msg != "room name taken" {
		t.Errorf("CreateRoom(GENERAL): got %v, want ErrConflict: room name taken", err)
	}
	if u, hash, err := s.Credentials(ctx, "ALICE"); err != nil || u.Username != "Alice" || hash != "hash-of-Alice" {
		t.Errorf("Credentials(ALICE): got %+v %q %v, want Alice's", u, hash, err)
	}
}

func TestRoomsAreListedOldestFirst(t *testing.T) {
	t.Parallel()
	s := mustOpenStore(t)
	base := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	// Created out of order, and two at the same instant, ordered by id.
	for _, r := range []chat.Room{
		{ID: "c", Name: "third", CreatedAt: base.Add(time.Second)},
		{ID: "b", Name: "second", CreatedAt: base},
		{ID: "a", Name: "first", CreatedAt: base},
	} {
		if _, err := s.CreateRoom(testCtx(t), r); err != nil {
			t.Fatal(err)
		}
	}

	rooms, err := s.Rooms(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rooms {
		names = append(names, r.Name)
	}
	if want := []string{"first", "second", "third"}; !slices.Equal(names, want) {
		t.Errorf("got %v, want %v", names, want)
	}
	if got := rooms[0].CreatedAt; got != base {
		t.Errorf("got created at %v, want %v in UTC", got, base)
	}
}

func TestSaveTicketSweepsExpiredTickets(t *testing.T) {
	t.Parallel()
	s := mustOpenStore(t)
	u := mustCreateUser(t, s, "alice")
	now := time.Now()
	save := func(hash string, expires time.Time) {
		t.Helper()
		if err := s.SaveTicket(testCtx(t), chat.Ticket{Hash: hash, User: u, SessionExpires: expires, Expires: expires}); err != nil {
			t.Fatal(err)
		}
	}
	s.nextSweep.Store(math.MaxInt64) // no sweep yet
	save("stale", now.Add(-time.Hour))
	save("fresh", now.Add(time.Minute))
	if n := mustCount(t, s, `SELECT count(*) FROM ws_tickets`); n != 2 {
		t.Fatalf("got %d tickets, want 2", n)
	}

	s.nextSweep.Store(0) // a sweep is due
	save("fresher", now.Add(time.Minute))

	if n := mustCount(t, s, `SELECT count(*) FROM ws_tickets WHERE hash = 'stale'`); n != 0 {
		t.Errorf("got the expired ticket still stored, want it swept")
	}
	if n := mustCount(t, s, `SELECT count(*) FROM ws_tickets`); n != 2 {
		t.Errorf("got %d tickets, want the 2 unexpired", n)
	}
}

func TestIsUnavailable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"refused connection", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{"connection cut", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), true},
		{"server shutting down", &pgconn.PgError{Code: "57P03", Message: "the database system is shutting down"}, true},
		{"administrator terminated", &pgconn.PgError{Code: "57P01"}, true},
		{"connection exception", &pgconn.PgError{Code: "08006"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"caller cancelled", fmt.Errorf("query: %w", context.Canceled), false},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"bad input", &pgconn.PgError{Code: "22021"}, false},
		{"plain error", errors.New("boom"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isUnavailable(tc.err); got != tc.want {
				t.Errorf("isUnavailable(%v): got %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestUnavailableKeepsKindAndCause(t *testing.T) {
	t.Parallel()
	cause := io.ErrUnexpectedEOF
	err := classify("history", cause)
	if !errors.Is(err, chat.ErrUnavailable) || !errors.Is(err, cause) {
		t.Errorf("got %v, want it to be both ErrUnavailable and its cause", err)
	}
}

// A page of the room list is a range of the primary key's index, read in
// order and cut at the limit: no scan of the table, no sort of every
// room, whatever their number.
func TestRoomsAfterIsAKeysetReadOfTheIndex(t *testing.T) {
	t.Parallel()
	s := mustOpenStore(t)
	ctx := testCtx(t)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	// With a handful of rows a sequential scan is cheapest; forbidding it
	// shows whether the index can serve the query as written.
	if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	var plan []string
	rows, _ := tx.Query(ctx, "EXPLAIN "+roomsAfterQuery, chat.NewID(time.Now()), 100)
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprint(plan)
	if !strings.Contains(text, "Index Scan using rooms_pkey") || strings.Contains(text, "Sort") {
		t.Errorf("got the plan %s, want an index scan of rooms_pkey and no sort", text)
	}
}
