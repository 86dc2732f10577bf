package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/loadtest/ledger"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const ms = time.Millisecond

// sampleResult runs a small, fully determined load through a ledger: 20
// messages a second for ten seconds to a room of three, acked in 5ms and
// delivered in 10ms, except in the seventh second, when deliveries stall for
// two seconds. One acked message never reaches user 2; one is refused.
func sampleResult(t *testing.T) ledger.Result {
	t.Helper()
	l := ledger.New(t0, time.Second)
	members := []int32{0, 1, 2}
	seq := int64(0)
	for i := range 200 {
		id := "m" + strconv.Itoa(i)
		intended := t0.Add(time.Duration(i) * 50 * ms)
		l.Expect(id, "lobby", intended, members)
		if i == 150 {
			l.Failed(id, "rate_limited", intended.Add(ms))
			continue
		}
		l.Acked(id, intended.Add(5*ms))
		seq++
		latency := 10 * ms
		if intended.Sub(t0) >= 6*time.Second && intended.Sub(t0) < 7*time.Second {
			latency = 2 * time.Second
		}
		for _, u := range members {
			if i == 42 && u == 2 {
				continue
			}
			l.Delivered(u, "lobby", id, seq, intended.Add(latency), false)
		}
	}
	l.ConnectError()
	return l.Finish(t0.Add(12 * time.Second))
}

func sampleRun(t *testing.T) Run {
	t.Helper()
	res := sampleResult(t)
	v := res.Values()
	return Run{
		ID:       "run-20260301-1200",
		Scenario: "steady <script>alert(1)</script>",
		Target:   "http://127.0.0.1:8080",
		Started:  t0,
		Duration: 12 * time.Second,
		Result:   res,
		Thresholds: []Verdict{
			{Text: "ack_p99 < 100ms", Got: v["ack_p99"], Unit: "s", Pass: true},
			{Text: "delivery_p99 < 250ms", Got: v["delivery_p99"], Unit: "s", Pass: false},
			{Text: "lost == 0", Got: v["lost"], Pass: false},
			{Text: "ack_error_rate < 1%", Got: v["ack_error_rate"], Unit: "ratio", Pass: true},
		},
		Checks: []CheckVerdict{
			{Name: "order", Pass: true, Detail: "every recipient saw seqs in order", Figures: map[string]string{"reordered": "0", "delivered": "596"}},
		},
		Stages:    []StageMark{{Name: "warm-up", Offset: 0}, {Name: "steady <b>", Offset: 5 * time.Second}},
		Generator: GeneratorStats{CPUSeconds: 1.5, LoadCores: 0.25, MaxSchedulingLag: 3 * ms, P99SchedulingLag: ms, Saturated: true, Connections: 3, Goroutines: 12},
		Pacing:    Pacing{REST: Paced{Refusals: 5, Waits: 7, Waited: 1200 * ms}, Frames: Paced{Refusals: 44, Waits: 44, Waited: 8800 * ms}},
		Knee:      &Knee{Rate: 400, Offset: 6 * time.Second, Broke: "delivery_p99 < 250ms"},
	}
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run with -update to accept):\n%s", path, got)
	}
}

func TestRunPassesOnlyWhenEverythingPasses(t *testing.T) {
	tests := []struct {
		name string
		run  Run
		want bool
	}{
		{"nothing to judge", Run{}, true},
		{"all pass", Run{Thresholds: []Verdict{{Pass: true}}, Checks: []CheckVerdict{{Pass: true}}}, true},
		{"a threshold fails", Run{Thresholds: []Verdict{{Pass: true}, {Pass: false}}, Checks: []CheckVerdict{{Pass: true}}}, false},
		{"a check fails", Run{Thresholds: []Verdict{{Pass: true}}, Checks: []CheckVerdict{{Pass: false}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.run.Pass(); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTableShowsTheKeyFigures(t *testing.T) {
	var b bytes.Buffer
	if err := Table(&b, sampleRun(t)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Result: FAIL: delivery_p99 < 250ms; lost == 0",
		"WARNING: the load generator was saturated",
		"sent 200", "acked 199", "refused 1", "errors rate_limited 1",
		"expected 597", "delivered 596", "lost 1",
		"m42→2",
		"PASS  ack_p99 < 100ms",
		"FAIL  lost == 0",
		"got 0.5%", // one refusal against 199 acks
		"PASS  order",
		"Knee: 400 msg/s, reached at 6s, where delivery_p99 < 250ms broke",
		"Generator: CPU 1.5s, 0.25 cores while loading",
		"Paced by the server: REST 5 refusals (429), 7 waits, 1.20s in all · WebSocket 44 frames refused as rate_limited and resent, 8.80s in all",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// The stall: 20 of 199 messages took 2s, so p99 and max show it.
	if !regexp.MustCompile(`(?m)^delivery +596 +10\.0ms +\S+ +10\.0ms +10\.0ms +2\.00s +2\.00s +2\.00s$`).MatchString(out) {
		t.Errorf("delivery row does not show the 2s stall at p99 and max:\n%s", out)
	}
	golden(t, "table.golden", b.Bytes())
}

func TestJSONRoundTrips(t *testing.T) {
	run := sampleRun(t)
	run.Thresholds = append(run.Thresholds, Verdict{Text: "nothing measured", Got: math.NaN()})
	var b bytes.Buffer
	if err := JSON(&b, run); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b.String())
	}
	for _, k := range []string{
		"id", "scenario", "target", "started", "duration_ms", "pass", "counts", "latency", "values",
		"thresholds", "checks", "stages", "generator", "knee", "interval_ms", "timeline", "lost_examples", "ack_errors_by_code",
	} {
		if _, ok := doc[k]; !ok {
			t.Errorf("no %q in the JSON report", k)
		}
	}
	if doc["pass"] != false || doc["scenario"] != run.Scenario {
		t.Errorf("got pass %v scenario %q, want false and %q", doc["pass"], doc["scenario"], run.Scenario)
	}
	if g := doc["generator"].(map[string]any); g["cpu_seconds"] != 1.5 || g["load_cores"] != 0.25 || g["saturated"] != true {
		t.Errorf("got generator %v", g)
	}
	counts := doc["counts"].(map[string]any)
	if counts["sent"] != 200.0 || counts["lost"] != 1.0 || counts["ack_errors"] != 1.0 {
		t.Errorf("got counts %v", counts)
	}
	delivery := doc["latency"].(map[string]any)["delivery"].(map[string]any)
	for _, k := range []string{"count", "min_ms", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "distribution"} {
		if _, ok := delivery[k]; !ok {
			t.Errorf("no %q in the delivery latency", k)
		}
	}
	if p50 := delivery["p50_ms"].(float64); p50 < 10 || p50 > 10.01 {
		t.Errorf("got delivery p50 %vms, want 10ms", p50)
	}
	if max := delivery["max_ms"].(float64); max != 2000 {
		t.Errorf("got delivery max %vms, want 2000", max)
	}
	dist := delivery["distribution"].([]any)
	if len(dist) != len(distributionPercentiles) {
		t.Fatalf("got %d percentiles, want %d", len(dist), len(distributionPercentiles))
	}
	prev := -1.0
	for _, e := range dist {
		v := e.(map[string]any)["ms"].(float64)
		if v < prev {
			t.Errorf("distribution falls from %v to %v: %v", prev, v, dist)
		}
		prev = v
	}
	if prev != 2000 {
		t.Errorf("distribution ends at %vms, want the max, 2000", prev)
	}
	if got := doc["thresholds"].([]any)[4].(map[string]any)["got"]; got != nil {
		t.Errorf("got %v for a NaN value, want null", got)
	}
	if tl := doc["timeline"].([]any); len(tl) != len(run.Result.Timeline) {
		t.Errorf("got %d timeline points, want %d", len(tl), len(run.Result.Timeline))
	}
	if _, ok := doc["values"].(map[string]any)["delivery_p99"]; !ok {
		t.Error("no delivery_p99 among the values")
	}
}

func TestJSONOfAnEmptyRun(t *testing.T) {
	var b bytes.Buffer
	if err := JSON(&b, Run{}); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"thresholds", "checks", "stages", "timeline", "lost_examples"} {
		if _, ok := doc[k].([]any); !ok {
			t.Errorf("got %s = %v, want an empty list", k, doc[k])
		}
	}
	if _, ok := doc["knee"]; ok {
		t.Error("knee present without a knee")
	}
}

func TestHTMLIsSelfContainedAndEscaped(t *testing.T) {
	var b bytes.Buffer
	if err := HTML(&b, sampleRun(t)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"<!DOCTYPE html>", "</html>",
		"steady &lt;script&gt;alert(1)&lt;/script&gt;", // the scenario name, escaped
		"steady &lt;b&gt;", // a stage name, escaped
		"delivery_p99 &lt; 250ms",
		"Latency over time", "Latency by percentile", "Messages per second", "Deliveries per second",
		"99.999%", "m42→2", "saturated",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "<b>", "src=", "href=", "@import", "url("} {
		if strings.Contains(out, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	for _, tag := range []string{"svg", "figure", "table", "tr", "section", "header", "style"} {
		if open, closed := strings.Count(out, "<"+tag+">")+strings.Count(out, "<"+tag+" "), strings.Count(out, "</"+tag+">"); open != closed {
			t.Errorf("%d <%s> but %d </%s>", open, tag, closed, tag)
		}
	}
	if n := strings.Count(out, "<svg "); n != 4 {
		t.Errorf("got %d charts, want 4", n)
	}
}

func TestHTMLOfAnEmptyRun(t *testing.T) {
	var b bytes.Buffer
	if err := HTML(&b, Run{Result: ledger.New(t0, time.Second).Finish(t0)}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "No latencies to plot.") {
		t.Errorf("an empty run's page does not say there is nothing to plot:\n%s", b.String())
	}
}

// pathPoints reads the coordinates of an SVG path made of M and L commands.
func pathPoints(t *testing.T, d string) [][2]float64 {
	t.Helper()
	var pts [][2]float64
	for _, cmd := range regexp.MustCompile(`[ML][^ML]+`).FindAllString(d, -1) {
		x, y, ok := strings.Cut(cmd[1:], ",")
		if !ok {
			t.Fatalf("bad path command %q", cmd)
		}
		fx, err1 := strconv.ParseFloat(x, 64)
		fy, err2 := strconv.ParseFloat(y, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad path command %q", cmd)
		}
		pts = append(pts, [2]float64{fx, fy})
	}
	return pts
}

func TestPercentilePlotIsMonotonic(t *testing.T) {
	c := percentileChart(sampleResult(t))
	if len(c.Series) != 2 {
		t.Fatalf("got %d curves, want ack and delivery", len(c.Series))
	}
	for _, s := range c.Series {
		pts := pathPoints(t, s.Path)
		if len(pts) < 100 {
			t.Fatalf("%s: got %d points, want a dense curve", s.Name, len(pts))
		}
		for i := 1; i < len(pts); i++ {
			prev, cur := pts[i-1], pts[i]
			if cur[0] < prev[0] || cur == prev && i > 1 {
				t.Errorf("%s: x goes back from %v to %v", s.Name, prev, cur)
			}
			// SVG y grows downwards: a latency that rises has a y that falls.
			if cur[1] > prev[1] {
				t.Errorf("%s: latency falls from %v to %v", s.Name, prev, cur)
			}
			if cur[0] < plotLeft || cur[0] > plotRight || cur[1] < plotTop || cur[1] > plotBottom {
				t.Errorf("%s: %v is outside the plot", s.Name, cur)
			}
		}
	}
	if got := c.XTicks[len(c.XTicks)-1].Label; got != "99.999%" {
		t.Errorf("got last x tick %q, want 99.999%%", got)
	}
}

func TestLatencyChartShowsTheStall(t *testing.T) {
	c := latencyChart(sampleRun(t))
	var p99 series
	for _, s := range c.Series {
		if s.Name == "delivery p99" {
			p99 = s
		}
	}
	top := float64(plotBottom)
	for _, p := range pathPoints(t, p99.Path) {
		top = min(top, p[1])
	}
	// The axis runs in whole decades from 1ms (below the 5ms acks) to 10s;
	// 2s is log10(2000)/4 of the way up.
	want := plotBottom - (plotBottom-plotTop)*math.Log10(2000)/4
	if math.Abs(top-want) > 1 {
		t.Errorf("got the highest delivery p99 at y=%v, want %v (2s)", top, want)
	}
	if len(c.Marks) != 3 {
		t.Errorf("got %d marks, want two stages and the knee", len(c.Marks))
	}
}

func TestProgressLine(t *testing.T) {
	p := ledger.Progress{
		Interval: time.Second, Sent: 5000, Acked: 4990, AckErrors: 3, Awaiting: 1234, Reordered: 2,
		SendRate: 1000, AckP99: 12300 * time.Microsecond, DeliveryP99: 25 * ms,
	}
	got := ProgressLine(p, 500, 65*time.Second)
	want := "  1m5s  1,000 msg/s  conns 500  acked 4,990  ack p99 12.3ms  delivery p99 25.0ms  errors 3  awaiting 1,234  reordered 2"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestFormatting(t *testing.T) {
	tests := []struct{ got, want string }{
		{formatDuration(0), "0"},
		{formatDuration(850 * time.Microsecond), "850µs"},
		{formatDuration(1234 * time.Microsecond), "1.23ms"},
		{formatDuration(12345 * time.Microsecond), "12.3ms"},
		{formatDuration(999999 * time.Microsecond), "1.00s"},
		{formatDuration(59990 * ms), "1m"},
		{formatDuration(2 * time.Second), "2.00s"},
		{formatDuration(125 * time.Second), "2m5s"},
		{formatDuration(2 * time.Minute), "2m"},
		{formatOffset(time.Hour), "1h"},
		{formatOffset(90 * time.Minute), "1h30m"},
		{formatOffset(time.Hour + 30*time.Second), "1h0m30s"},
		{formatOffset(45 * time.Second), "45s"},
		{formatCount(0), "0"},
		{formatCount(999), "999"},
		{formatCount(1000), "1,000"},
		{formatCount(-1234567), "-1,234,567"},
		{formatValue(0.25, "s"), "250ms"},
		{formatValue(0.0123, "ratio"), "1.23%"},
		{formatValue(3, ""), "3"},
		{formatValue(2.5, ""), "2.5"},
		{formatRate(12.34), "12.3"},
		{formatRate(0), "0"},
		{formatRate(20), "20"},
		{formatRate(1234.5), "1,235"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// A check's side-by-side table shows in every form of the report: aligned
// in the terminal's, as rows in the JSON, and escaped in the HTML.
func TestACheckTableShowsInEveryReport(t *testing.T) {
	run := Run{Checks: []CheckVerdict{{
		Name: "sli-truth", Pass: false, Detail: "disagree",
		Table: [][]string{
			{"", "users", "servers", ""},
			{"deliveries", "300", "300", "PASS"},
			{"deliveries ≤ 250ms <b>", "100.00%", "66.67%", "FAIL"},
		},
	}}}
	var text bytes.Buffer
	if err := Table(&text, run); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^sli-truth\n +users +servers *\n +deliveries +300 +300 +PASS\n +deliveries ≤ 250ms <b> +100\.00% +66\.67% +FAIL$`).MatchString(text.String()) {
		t.Errorf("the table lacks the check's rows, aligned:\n%s", text.String())
	}

	var js bytes.Buffer
	if err := JSON(&js, run); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Checks []struct{ Table [][]string }
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Checks) != 1 || len(doc.Checks[0].Table) != 3 || doc.Checks[0].Table[2][2] != "66.67%" {
		t.Errorf("got JSON checks %+v, want the table's three rows", doc.Checks)
	}

	var page bytes.Buffer
	if err := HTML(&page, run); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<h3>sli-truth</h3>", `<th class="text">servers</th>`, `<td class="text">deliveries ≤ 250ms &lt;b&gt;</td>`} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("the HTML lacks %q", want)
		}
	}
}
