package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/testenv"
	"github.com/parleychat/parley/server/internal/chat"
)

func TestOpenMigratesAnEmptyDatabase(t *testing.T) {
	t.Parallel()
	s := mustOpenStore(t)

	for _, table := range []string{"users", "rooms", "messages", "ws_tickets", "sessions"} {
		if n := mustCount(t, s, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = $1`, table); n != 1 {
			t.Errorf("table %s: got %d, want 1", table, n)
		}
	}
	if got, want := schemaVersion(t, s), latestVersion; got != want {
		t.Errorf("schema version: got %d, want %d", got, want)
	}
}

func TestOpenTwiceOnTheSameDatabaseKeepsItsData(t *testing.T) {
	t.Parallel()
	url := testenv.PostgresURL(t)
	first := mustOpen(t, url, Options{})
	room := mustCreateRoom(t, first, "general")
	first.Close()

	second := mustOpen(t, url, Options{})

	if got, want := schemaVersion(t, second), latestVersion; got != want {
		t.Errorf("schema version: got %d, want %d", got, want)
	}
	if _, err := second.Room(testCtx(t), room.ID); err != nil {
		t.Errorf("Room after reopening: got %v, want the room", err)
	}
}

func TestOpenConcurrentlyOnAFreshDatabase(t *testing.T) {
	t.Parallel()
	const replicas = 4
	url := testenv.PostgresURL(t)

	stores := make([]*Store, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() { stores[i], errs[i] = Open(testCtx(t), url, Options{}) })
	}
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		t.Cleanup(stores[i].Close)
	}
	if t.Failed() {
		return
	}
	if got, want := schemaVersion(t, stores[0]), latestVersion; got != want {
		t.Errorf("schema version: got %d, want %d", got, want)
	}
}

// latestVersion is the number of the newest file in migrations/.
const latestVersion = 2

func schemaVersion(t *testing.T, s *Store) int {
	t.Helper()
	return mustCount(t, s, `SELECT version FROM `+versionTable)
}

func TestRestartKeepsHistory(t *testing.T) {
	t.Parallel()
	url := testenv.PostgresURL(t)
	s := mustOpen(t, url, Options{})
	room, sent := mustFillRoom(t, s, "general", 5)
	u := mustCreateUser(t, s, "late")
	s.Close()

	s = mustOpen(t, url, Options{})

	got, _, err := s.History(testCtx(t), room.ID, chat.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(sent) {
		t.Fatalf("History after restart: got seqs %v, want %v", seqsOf(got), seqsOf(sent))
	}
	for i := range got {
		if got[i] != sent[i] {
			t.Errorf("History after restart: got %+v, want %+v", got[i], sent[i])
		}
	}
	if r, err := s.Room(testCtx(t), room.ID); err != nil || r.LastSeq != 5 {
		t.Errorf("Room after restart: got last seq %d (error %v), want 5", r.LastSeq, err)
	}
	if m, _ := mustAppend(t, s, draft(room, u, "after")); m.Seq != 6 {
		t.Errorf("Append after restart: got seq %d, want 6", m.Seq)
	}
}

func TestCloseAnswersEveryQueuedAppend(t *testing.T) {
	t.Parallel()
	const senders, perSender = 50, 20
	url := testenv.PostgresURL(t)
	s := mustOpen(t, url, Options{MaxBatch: 8}) // small batches leave work queued at Close
	room := mustCreateRoom(t, s, "general")
	u := mustCreateUser(t, s, "alice")

	type outcome struct {
		msg chat.Message
		err error
	}
	outcomes := make(chan outcome, senders*perSender)
	started := make(chan struct{}, senders)
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			started <- struct{}{}
			for j := range perSender {
				m, _, err := s.Append(testCtx(t), draft(room, u, fmt.Sprintf("%d-%d", i, j)))
				outcomes <- outcome{m, err}
				if err != nil {
					return
				}
			}
		})
	}
	for range senders {
		<-started
	}
	// Close once the writers are at work, with most appends still queued
	// behind the batch in hand.
	testenv.Eventually(t, "a first batch of appends", func() bool { return s.Stats().Batches > 0 })
	s.Close()
	s.Close() // a second Close is a no-op

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Append still waiting 20s after Close")
	}
	close(outcomes)

	s = mustOpen(t, url, Options{})
	stored, failed := 0, 0
	for o := range outcomes {
		if o.err != nil {
			failed++
			if !errors.Is(o.err, chat.ErrUnavailable) {
				t.Errorf("Append during Close: got error %v, want ErrUnavailable", o.err)
			}
			continue
		}
		stored++
		if n := mustCount(t, s, `SELECT count(*) FROM messages WHERE id = $1 AND seq = $2`, o.msg.ID, o.msg.Seq); n != 1 {
			t.Errorf("message %s (seq %d) was answered but is not stored", o.msg.ID, o.msg.Seq)
		}
	}
	if n := mustCount(t, s, `SELECT count(*) FROM messages`); n != stored {
		t.Errorf("got %d messages stored, want the %d answered", n, stored)
	}
	t.Logf("%d appends stored before Close, %d refused", stored, failed)
}

func TestAfterCloseEverythingIsUnavailable(t *testing.T) {
	t.Parallel()
	s := mustOpenStore(t)
	room := mustCreateRoom(t, s, "general")
	u := mustCreateUser(t, s, "alice")
	s.Close()

	ctx := testCtx(t)
	calls := map[string]func() error{
		"Append": func() error { _, _, err := s.Append(ctx, draft(room, u, "c1")); return err },
		"Room":   func() error { _, err := s.Room(ctx, room.ID); return err },
		"LastSeqs": func() error {
			_, err := s.LastSeqs(ctx, []string{room.ID})
			return err
		},
		"History": func() error {
			_, _, err := s.History(ctx, room.ID, chat.Page{Limit: 1})
			return err
		},
		"Ping": func() error { return s.Ping(ctx) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, chat.ErrUnavailable) {
			t.Errorf("%s after Close: got %v, want ErrUnavailable", name, err)
		}
	}
}

func TestUnreachableDatabaseIsUnavailable(t *testing.T) {
	t.Parallel()
	dbURL := testenv.PostgresURL(t)

	t.Run("refused at open", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if _, err := Open(ctx, withHost(t, dbURL, testenv.ClosedAddr(t)), Options{}); !errors.Is(err, chat.ErrUnavailable) {
			t.Errorf("Open: got %v, want ErrUnavailable", err)
		}
	})

	t.Run("hung at open", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		_, err := Open(ctx, withHost(t, dbURL, testenv.StartBlackHole(t)), Options{})
		if !errors.Is(err, chat.ErrUnavailable) {
			t.Errorf("Open: got %v, want ErrUnavailable", err)
		}
	})

	t.Run("gone after open", func(t *testing.T) {
		p := testenv.StartProxy(t, hostPort(t, dbURL))
		s := mustOpen(t, withHost(t, dbURL, p.Addr()), Options{})
		room := mustCreateRoom(t, s, "general")
		u := mustCreateUser(t, s, "alice")
		mustAppend(t, s, draft(room, u, "before"))

		p.Cut()

		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		calls := map[string]func() error{
			"Ping":   func() error { return s.Ping(ctx) },
			"Append": func() error { _, _, err := s.Append(ctx, draft(room, u, "after")); return err },
			"Room":   func() error { _, err := s.Room(ctx, room.ID); return err },
			"Rooms":  func() error { _, err := s.Rooms(ctx); return err },
			"RoomsAfter": func() error {
				_, err := s.RoomsAfter(ctx, "", 10)
				return err
			},
			"LastSeqs": func() error {
				_, err := s.LastSeqs(ctx, []string{room.ID})
				return err
			},
			"History": func() error {
				_, _, err := s.History(ctx, room.ID, chat.Page{Limit: 10})
				return err
			},
			"CreateUser": func() error {
				return s.CreateUser(ctx, chat.User{ID: "u2", Username: "bob"}, "hash")
			},
		}
		for name, call := range calls {
			err := call()
			if !errors.Is(err, chat.ErrUnavailable) {
				t.Errorf("%s: got %v, want ErrUnavailable", name, err)
			}
			if ce, ok := errors.AsType[*chat.Error](err); ok && ce.Msg != "database unavailable" {
				t.Errorf("%s: got client message %q, want %q", name, ce.Msg, "database unavailable")
			}
		}
	})
}
