package main

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

// figures are one target's results, shape by shape; a shape not run is
// nil.
type figures struct {
	Target string        `json:"target"`
	Fanout *fanoutResult `json:"fanout,omitempty"`
	Knee   *kneeResult   `json:"knee,omitempty"`
	Idle   *idleResult   `json:"idle,omitempty"`
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

// column is one figure of the table: how to read it from a target's
// figures, and how to print it.
type column struct {
	name   string
	value  func(figures) (float64, bool)
	format string
}

var columns = []column{
	{"CPU s/1k deliveries", func(f figures) (float64, bool) {
		return fanoutField(f, func(r *fanoutResult) float64 { return r.CPUPer1k })
	}, "%.4f"},
	{"p50 ms", func(f figures) (float64, bool) {
		return fanoutField(f, func(r *fanoutResult) float64 { return r.P50MS })
	}, "%.2f"},
	{"p99 ms", func(f figures) (float64, bool) {
		return fanoutField(f, func(r *fanoutResult) float64 { return r.P99MS })
	}, "%.2f"},
	{"p99.9 ms", func(f figures) (float64, bool) {
		return fanoutField(f, func(r *fanoutResult) float64 { return r.P999MS })
	}, "%.2f"},
	{"knee msg/s", func(f figures) (float64, bool) {
		if f.Knee == nil {
			return 0, false
		}
		return f.Knee.Knee, true
	}, "%.0f"},
	{"RSS KiB/idle conn", func(f figures) (float64, bool) {
		if f.Idle == nil {
			return 0, false
		}
		return f.Idle.PerConnKiB, true
	}, "%.1f"},
}

func fanoutField(f figures, get func(*fanoutResult) float64) (float64, bool) {
	if f.Fanout == nil {
		return 0, false
	}
	return get(f.Fanout), true
}

// writeTable prints one row per target and one column per figure, each
// with its ratio to the baseline's (the row named baseline) when both are
// there: "0.031 (1.52x)". A figure not measured is "-".
func writeTable(w io.Writer, rows []figures, baseline string) error {
	var base *figures
	for i := range rows {
		if rows[i].Target == baseline {
			base = &rows[i]
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "target\t")
	for _, c := range columns {
		fmt.Fprintf(tw, "%s\t", c.name)
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t", r.Target)
		for _, c := range columns {
			fmt.Fprintf(tw, "%s\t", cell(c, r, base))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func cell(c column, r figures, base *figures) string {
	v, ok := c.value(r)
	if !ok {
		return "-"
	}
	s := fmt.Sprintf(c.format, v)
	if base == nil || base.Target == r.Target {
		return s
	}
	if b, ok := c.value(*base); ok && b > 0 {
		s += " (" + strconv.FormatFloat(v/b, 'f', 2, 64) + "x)"
	}
	return s
}
