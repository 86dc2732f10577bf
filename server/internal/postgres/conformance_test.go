package postgres

import (
	"runtime"
	"testing"

	"github.com/parleychat/parley/internal/testenv"
	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/chat/storetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	// The suite's subtests run in parallel, each on a store of its own.
	// Emptying a database is much faster than creating one, so there are as
	// many databases as subtests that run at once (-parallel defaults to
	// GOMAXPROCS), each emptied as it is handed out; a subtest that finds
	// none free waits for one.
	databases := make(chan string, runtime.GOMAXPROCS(0))
	for range cap(databases) {
		databases <- testenv.PostgresURL(t)
	}
	storetest.Run(t, func(t *testing.T) chat.Store {
		url := <-databases
		t.Cleanup(func() { databases <- url })
		s := mustOpen(t, url, Options{})
		if _, err := s.pool.Exec(testCtx(t), `TRUNCATE users, rooms, messages, ws_tickets, sessions`); err != nil {
			t.Fatalf("emptying the database: %v", err)
		}
		return s
	})
}
