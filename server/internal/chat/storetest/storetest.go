// Package storetest is a conformance suite for chat.Store: every store (in
// memory, PostgreSQL) runs it, so the code above the store can rely on the
// contract documented on the interface whichever store it is given.
//
// A store's test calls Run with a function that opens a fresh, empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) chat.Store { return memstore.New(memstore.Options{}) })
//	}
package storetest

import (
	"testing"

	"github.com/parleychat/parley/server/internal/chat"
)

// Run checks that the stores made by open keep the chat.Store contract.
//
// open returns a fresh, empty store and arranges with t.Cleanup for whatever
// the store needs released. Every subtest that writes opens a store of its
// own, and such subtests run in parallel, as many at a time as -parallel
// allows: open must not hand a store to one while another still uses it. A
// pool of databases, each emptied before it is handed out again, will do.
//
// The suite creates users before it sends or issues tickets as them, and
// gives drafts and rooms times in UTC truncated to microseconds, the
// precision of a SQL timestamp.
func Run(t *testing.T, open func(t *testing.T) chat.Store) {
	for _, group := range []struct {
		name string
		test func(*testing.T, opener)
	}{
		{"Users", testUsers},
		{"Rooms", testRooms},
		{"RoomPages", testRoomPages},
		{"Append", testAppend},
		{"Idempotency", testIdempotency},
		{"ConcurrentAppend", testConcurrentAppend},
		{"History", testHistory},
		{"Tickets", testTickets},
		{"Sessions", testSessions},
		{"DeletedUsers", testDeletedUsers},
	} {
		t.Run(group.name, func(t *testing.T) {
			t.Parallel()
			group.test(t, open)
		})
	}
	t.Run("Ping", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		if err := f.store.Ping(f.ctx); err != nil {
			t.Fatalf("Ping: got %v, want nil", err)
		}
	})
}

// opener is the function Run is given.
type opener = func(t *testing.T) chat.Store
