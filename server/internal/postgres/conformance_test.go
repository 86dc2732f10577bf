package postgres

import (
	"testing"

	"github.com/parleychat/parley/internal/testenv"
	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/chat/storetest"
)

func TestConformance(t *testing.T) {
	// The suite opens a store per subtest, one after another; emptying one
	// database is much faster than creating one each time.
	url := testenv.PostgresURL(t)
	storetest.Run(t, func(t *testing.T) chat.Store {
		s := mustOpen(t, url, Options{})
		if _, err := s.pool.Exec(testCtx(t), `TRUNCATE users, rooms, messages, ws_tickets`); err != nil {
			t.Fatalf("emptying the database: %v", err)
		}
		return s
	})
}
