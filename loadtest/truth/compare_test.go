package truth

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// serverBounds are the server's latency buckets (docs/telemetry.md).
var serverBounds = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// defaults are the flags' default tolerances.
var defaults = Config{CountTolerance: 0.01, ShareTolerance: 0.01, ClockAllowance: 50 * time.Millisecond, Bounds: []float64{0.25, 1}}

// deliveries is a set of delivery latencies, as a server's histogram
// and as the generator's.
type deliveries []time.Duration

// sample is a target's read with acked sends and these deliveries in
// the server's buckets, started at start.
func (d deliveries) sample(start, acked float64) Sample {
	s := Sample{Started: start, Acked: acked, Delivered: float64(len(d))}
	for _, b := range append(serverBounds, math.Inf(1)) {
		n := 0.0
		for _, l := range d {
			if l.Seconds() <= b {
				n++
			}
		}
		s.Buckets = append(s.Buckets, Bucket{Le: b, Count: n})
	}
	return s
}

// hist is the generator's histogram of these latencies, in microseconds.
func (d deliveries) hist() *hdrhistogram.Histogram {
	h := hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)
	for _, l := range d {
		_ = h.RecordValue(int64(l / time.Microsecond))
	}
	return h
}

// spread is n deliveries of each latency.
func spread(n int, latencies ...time.Duration) deliveries {
	var out deliveries
	for _, l := range latencies {
		for range n {
			out = append(out, l)
		}
	}
	return out
}

// plus is each latency plus d: the same deliveries as the users time
// them, the wait the server does not see added.
func (d deliveries) plus(extra time.Duration) deliveries {
	out := make(deliveries, len(d))
	for i, l := range d {
		out[i] = l + extra
	}
	return out
}

// healthy is a run's server side: 100 sends, 300 deliveries spread over
// the buckets, on two replicas, none before the load.
var healthy = spread(100, 800*time.Microsecond, 4*time.Millisecond, 30*time.Millisecond)

// twoTargets is the interval of two replicas that counted these acks and
// deliveries between them, split about evenly.
func twoTargets(acked float64, d deliveries) Interval {
	half := len(d) / 2
	zero := deliveries{}
	return Interval{
		Targets: []string{"http://a/metrics", "http://b/metrics"},
		Before:  []Sample{zero.sample(1000, 0), zero.sample(2000, 0)},
		After:   []Sample{d[:half].sample(1000, acked-acked/2), d[half:].sample(2000, acked/2)},
	}
}

func seen(acked int64, d deliveries) Seen {
	return Seen{Acked: acked, Deliveries: int64(len(d)), Latency: d.hist()}
}

func TestCompareOneRunSideBySide(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		iv       Interval
		seen     Seen
		cfg      Config
		pass     bool
		failed   []string // the rows that fail
		note     string
		problems string
	}{
		{
			name: "the users wait a little longer than the servers time",
			iv:   twoTargets(100, healthy), seen: seen(100, healthy.plus(500*time.Microsecond)),
			cfg: defaults, pass: true,
		},
		{
			name: "the servers count deliveries to a connection that broke",
			iv:   twoTargets(100, healthy), seen: seen(100, healthy[:299]),
			cfg: defaults, pass: true,
		},
		{
			name: "the servers count more than the tolerance beyond what the users read",
			iv:   twoTargets(100, healthy), seen: seen(100, spread(97, 800*time.Microsecond, 4*time.Millisecond, 30*time.Millisecond)),
			cfg: defaults, failed: []string{"deliveries"},
		},
		{
			name: "the users read an ack the servers did not count",
			iv:   twoTargets(100, healthy), seen: seen(101, healthy),
			cfg: defaults, failed: []string{"sends acked"},
		},
		{
			name: "the servers report a third of the deliveries slower than 10s",
			iv:   twoTargets(100, append(spread(100, 11*time.Second), healthy[100:]...)), seen: seen(100, healthy),
			cfg:    defaults,
			failed: []string{"deliveries ≤ 1ms", "deliveries ≤ 2.5ms", "deliveries ≤ 5ms", "deliveries ≤ 10ms", "deliveries ≤ 25ms", "deliveries ≤ 50ms", "deliveries ≤ 100ms", "deliveries ≤ 250ms", "deliveries ≤ 500ms", "deliveries ≤ 1s", "deliveries ≤ 2.5s", "deliveries ≤ 5s", "deliveries ≤ 10s"},
		},
		{
			// 2% of the deliveries took 400ms for the users and 30ms by
			// the servers' clock: the servers' SLI hides a blown SLO.
			name: "the servers see deliveries fast that the users waited for",
			iv:   twoTargets(100, healthy), seen: seen(100, append(healthy[:294:294], spread(6, 400*time.Millisecond)...)),
			cfg: defaults, failed: []string{"deliveries ≤ 250ms"},
		},
		{
			name: "the same wait within the clock allowance",
			iv:   twoTargets(100, healthy), seen: seen(100, append(healthy[:294:294], spread(6, 400*time.Millisecond)...)),
			cfg: Config{CountTolerance: 0.01, ShareTolerance: 0.01, ClockAllowance: 200 * time.Millisecond, Bounds: []float64{0.25, 1}}, pass: true,
		},
		{
			name: "the same wait in fewer deliveries than the share tolerance",
			iv:   twoTargets(100, healthy), seen: seen(100, append(healthy[:297:297], spread(3, 400*time.Millisecond)...)),
			cfg: defaults, pass: true,
		},
		{
			// Every delivery waited 40ms more than the servers timed, and
			// under the allowance: the shares at 250ms are far apart, but
			// the servers' share under 250ms is the users' under 300ms.
			name: "a wait the servers do not see within the allowance",
			iv:   twoTargets(100, spread(100, 200*time.Millisecond, 220*time.Millisecond, 240*time.Millisecond)),
			seen: seen(100, spread(100, 240*time.Millisecond, 260*time.Millisecond, 280*time.Millisecond)),
			cfg:  defaults, pass: true,
		},
		{
			// At a bound of a few milliseconds the users' extra wait is
			// most of the latency: the servers may be far ahead there.
			name: "the servers ahead at a bound outside -sli-bounds",
			iv:   twoTargets(100, healthy), seen: seen(100, healthy.plus(3*time.Millisecond)),
			cfg: defaults, pass: true,
		},
		{
			name: "the users ahead within the share tolerance",
			iv:   twoTargets(100, append(spread(2, 300*time.Millisecond), healthy[2:]...)), seen: seen(100, healthy),
			cfg: defaults, pass: true,
		},
		{
			name: "no traffic at all",
			iv:   twoTargets(0, nil), seen: seen(0, nil),
			cfg: defaults, pass: true, note: "no deliveries on either side",
		},
		{
			name: "the servers counted traffic the users never saw",
			iv:   twoTargets(100, healthy), seen: seen(0, nil),
			cfg: defaults, failed: []string{"sends acked", "deliveries"}, note: "latency shares not compared",
		},
		{
			name:     "the servers could not be read after the load",
			iv:       Interval{Targets: []string{"http://a/metrics"}, Err: errString("connection refused")},
			seen:     seen(100, healthy),
			cfg:      defaults,
			problems: "reading the servers after the load: connection refused",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Compare(tt.cfg, tt.iv, tt.seen)
			if got := c.Pass(); got != tt.pass {
				t.Errorf("got pass %v, want %v", got, tt.pass)
			}
			if !strings.Contains(c.Problem, tt.problems) || (tt.problems == "" && c.Problem != "") {
				t.Errorf("got problem %q, want %q", c.Problem, tt.problems)
			}
			if !strings.Contains(c.Note, tt.note) || (tt.note == "" && c.Note != "") {
				t.Errorf("got note %q, want %q", c.Note, tt.note)
			}
			var failed []string
			for _, r := range c.Rows {
				if !r.Pass {
					failed = append(failed, r.What)
				}
			}
			if strings.Join(failed, "|") != strings.Join(tt.failed, "|") {
				t.Errorf("got failed rows %q, want %q\n%s", failed, tt.failed, table(c))
			}
			if c.Problem == "" && len(c.Rows) < 2 {
				t.Errorf("got %d rows, want the counts at least", len(c.Rows))
			}
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// A target that restarted between the reads no longer has counters that
// cover the run: the check fails and says so, rather than comparing
// numbers that mean nothing.
func TestCompareFailsOnARestartedTarget(t *testing.T) {
	t.Parallel()
	after := twoTargets(100, healthy)
	tests := []struct {
		name string
		edit func(iv *Interval)
		want string
	}{
		{"a new process start time", func(iv *Interval) { iv.After[1].Started = 2500 }, "http://b/metrics restarted during the run"},
		{"a counter that went back", func(iv *Interval) {
			iv.Before[0] = healthy.sample(0, 500)
			iv.After[0].Started = 0
		}, "http://a/metrics restarted during the run, so its counters do not cover it (acked sends 500, then 50"},
		{"a bucket that went back", func(iv *Interval) {
			iv.Before[0] = spread(1, time.Millisecond).sample(1000, 0)
			iv.After[0].Buckets[0].Count = 0
		}, "bucket le=0.001 went from 1 to 0"},
		{"bounds that differ between targets", func(iv *Interval) {
			iv.Before[1].Buckets = iv.Before[1].Buckets[1:]
			iv.After[1].Buckets = iv.After[1].Buckets[1:]
		}, "differ from http://a/metrics's"},
		{"bounds that changed", func(iv *Interval) { iv.After[0].Buckets = iv.After[0].Buckets[1:] }, "bounds changed during the run"},
		{"a target missing", func(iv *Interval) { iv.After = iv.After[:1] }, "read 2 targets before the load and 1 after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			iv := after
			iv.Before = cloneSamples(after.Before)
			iv.After = cloneSamples(after.After)
			tt.edit(&iv)
			c := Compare(defaults, iv, seen(100, healthy))
			if c.Pass() || !strings.Contains(c.Problem, tt.want) {
				t.Fatalf("got pass %v, problem %q; want a failure saying %q", c.Pass(), c.Problem, tt.want)
			}
			v := c.Verdict()
			if v.Pass || !strings.HasPrefix(v.Detail, "could not compare: ") {
				t.Errorf("got verdict %+v, want a failure that could not compare", v)
			}
		})
	}
}

func cloneSamples(in []Sample) []Sample {
	out := make([]Sample, len(in))
	for i, s := range in {
		out[i] = s
		out[i].Buckets = append([]Bucket(nil), s.Buckets...)
	}
	return out
}

// The verdict names every comparison that failed, with both figures and
// the rule, and its table sets every comparison side by side.
func TestVerdictSetsTheFiguresSideBySide(t *testing.T) {
	t.Parallel()
	skewed := append(spread(100, 11*time.Second), healthy[100:]...)
	v := Compare(defaults, twoTargets(100, skewed), seen(100, healthy)).Verdict()
	if v.Pass || v.Name != Name {
		t.Fatalf("got %+v, want a failed %s", v, Name)
	}
	want := "deliveries ≤ 250ms: users 100.00%, servers 66.67%, allowed users ≤ servers +1pp, servers ≤ users ≤ 300ms (100.00%) +1pp"
	if !strings.Contains(v.Detail, want) {
		t.Errorf("detail %q lacks %q", v.Detail, want)
	}
	if len(v.Table) != 1+2+len(serverBounds) {
		t.Fatalf("got %d table rows, want a header, two counts and one per bound:\n%v", len(v.Table), v.Table)
	}
	for _, row := range [][]string{
		{"", "users", "servers", "allowed", ""},
		{"sends acked", "100", "100", "users ≤ servers ≤ users +1%", "PASS"},
		{"deliveries", "300", "300", "users ≤ servers ≤ users +1%", "PASS"},
		{"deliveries ≤ 1ms", "33.33%", "0.00%", "users ≤ servers +1pp", "FAIL"},
		{"deliveries ≤ 250ms", "100.00%", "66.67%", "users ≤ servers +1pp, servers ≤ users ≤ 300ms (100.00%) +1pp", "FAIL"},
	} {
		if !hasRow(v.Table, row) {
			t.Errorf("table lacks %q:\n%v", row, v.Table)
		}
	}
	if v.Figures["deliveries_users"] != "300" || v.Figures["sends_acked_servers"] != "100" {
		t.Errorf("got figures %v", v.Figures)
	}

	ok := Compare(defaults, twoTargets(100, healthy), seen(100, healthy)).Verdict()
	if !ok.Pass || ok.Detail != "the servers' SLIs agree with what the users saw" {
		t.Errorf("got %+v, want a pass", ok)
	}
}

func hasRow(table [][]string, want []string) bool {
	for _, row := range table {
		if strings.Join(row, "|") == strings.Join(want, "|") {
			return true
		}
	}
	return false
}

func table(c Comparison) string {
	var b strings.Builder
	for _, row := range c.Verdict().Table {
		b.WriteString(strings.Join(row, "\t") + "\n")
	}
	return b.String()
}

// The generator's histogram keeps three significant figures: a latency
// on a bound counts under it, one just past it over.
func TestUsersUnderABound(t *testing.T) {
	t.Parallel()
	d := deliveries{time.Millisecond, 250 * time.Millisecond, 251 * time.Millisecond, 2 * time.Second}
	got := usersUnder(d.hist(), []float64{0.001, 0.25, 1, 10})
	want := []int64{1, 2, 3, 4}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
