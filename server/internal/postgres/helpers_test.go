package postgres

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/testenv"
	"github.com/parleychat/parley/server/internal/chat"
)

// mustOpenStore opens a store on a fresh database of its own, closed when the
// test ends.
func mustOpenStore(t testing.TB) *Store {
	t.Helper()
	return mustOpen(t, testenv.PostgresURL(t), Options{})
}

// mustOpen opens a store on url, closed when the test ends.
func mustOpen(t testing.TB, url string, opts Options) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, url, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// testCtx is the context of a test's calls: they must not hang it.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustCreateUser(t testing.TB, s *Store, name string) chat.User {
	t.Helper()
	u := chat.User{ID: chat.NewID(time.Now()), Username: name}
	if err := s.CreateUser(testCtx(t), u, "hash-of-"+name); err != nil {
		t.Fatalf("CreateUser(%q): %v", name, err)
	}
	return u
}

func mustCreateRoom(t testing.TB, s *Store, name string) chat.Room {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	r, err := s.CreateRoom(testCtx(t), chat.Room{ID: chat.NewID(now), Name: name, CreatedAt: now})
	if err != nil {
		t.Fatalf("CreateRoom(%q): %v", name, err)
	}
	return r
}

// draft is a message from u to room; its client id is made from clientID.
func draft(room chat.Room, u chat.User, clientID string) chat.Draft {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return chat.Draft{ID: chat.NewID(now), Room: room.ID, ClientID: clientID, User: u, Body: "body of " + clientID, TS: now}
}

func mustAppend(t testing.TB, s *Store, d chat.Draft) (chat.Message, bool) {
	t.Helper()
	m, created, err := s.Append(testCtx(t), d)
	if err != nil {
		t.Fatalf("Append(%q): %v", d.ClientID, err)
	}
	return m, created
}

// mustFillRoom creates a room and sends it n messages, returned in seq order.
func mustFillRoom(t testing.TB, s *Store, name string, n int) (chat.Room, []chat.Message) {
	t.Helper()
	room := mustCreateRoom(t, s, name)
	u := mustCreateUser(t, s, name+"-user")
	msgs := make([]chat.Message, n)
	for i := range msgs {
		msgs[i], _ = mustAppend(t, s, draft(room, u, fmt.Sprint("c", i+1)))
	}
	return room, msgs
}

// mustReadAll pages forward through a room's whole history.
func mustReadAll(t testing.TB, s *Store, roomID string) []chat.Message {
	t.Helper()
	var all []chat.Message
	for cursor := int64(0); ; {
		page, hasMore, err := s.History(testCtx(t), roomID, chat.Page{Cursor: cursor, Limit: 500})
		if err != nil {
			t.Fatalf("History(cursor %d): %v", cursor, err)
		}
		all = append(all, page...)
		if !hasMore || len(page) == 0 {
			return all
		}
		cursor = page[len(page)-1].Seq
	}
}

// mustCount runs a count(*) query.
func mustCount(t testing.TB, s *Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(testCtx(t), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func seqsOf(msgs []chat.Message) []int64 {
	seqs := make([]int64, len(msgs))
	for i, m := range msgs {
		seqs[i] = m.Seq
	}
	return seqs
}

// withHost returns dbURL pointing at addr instead of its own host.
func withHost(t testing.TB, dbURL, addr string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	return u.String()
}

// hostPort returns the address of dbURL's database server.
func hostPort(t testing.TB, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "5432")
	}
	return u.Host
}
