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
// own; subtests run one after another, never in parallel, so open may hand
// out one database that it empties each time.
//
// The suite creates users before it sends or issues tickets as them, and
// gives drafts and rooms times in UTC truncated to microseconds, the
// precision of a SQL timestamp.
func Run(t *testing.T, open func(t *testing.T) chat.Store) {
	t.Run("Users", func(t *testing.T) { testUsers(t, open) })
	t.Run("Rooms", func(t *testing.T) { testRooms(t, open) })
	t.Run("Append", func(t *testing.T) { testAppend(t, open) })
	t.Run("Idempotency", func(t *testing.T) { testIdempotency(t, open) })
	t.Run("ConcurrentAppend", func(t *testing.T) { testConcurrentAppend(t, open) })
	t.Run("History", func(t *testing.T) { testHistory(t, open) })
	t.Run("Tickets", func(t *testing.T) { testTickets(t, open) })
	t.Run("Ping", func(t *testing.T) {
		f := openFixture(t, open)
		if err := f.store.Ping(f.ctx); err != nil {
			t.Fatalf("Ping: got %v, want nil", err)
		}
	})
}

// opener is the function Run is given.
type opener = func(t *testing.T) chat.Store
