// Package report turns a load test run into what people read: a plain-text
// table for the terminal, JSON for tools, a self-contained HTML page, and the
// one-line progress report printed while the run goes.
package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/parleychat/parley/loadtest/ledger"
)

// Run is everything known about a finished run.
type Run struct {
	ID, Scenario, Target string
	Started              time.Time
	Duration             time.Duration
	Result               ledger.Result
	Thresholds           []Verdict
	Checks               []CheckVerdict
	Stages               []StageMark
	Generator            GeneratorStats
	Pacing               Pacing
	Knee                 *Knee // set by a ramp-to-knee run
}

// Pacing is how much the servers' rate limits held the generator back. A
// run that was paced measured the limits as much as the servers' speed:
// the report says so, so that waiting is not mistaken for slowness.
type Pacing struct {
	REST   Paced // calls answered 429 (setup: sign-ups, logins, rooms)
	Frames Paced // joins and sends answered rate_limited, and written again
}

// Paced counts the refusals waited out, the waits (a call may also wait
// for a slot behind others' refusals), and their time in all, summed over
// calls that waited at once.
type Paced struct {
	Refusals, Waits int64
	Waited          time.Duration
}

// Any reports whether the servers held the generator back at all.
func (p Pacing) Any() bool { return p.REST.Waits+p.Frames.Waits+p.REST.Refusals+p.Frames.Refusals > 0 }

// pacingLine says how the servers paced the generator.
func pacingLine(p Pacing) string {
	return fmt.Sprintf("Paced by the server: REST %s refusals (429), %s waits, %s in all · WebSocket %s frames refused as rate_limited and resent, %s in all (waits summed over calls waiting at once; ack latencies include them)",
		formatCount(p.REST.Refusals), formatCount(p.REST.Waits), formatDuration(p.REST.Waited),
		formatCount(p.Frames.Refusals), formatDuration(p.Frames.Waited))
}

// Verdict is a threshold and how the run did against it.
type Verdict struct {
	Text string  // as written in the scenario, e.g. "delivery_p99 < 250ms"
	Got  float64 // the measured value
	Unit string  // "" (a plain number), "s" (seconds) or "ratio" (shown as a percentage)
	Pass bool
}

// CheckVerdict is the outcome of a behavioural check (say, that a restart
// lost nothing), with the figures that back it.
type CheckVerdict struct {
	Name    string
	Pass    bool
	Detail  string
	Figures map[string]string
	// Table, when set, sets figures side by side: a header row, then a
	// row per comparison (say, what the users saw beside what the servers
	// counted).
	Table [][]string
}

// StageMark is where a stage of the scenario began, from the run's start.
type StageMark struct {
	Name   string
	Offset time.Duration
}

// GeneratorStats says how the load generator itself fared: if it could not
// keep to its schedule, the run measured the generator as much as the server.
type GeneratorStats struct {
	CPUSeconds                         float64 // the whole run, setup included
	LoadCores                          float64 // CPU while the load ran, in cores: what the generator could spare for more
	MaxSchedulingLag, P99SchedulingLag time.Duration
	Saturated                          bool
	Connections                        int
	Goroutines                         int
}

// Knee is where a ramp found the server's limit: the rate at which it broke
// and which threshold broke first.
type Knee struct {
	Rate   float64 // messages per second
	Offset time.Duration
	Broke  string
}

// Pass reports whether every threshold and every check passed.
func (r Run) Pass() bool {
	for _, v := range r.Thresholds {
		if !v.Pass {
			return false
		}
	}
	for _, c := range r.Checks {
		if !c.Pass {
			return false
		}
	}
	return true
}

func passFail(pass bool) string {
	if pass {
		return "PASS"
	}
	return "FAIL"
}

// formatDuration shows a latency with three significant figures, in the unit
// a person would pick: 850µs, 12.3ms, 1.20s, 2m5s.
func formatDuration(d time.Duration) string {
	if d < 0 {
		return "-" + formatDuration(-d)
	}
	// Each unit up to where three significant figures would round to 1000 of it.
	us := float64(d) / float64(time.Microsecond)
	switch {
	case d == 0:
		return "0"
	case us < 999.5:
		return sig3(us) + "µs"
	case us < 999.5e3:
		return sig3(us/1e3) + "ms"
	case us < 59.95e6:
		return sig3(us/1e6) + "s"
	default:
		return formatOffset(d.Round(time.Second))
	}
}

// sig3 formats v (0 < v < 999.5) with three significant figures.
func sig3(v float64) string {
	switch {
	case v >= 99.95:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 9.995:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// formatOffset shows a time into the run: 45s, 2m, 1h2m30s.
func formatOffset(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// formatCount groups digits in thousands: 1,234,567.
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	start := 0
	if n < 0 {
		start = 1
	}
	var b strings.Builder
	for i, c := range s {
		if i > start && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// formatRate shows a per-second rate.
func formatRate(v float64) string {
	if v >= 100 || v == math.Trunc(v) {
		return formatCount(int64(math.Round(v)))
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// formatValue shows a threshold's measured value in its unit.
func formatValue(v float64, unit string) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Sprint(v)
	case unit == "s":
		return formatDuration(time.Duration(v * float64(time.Second)))
	case unit == "ratio":
		return strconv.FormatFloat(v*100, 'g', 4, 64) + "%"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return formatCount(int64(v))
	default:
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
}

// saturationWarning explains what a saturated generator means for the figures.
func saturationWarning(g GeneratorStats) string {
	return fmt.Sprintf("WARNING: the load generator was saturated (scheduling lag p99 %s, max %s): "+
		"it sent late, so the latencies include its own delay and the server got less load than planned.",
		formatDuration(g.P99SchedulingLag), formatDuration(g.MaxSchedulingLag))
}
