package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
)

// figures are one target's results, shape by shape: every run's, in the
// order run (a shape not run has none), and per column the median and
// spread over the runs with its ratio to the baseline's median.
type figures struct {
	Target  string             `json:"target"`
	Fanout  []*fanoutResult    `json:"fanout,omitempty"`
	Knee    []*kneeResult      `json:"knee,omitempty"`
	Idle    []*idleResult      `json:"idle,omitempty"`
	Summary map[string]summary `json:"summary,omitempty"` // by column key; set by summarise
}

// fanoutResult is the fan-out shape's figures.
type fanoutResult struct {
	Rate               float64 `json:"rate"`
	Connections        int     `json:"connections"`
	WindowSeconds      float64 `json:"window_seconds"`      // the load window CPU is measured over
	CPUSeconds         float64 `json:"cpu_seconds"`         // the server's, over the window
	CPUPer1k           float64 `json:"cpu_seconds_per_1k"`  // per 1,000 deliveries
	Expected           int64   `json:"expected_deliveries"` // (message, recipient) pairs
	Deliveries         int64   `json:"deliveries"`
	Lost               int64   `json:"lost"`        // acked, never delivered
	Unconfirmed        int64   `json:"unconfirmed"` // unanswered, never delivered
	SendsFailed        int64   `json:"sends_failed"`
	P50MS              float64 `json:"delivery_p50_ms"`
	P99MS              float64 `json:"delivery_p99_ms"`
	P999MS             float64 `json:"delivery_p999_ms"`
	GeneratorSaturated bool    `json:"generator_saturated"`
	TraceExports       int64   `json:"trace_exports"` // OTLP requests the sink took during the run
}

// kneeStep is one rate of the knee shape.
type kneeStep struct {
	Rate       float64 `json:"rate"`
	P99MS      float64 `json:"delivery_p99_ms"`
	Expected   int64   `json:"expected_deliveries"`
	Deliveries int64   `json:"deliveries"`
	Loss       float64 `json:"loss"` // share of expected deliveries that never came
	Saturated  bool    `json:"generator_saturated"`
}

// The knee's bar: a rate holds when its delivery p99 and its loss are
// within these.
const (
	kneeP99MS = 100
	kneeLoss  = 0.001
)

func (s kneeStep) holds() bool { return s.P99MS <= kneeP99MS && s.Loss <= kneeLoss && s.Expected > 0 }

// kneeResult is the knee shape's figures.
type kneeResult struct {
	Steps []kneeStep `json:"steps"`
	Knee  float64    `json:"knee"` // 0 when no rate held
}

// kneeOf is the highest rate that held before the first that did not;
// steps are in the order run (rising). 0 when the first failed.
func kneeOf(steps []kneeStep) float64 {
	knee := 0.0
	for _, s := range steps {
		if !s.holds() {
			break
		}
		knee = s.Rate
	}
	return knee
}

// idleResult is the idle shape's figures.
type idleResult struct {
	Connections int     `json:"connections"` // open at the end of the hold
	HoldSeconds float64 `json:"hold_seconds"`
	RSSBefore   int64   `json:"rss_before_kib"`
	RSSAfter    int64   `json:"rss_after_kib"`
	PerConnKiB  float64 `json:"rss_kib_per_connection"`
	Goroutines  int     `json:"goroutines,omitempty"` // at the end of the hold; 0 where not read
}

// column is one figure of the table: how to read it from each of a
// target's runs, and how to print it.
type column struct {
	name   string // in the table
	key    string // in the JSON summary
	values func(figures) []float64
	format string
}

var columns = []column{
	{"CPU s/1k deliveries", "cpu_seconds_per_1k", fanoutField(func(r *fanoutResult) float64 { return r.CPUPer1k }), "%.4f"},
	{"p50 ms", "delivery_p50_ms", fanoutField(func(r *fanoutResult) float64 { return r.P50MS }), "%.2f"},
	{"p99 ms", "delivery_p99_ms", fanoutField(func(r *fanoutResult) float64 { return r.P99MS }), "%.2f"},
	{"p99.9 ms", "delivery_p999_ms", fanoutField(func(r *fanoutResult) float64 { return r.P999MS }), "%.2f"},
	{"knee msg/s", "knee", func(f figures) []float64 { return each(f.Knee, func(r *kneeResult) float64 { return r.Knee }) }, "%.0f"},
	{"RSS KiB/idle conn", "rss_kib_per_connection", func(f figures) []float64 {
		return each(f.Idle, func(r *idleResult) float64 { return r.PerConnKiB })
	}, "%.1f"},
}

// fanoutField reads a figure of the fanout runs whose load generator kept
// up. A saturated generator sends late, so that deliveries fall after the
// load window: they are counted while their CPU is not, and the latencies
// hold the generator's own delays. Such a run's figures are shown in the
// notes, not in the medians.
func fanoutField(get func(*fanoutResult) float64) func(figures) []float64 {
	return func(f figures) []float64 {
		var kept []*fanoutResult
		for _, r := range f.Fanout {
			if !r.GeneratorSaturated {
				kept = append(kept, r)
			}
		}
		return each(kept, get)
	}
}

func each[R any](runs []R, get func(R) float64) []float64 {
	var out []float64
	for _, r := range runs {
		out = append(out, get(r))
	}
	return out
}

// summary is one column's figures over one target's runs.
type summary struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Runs   int     `json:"runs"`
	// Ratio is the median's ratio to the baseline's median; absent for the
	// baseline itself, and where the baseline has no figure above zero.
	Ratio *float64 `json:"ratio_to_baseline,omitempty"`
}

// summaryOf is the median, the smallest and the largest of values; with an
// even count the median is the mean of the middle two. False when there
// are none.
func summaryOf(values []float64) (summary, bool) {
	n := len(values)
	if n == 0 {
		return summary{}, false
	}
	sorted := slices.Sorted(slices.Values(values))
	s := summary{Min: sorted[0], Max: sorted[n-1], Runs: n, Median: sorted[n/2]}
	if n%2 == 0 {
		s.Median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return s, true
}

// summarise sets every row's summary: per column, its median and spread
// over the row's runs, and the ratio of its median to the median of the
// row named baseline.
func summarise(rows []figures, baseline string) {
	var base *figures
	for i := range rows {
		if rows[i].Target == baseline {
			base = &rows[i]
		}
	}
	for i := range rows {
		r := &rows[i]
		r.Summary = map[string]summary{}
		for _, c := range columns {
			s, ok := summaryOf(c.values(*r))
			if !ok {
				continue
			}
			if base != nil && base != r {
				if b, ok := summaryOf(c.values(*base)); ok && b.Median > 0 {
					ratio := s.Median / b.Median
					s.Ratio = &ratio
				}
			}
			r.Summary[c.key] = s
		}
	}
}

// writeTables prints the summarised rows: one table of the medians, each
// with its ratio to the baseline's ("0.0289 (1.07x)"), and, when any
// figure comes from more than one run, a table of the spreads in the same
// layout ("0.0281–0.0302"). A figure not measured is "-".
func writeTables(w io.Writer, rows []figures) error {
	if err := writeTable(w, rows, medianCell); err != nil {
		return err
	}
	multi := false
	for _, r := range rows {
		for _, s := range r.Summary {
			multi = multi || s.Runs > 1
		}
	}
	if !multi {
		return nil
	}
	fmt.Fprintln(w, "\nspread over the runs (min–max):")
	return writeTable(w, rows, spreadCell)
}

// writeTable prints one row per target and one column per figure, each
// cell as cell prints its summary.
func writeTable(w io.Writer, rows []figures, cell func(column, summary) string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "target\t")
	for _, c := range columns {
		fmt.Fprintf(tw, "%s\t", c.name)
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t", r.Target)
		for _, c := range columns {
			text := "-"
			if s, ok := r.Summary[c.key]; ok {
				text = cell(c, s)
			}
			fmt.Fprintf(tw, "%s\t", text)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// medianCell is "0.0289 (1.07x)", or the median alone without a ratio.
func medianCell(c column, s summary) string {
	text := fmt.Sprintf(c.format, s.Median)
	if s.Ratio != nil {
		text += " (" + strconv.FormatFloat(*s.Ratio, 'f', 2, 64) + "x)"
	}
	return text
}

// spreadCell is "0.0281–0.0302", or the one figure of a single run.
func spreadCell(c column, s summary) string {
	if s.Runs < 2 {
		return fmt.Sprintf(c.format, s.Median)
	}
	return fmt.Sprintf(c.format+"–"+c.format, s.Min, s.Max)
}
