package stats

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/parleychat/parley/loadtest/ledger"
	"github.com/parleychat/parley/loadtest/report"
)

// PrintProgress writes a progress line to w every second until ctx ends.
func PrintProgress(ctx context.Context, w io.Writer, l *ledger.Ledger, c *Counters, started time.Time) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			fmt.Fprintln(w, report.ProgressLine(l.Snapshot(now), int(c.Connections.Load()), now.Sub(started)))
		}
	}
}
