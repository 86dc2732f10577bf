package driver

import (
	"fmt"
	"time"

	"github.com/parleychat/parley/loadtest/ledger"
	"github.com/parleychat/parley/loadtest/report"
	"github.com/parleychat/parley/loadtest/scenario"
	"github.com/parleychat/parley/loadtest/schedule"
)

// knee is the knee of a scenario whose load rises (a ramp or steps) and
// that bounds delivery p99: the highest send rate before p99 broke that
// bar. It is nil for other scenarios, and when the bar never broke.
func knee(sc *scenario.Scenario, res ledger.Result) *report.Knee {
	limit, ok := kneeBar(sc)
	if !ok {
		return nil
	}
	return findKnee(res.Timeline, res.Interval, limit)
}

// kneeBar is the delivery p99 limit of a scenario whose load rises (a ramp
// or steps): the bar its knee is read against.
func kneeBar(sc *scenario.Scenario) (time.Duration, bool) {
	rising := false
	for _, s := range sc.Stages {
		rising = rising || s.Shape == schedule.Ramp || s.Shape == schedule.Steps
	}
	for _, t := range sc.Thresholds {
		if rising && t.Metric == "delivery_p99" && (t.Op == "<" || t.Op == "<=") {
			return time.Duration(t.Value * float64(time.Second)), true
		}
	}
	return 0, false
}

// sustained is how many intervals in a row must break the bar before the
// knee is called: one slow second is noise, three are a trend.
const sustained = 3

// findKnee reads the knee off a rising load's timeline: the highest send
// rate of the intervals before delivery p99 first went above limit (or
// sends first failed) for sustained intervals in a row. It returns nil
// when the bar never broke, which means the run never reached the knee.
func findKnee(timeline []ledger.Point, interval, limit time.Duration) *report.Knee {
	best, bad := 0.0, 0
	for i, p := range timeline {
		var broke string
		switch {
		case p.Errors > 0:
			broke = fmt.Sprintf("%d sends failed", p.Errors)
		case p.DeliveryP99 > limit:
			broke = fmt.Sprintf("delivery p99 %v above %v", p.DeliveryP99.Round(time.Millisecond), limit)
		}
		if broke == "" {
			bad = 0
			best = max(best, float64(p.Sent)/interval.Seconds())
			continue
		}
		if bad++; bad == sustained {
			first := timeline[i-sustained+1]
			return &report.Knee{Rate: best, Offset: first.Offset, Broke: broke}
		}
	}
	return nil
}
