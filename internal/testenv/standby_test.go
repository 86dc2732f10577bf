package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The primary sees the standby as a real one: streaming, with a replay
// position, and gone once the test that started it has ended.
func TestStandbyStreamsUntilItsTestEnds(t *testing.T) {
	t.Parallel()
	dsn := PostgresURL(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// rows counts the standby's rows in pg_stat_replication, and says
	// whether they are streaming and have replayed up to lsn.
	rows := func(name, lsn string) (n int, streamingPastLSN bool) {
		t.Helper()
		err := conn.QueryRow(ctx, `SELECT count(*), coalesce(bool_and(state = 'streaming' AND replay_lsn >= $2::pg_lsn), false)
			FROM pg_stat_replication WHERE application_name = $1`, name, lsn).Scan(&n, &streamingPastLSN)
		if err != nil {
			t.Fatal(err)
		}
		return n, streamingPastLSN
	}

	var name string
	t.Run("standby", func(t *testing.T) {
		name = StartStandby(t, dsn)
		// WAL written after the start reaches the standby, which reports
		// it as replayed.
		var lsn string
		if err := conn.QueryRow(ctx, "SELECT pg_switch_wal()::text").Scan(&lsn); err != nil {
			t.Fatal(err)
		}
		Eventually(t, "the standby streaming, replayed past "+lsn, func() bool {
			n, ok := rows(name, lsn)
			return n == 1 && ok
		})
	})
	Eventually(t, "the standby gone from pg_stat_replication", func() bool {
		n, _ := rows(name, "0/0")
		return n == 0
	})
}

func TestParseLSN(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]uint64{"0/0": 0, "0/1D744C8": 0x1D744C8, "16/B374D848": 0x16<<32 | 0xB374D848} {
		if got, err := parseLSN(in); err != nil || got != want {
			t.Errorf("parseLSN(%q) = %#x, %v; want %#x", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "1D744C8", "x/y"} {
		if _, err := parseLSN(bad); err == nil {
			t.Errorf("parseLSN(%q) accepted it", bad)
		}
	}
}
