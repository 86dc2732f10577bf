package truth

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/parleychat/parley/loadtest/report"
)

// Comparison is the users' side and the servers' side of a run, set side
// by side.
type Comparison struct {
	Rows []Row
	// Problem says why the servers' side could not be had (a failed read,
	// a target that restarted); the check fails with it.
	Problem string
	// Note says what was not compared, and why (no deliveries).
	Note string
}

// Row is one comparison: a count, or the share of deliveries under a
// bound.
type Row struct {
	What           string
	Users, Servers float64
	Share          bool   // the figures are shares (0 to 1), not counts
	Allowed        string // the rule, in words
	Pass           bool
}

// epsilon absorbs float rounding in the share comparisons: far below
// any tolerance anyone would set.
const epsilon = 1e-9

// Compare sets what the users saw beside what the servers counted over
// the interval, with cfg's tolerances.
func Compare(cfg Config, iv Interval, seen Seen) Comparison {
	if iv.Err != nil {
		return Comparison{Problem: "reading the servers after the load: " + iv.Err.Error()}
	}
	servers, err := interval(iv)
	if err != nil {
		return Comparison{Problem: err.Error()}
	}
	c := Comparison{Rows: []Row{
		countRow("sends acked", float64(seen.Acked), servers.Acked, cfg.CountTolerance),
		countRow("deliveries", float64(seen.Deliveries), servers.Delivered, cfg.CountTolerance),
	}}
	var users int64
	if seen.Latency != nil {
		users = seen.Latency.TotalCount()
	}
	total := servers.Buckets[len(servers.Buckets)-1].Count // +Inf
	switch {
	case users == 0 && total == 0:
		c.Note = "no deliveries on either side, so no latency shares to compare"
		return c
	case users == 0 || total == 0:
		c.Note = fmt.Sprintf("latency shares not compared: the users timed %d deliveries, the servers %v", users, total)
		return c
	}
	bounds := servers.bounds()
	allowance := cfg.ClockAllowance.Seconds()
	late := make([]float64, len(bounds))
	for i, b := range bounds {
		late[i] = b + allowance
	}
	under, underLate := usersUnder(seen.Latency, bounds), usersUnder(seen.Latency, late)
	for i, b := range bounds {
		g, s := float64(under[i])/float64(users), servers.Buckets[i].Count/total
		r := Row{What: "deliveries ≤ " + formatBound(b), Users: g, Servers: s, Share: true}
		r.Pass = g <= s+cfg.ShareTolerance+epsilon
		r.Allowed = "users ≤ servers +" + points(cfg.ShareTolerance)
		if slices.Contains(cfg.Bounds, b) {
			gl := float64(underLate[i]) / float64(users)
			r.Pass = r.Pass && s <= gl+cfg.ShareTolerance+epsilon
			r.Allowed += fmt.Sprintf(", servers ≤ users ≤ %s (%s) +%s", formatBound(late[i]), share(gl), points(cfg.ShareTolerance))
		}
		c.Rows = append(c.Rows, r)
	}
	return c
}

// countRow compares a count: the servers count a frame before the user
// reads it, so they may count up to tolerance more (frames a broken
// connection never delivered), never fewer.
func countRow(what string, users, servers, tolerance float64) Row {
	return Row{
		What: what, Users: users, Servers: servers,
		Allowed: "users ≤ servers ≤ users +" + strconv.FormatFloat(tolerance*100, 'g', 3, 64) + "%",
		Pass:    servers >= users && servers <= users*(1+tolerance),
	}
}

// interval is the servers' counts over the load, summed over the
// targets: after minus before. A target that restarted in between has
// counters that no longer cover the load, which is an error, as are
// histograms whose bounds differ.
func interval(iv Interval) (Sample, error) {
	if len(iv.Before) != len(iv.Targets) || len(iv.After) != len(iv.Targets) || len(iv.Targets) == 0 {
		return Sample{}, fmt.Errorf("read %d targets before the load and %d after, want %d each", len(iv.Before), len(iv.After), len(iv.Targets))
	}
	var sum Sample
	for i, target := range iv.Targets {
		b, a := iv.Before[i], iv.After[i]
		restarted := fmt.Sprintf("%s restarted during the run, so its counters do not cover it", target)
		if b.Started != 0 && a.Started != 0 && b.Started != a.Started {
			return Sample{}, fmt.Errorf("%s (process start time %v, then %v)", restarted, b.Started, a.Started)
		}
		if a.Acked < b.Acked || a.Delivered < b.Delivered {
			return Sample{}, fmt.Errorf("%s (acked sends %v, then %v; deliveries %v, then %v)", restarted, b.Acked, a.Acked, b.Delivered, a.Delivered)
		}
		if !slices.Equal(b.bounds(), a.bounds()) || len(b.Buckets) != len(a.Buckets) {
			return Sample{}, fmt.Errorf("%s: %s's bounds changed during the run (%s, then %s)", target, deliveryHistogram, formatBounds(b.bounds()), formatBounds(a.bounds()))
		}
		if i == 0 {
			sum.Buckets = make([]Bucket, len(a.Buckets))
			for j, bk := range a.Buckets {
				sum.Buckets[j].Le = bk.Le
			}
		} else if !slices.Equal(sum.bounds(), a.bounds()) || len(sum.Buckets) != len(a.Buckets) {
			return Sample{}, fmt.Errorf("%s: %s's bounds (%s) differ from %s's (%s), so they cannot be added up", target, deliveryHistogram, formatBounds(a.bounds()), iv.Targets[0], formatBounds(sum.bounds()))
		}
		for j := range a.Buckets {
			d := a.Buckets[j].Count - b.Buckets[j].Count
			if d < 0 {
				return Sample{}, fmt.Errorf("%s (%s bucket le=%v went from %v to %v)", restarted, deliveryHistogram, a.Buckets[j].Le, b.Buckets[j].Count, a.Buckets[j].Count)
			}
			sum.Buckets[j].Count += d
		}
		sum.Acked += a.Acked - b.Acked
		sum.Delivered += a.Delivered - b.Delivered
	}
	return sum, nil
}

// usersUnder counts the users' latencies at most each bound (in seconds).
// The histogram keeps three significant figures: the bucket that holds a
// bound counts under it, so a latency up to 0.1% past a bound may too.
func usersUnder(h *hdrhistogram.Histogram, bounds []float64) []int64 {
	out := make([]int64, len(bounds))
	for _, bar := range h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		for i, b := range bounds {
			if float64(bar.From) <= b*1e6 {
				out[i] += bar.Count
			}
		}
	}
	return out
}

// Pass reports whether the two sides agree within the tolerances.
func (c Comparison) Pass() bool {
	if c.Problem != "" {
		return false
	}
	for _, r := range c.Rows {
		if !r.Pass {
			return false
		}
	}
	return true
}

// Verdict is the comparison as the report shows it: a detail naming
// every comparison that failed, the figures, and the side-by-side table.
func (c Comparison) Verdict() report.CheckVerdict {
	v := report.CheckVerdict{Name: Name, Pass: c.Pass(), Figures: map[string]string{}}
	if c.Problem != "" {
		v.Detail = "could not compare: " + c.Problem
		return v
	}
	var failed []string
	for _, r := range c.Rows {
		if !r.Pass {
			failed = append(failed, fmt.Sprintf("%s: users %s, servers %s, allowed %s", r.What, r.users(), r.servers(), r.Allowed))
		}
	}
	if len(failed) > 0 {
		v.Detail = "the servers' SLIs disagree with what the users saw: " + strings.Join(failed, "; ")
	} else {
		v.Detail = "the servers' SLIs agree with what the users saw"
	}
	if c.Note != "" {
		v.Detail += " (" + c.Note + ")"
	}
	v.Table = [][]string{{"", "users", "servers", "allowed", ""}}
	for _, r := range c.Rows {
		v.Table = append(v.Table, []string{r.What, r.users(), r.servers(), r.Allowed, passFail(r.Pass)})
		if !r.Share {
			key := strings.ReplaceAll(r.What, " ", "_")
			v.Figures[key+"_users"], v.Figures[key+"_servers"] = r.users(), r.servers()
		}
	}
	return v
}

func (r Row) users() string   { return r.format(r.Users) }
func (r Row) servers() string { return r.format(r.Servers) }

func (r Row) format(v float64) string {
	if r.Share {
		return share(v)
	}
	return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
}

// share shows a share as a percentage: 99.25%.
func share(v float64) string {
	return strconv.FormatFloat(v*100, 'f', 2, 64) + "%"
}

// points shows a share tolerance in percentage points: 0.01 is 1pp.
func points(t float64) string {
	return strconv.FormatFloat(t*100, 'g', 3, 64) + "pp"
}

func passFail(pass bool) string {
	if pass {
		return "PASS"
	}
	return "FAIL"
}
