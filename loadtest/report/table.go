package report

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parleychat/parley/loadtest/ledger"
)

// Table writes the final report as plain text for a terminal: the verdict,
// counts, latency percentiles, thresholds, checks and the generator's own
// health.
func Table(w io.Writer, r Run) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	res := r.Result

	p("Run %s · scenario %s · target %s\n", r.ID, r.Scenario, r.Target)
	p("Started %s · ran %s\n", r.Started.UTC().Format("2006-01-02 15:04:05 MST"), formatOffset(r.Duration.Round(time.Second)))
	p("Result: %s\n", verdictLine(r))
	if r.Generator.Saturated {
		p("%s\n", saturationWarning(r.Generator))
	}
	p("\n")

	p("Messages\tsent %s\tacked %s\trefused %s\tunanswered %s\n",
		formatCount(res.Sent), formatCount(res.Acked), formatCount(res.Failed), formatCount(res.Unanswered))
	if len(res.AckErrors) > 0 {
		p("\terrors %s\n", errorCodes(res.AckErrors))
	}
	p("Deliveries\texpected %s\tdelivered %s\treplayed %s\tlost %s\tunconfirmed %s\n",
		formatCount(res.Expected), formatCount(res.Delivered), formatCount(res.Replayed),
		formatCount(res.Lost), formatCount(res.Unconfirmed))
	p("\tduplicates %s\treordered %s\tforeign %s\tunexpected %s\tmisrouted %s\n",
		formatCount(res.Duplicates), formatCount(res.Reordered), formatCount(res.Foreign),
		formatCount(res.Unexpected), formatCount(res.Misrouted))
	p("Connections\tconnect errors %s\n", formatCount(res.ConnectErrors))
	if res.Clamped > 0 {
		p("\t%s latencies outside 0..1h were clamped\n", formatCount(res.Clamped))
	}
	if len(res.LostExamples) > 0 {
		p("Lost, e.g.\t%s\n", strings.Join(res.LostExamples, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	p("\nLatency, from the intended send time\n")
	p("\tcount\tmin\tmean\tp50\tp90\tp99\tp99.9\tmax\n")
	for _, row := range latencyRows(res) {
		p("%s\n", strings.Join(row.cells(), "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(r.Thresholds) > 0 {
		p("\nThresholds\n")
		for _, v := range r.Thresholds {
			p("  %s\t%s\tgot %s\n", passFail(v.Pass), v.Text, formatValue(v.Got, v.Unit))
		}
	}
	if len(r.Checks) > 0 {
		p("\nChecks\n")
		for _, c := range r.Checks {
			p("  %s\t%s\t%s\t%s\n", passFail(c.Pass), c.Name, c.Detail, figures(c.Figures))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range r.Checks {
		if len(c.Table) == 0 {
			continue
		}
		p("\n%s\n", c.Name)
		for _, row := range c.Table {
			p("  %s\n", strings.Join(row, "\t"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	g := r.Generator
	p("\nGenerator: CPU %.1fs, %.2f cores while loading · scheduling lag p99 %s, max %s · %d connections · %d goroutines\n",
		g.CPUSeconds, g.LoadCores, formatDuration(g.P99SchedulingLag), formatDuration(g.MaxSchedulingLag), g.Connections, g.Goroutines)
	if r.Pacing.Any() {
		p("%s\n", pacingLine(r.Pacing))
	}
	if k := r.Knee; k != nil {
		p("Knee: %s msg/s, reached at %s, where %s broke\n", formatRate(k.Rate), formatOffset(k.Offset.Round(time.Second)), k.Broke)
	}
	return tw.Flush()
}

// verdictLine sums up the verdict: PASS, or FAIL with what failed.
func verdictLine(r Run) string {
	var failed []string
	for _, v := range r.Thresholds {
		if !v.Pass {
			failed = append(failed, v.Text)
		}
	}
	for _, c := range r.Checks {
		if !c.Pass {
			failed = append(failed, c.Name)
		}
	}
	if len(failed) == 0 {
		return fmt.Sprintf("PASS (%d thresholds, %d checks)", len(r.Thresholds), len(r.Checks))
	}
	return "FAIL: " + strings.Join(failed, "; ")
}

type latencyRow struct {
	name string
	ledger.Latency
}

func latencyRows(res ledger.Result) []latencyRow {
	return []latencyRow{{"ack", res.Ack}, {"delivery", res.Delivery}, {"replayed", res.ReplayedDelivery}}
}

// cells formats the row: name, count, min, mean, p50, p90, p99, p99.9, max.
// Without samples there are no latencies, which "-" says better than 0.
func (l latencyRow) cells() []string {
	ds := []time.Duration{l.Min, l.Mean, l.P50, l.P90, l.P99, l.P999, l.Max}
	out := []string{l.name, formatCount(l.Count)}
	for _, d := range ds {
		if l.Count == 0 {
			out = append(out, "-")
		} else {
			out = append(out, formatDuration(d))
		}
	}
	return out
}

// errorCodes lists error counts, most frequent first.
func errorCodes(m map[string]int64) string {
	codes := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b))
	})
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = c + " " + formatCount(m[c])
	}
	return strings.Join(parts, ", ")
}

// figures lists a check's figures in name order.
func figures(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, " ")
}
