package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/parleychat/parley/loadtest/ledger"
)

// ProgressLine is the line printed every second while a run goes: elapsed
// time, the send rate, connections, acks, the last interval's p99s and the
// errors so far. Losses are only known after the drain, so it shows instead
// how many deliveries are still awaited; anomalies appear only once they occur.
func ProgressLine(p ledger.Progress, conns int, elapsed time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%6s  %s msg/s  conns %s  acked %s  ack p99 %s  delivery p99 %s  errors %s  awaiting %s",
		formatOffset(elapsed.Round(time.Second)), formatRate(p.SendRate), formatCount(int64(conns)),
		formatCount(p.Acked), formatDuration(p.AckP99), formatDuration(p.DeliveryP99),
		formatCount(p.AckErrors), formatCount(p.Awaiting))
	for _, a := range []struct {
		name string
		n    int64
	}{
		{"connect errors", p.ConnectErrors},
		{"duplicates", p.Duplicates},
		{"reordered", p.Reordered},
	} {
		if a.n > 0 {
			fmt.Fprintf(&b, "  %s %s", a.name, formatCount(a.n))
		}
	}
	return b.String()
}
