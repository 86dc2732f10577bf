package main

import (
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestKneeIsTheHighestRateThatHeldBeforeTheFirstThatDidNot(t *testing.T) {
	t.Parallel()
	ok := func(rate float64) kneeStep { return kneeStep{Rate: rate, P99MS: 20, Expected: 1000, Loss: 0} }
	slow := func(rate float64) kneeStep { return kneeStep{Rate: rate, P99MS: 100.5, Expected: 1000} }
	lossy := func(rate float64) kneeStep { return kneeStep{Rate: rate, P99MS: 5, Expected: 1000, Loss: 0.0011} }
	for _, tc := range []struct {
		name  string
		steps []kneeStep
		want  float64
	}{
		{"every rate holds", []kneeStep{ok(2000), ok(4000), ok(8000)}, 8000},
		{"p99 over 100 ms", []kneeStep{ok(2000), ok(4000), slow(8000)}, 4000},
		{"loss over 0.1%", []kneeStep{ok(2000), lossy(4000)}, 2000},
		{"the first fails", []kneeStep{slow(2000)}, 0},
		{"a rate after a failure does not count", []kneeStep{ok(2000), slow(4000), ok(8000)}, 2000},
		{"exactly at the bar holds", []kneeStep{{Rate: 2000, P99MS: 100, Expected: 10, Loss: 0.001}}, 2000},
		{"nothing expected does not hold", []kneeStep{{Rate: 2000}}, 0},
		{"no steps", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := kneeOf(tc.steps); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSummaryIsTheMedianAndTheSpreadOfTheRuns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		values []float64
		want   summary
	}{
		{"one run", []float64{0.0224}, summary{Median: 0.0224, Min: 0.0224, Max: 0.0224, Runs: 1}},
		{"odd count: the middle one, whatever the order", []float64{0.0302, 0.0281, 0.0289}, summary{Median: 0.0289, Min: 0.0281, Max: 0.0302, Runs: 3}},
		{"even count: the mean of the middle two", []float64{0.0270, 0.0224, 0.0253, 0.0235}, summary{Median: 0.0244, Min: 0.0224, Max: 0.0270, Runs: 4}},
		{"an outlier moves the spread, not the median", []float64{1, 1.1, 50}, summary{Median: 1.1, Min: 1, Max: 50, Runs: 3}},
		{"negative figures", []float64{-2, 3}, summary{Median: 0.5, Min: -2, Max: 3, Runs: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := slices.Clone(tc.values)
			got, ok := summaryOf(in)
			if !ok || !near(got.Median, tc.want.Median) || got.Min != tc.want.Min || got.Max != tc.want.Max || got.Runs != tc.want.Runs || got.Ratio != nil {
				t.Fatalf("got %+v, %v, want %+v", got, ok, tc.want)
			}
			if !slices.Equal(in, tc.values) {
				t.Errorf("the runs were reordered: got %v, want %v", in, tc.values)
			}
		})
	}
	if got, ok := summaryOf(nil); ok {
		t.Errorf("no runs: got %+v, want none", got)
	}
}

func TestRatiosAreOfMediansToTheBaselinesMedian(t *testing.T) {
	t.Parallel()
	rows := []figures{
		{Target: "baseline", Fanout: fanouts(0.0224, 0.0270, 0.0235), Knee: knees(0)},
		{Target: "parley-local", Fanout: fanouts(0.0301, 0.0282, 0.0500), Knee: knees(4000), Idle: idles(50)},
	}
	summarise(rows, "baseline")
	if r := rows[0].Summary["cpu_seconds_per_1k"]; r.Ratio != nil {
		t.Errorf("the baseline has a ratio to itself: %v", *r.Ratio)
	}
	cpu := rows[1].Summary["cpu_seconds_per_1k"]
	if !near(cpu.Median, 0.0301) || cpu.Ratio == nil || !near(*cpu.Ratio, 0.0301/0.0235) {
		t.Errorf("CPU: got %+v, want the median 0.0301 at %.4fx", cpu, 0.0301/0.0235)
	}
	if k := rows[1].Summary["knee"]; k.Ratio != nil {
		t.Errorf("knee: got a ratio %v to a baseline of 0, want none", *k.Ratio)
	}
	if i := rows[1].Summary["rss_kib_per_connection"]; i.Ratio != nil || i.Median != 50 {
		t.Errorf("idle without a baseline figure: got %+v, want the median 50 and no ratio", i)
	}
	if _, ok := rows[0].Summary["rss_kib_per_connection"]; ok {
		t.Error("the baseline has an idle summary without an idle run")
	}
}

func TestTablesGiveEachMedianItsRatioAndItsSpread(t *testing.T) {
	t.Parallel()
	rows := []figures{
		{Target: "baseline", Fanout: []*fanoutResult{
			{CPUPer1k: 0.02, P50MS: 0.5, P99MS: 1, P999MS: 2},
			{CPUPer1k: 0.022, P50MS: 0.6, P99MS: 1.5, P999MS: 3},
			{CPUPer1k: 0.019, P50MS: 0.4, P99MS: 0.9, P999MS: 2.5},
		}, Knee: knees(8000), Idle: idles(30, 31, 29)},
		{Target: "parley-local", Fanout: []*fanoutResult{
			{CPUPer1k: 0.0304, P50MS: 1, P99MS: 9.3, P999MS: 20},
			{CPUPer1k: 0.0290, P50MS: 1.2, P99MS: 8, P999MS: 25},
			{CPUPer1k: 0.0310, P50MS: 0.9, P99MS: 10, P999MS: 19},
		}, Knee: knees(4000), Idle: idles(52.5, 50, 55)},
		{Target: "parley-postgres", Knee: knees(0)},
	}
	summarise(rows, "baseline")
	var b strings.Builder
	if err := writeTables(&b, rows); err != nil {
		t.Fatal(err)
	}
	header := []string{"target", "CPU", "s/1k", "deliveries", "p50", "ms", "p99", "ms", "p99.9", "ms", "knee", "msg/s", "RSS", "KiB/idle", "conn"}
	want := [][]string{
		header,
		{"baseline", "0.0200", "0.50", "1.00", "2.50", "8000", "30.0"},
		{"parley-local", "0.0304", "(1.52x)", "1.00", "(2.00x)", "9.30", "(9.30x)", "20.00", "(8.00x)", "4000", "(0.50x)", "52.5", "(1.75x)"},
		{"parley-postgres", "-", "-", "-", "-", "0", "(0.00x)", "-"},
		{},
		{"spread", "over", "the", "runs", "(min–max):"},
		header,
		{"baseline", "0.0190–0.0220", "0.40–0.60", "0.90–1.50", "2.00–3.00", "8000", "29.0–31.0"},
		{"parley-local", "0.0290–0.0310", "0.90–1.20", "8.00–10.00", "19.00–25.00", "4000", "50.0–55.0"},
		{"parley-postgres", "-", "-", "-", "-", "0", "-"},
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), b.String())
	}
	for i, line := range lines {
		if got := strings.Fields(line); strings.Join(got, " ") != strings.Join(want[i], " ") {
			t.Errorf("line %d: got %q, want %q", i, got, want[i])
		}
	}
	// Aligned: every line of a table is as wide, in characters, as its
	// header.
	for _, table := range [][]string{lines[:4], lines[6:]} {
		for i, line := range table {
			if got, want := utf8.RuneCountInString(line), utf8.RuneCountInString(table[0]); got != want {
				t.Errorf("line %d is %d wide, the header %d:\n%s", i, got, want, b.String())
			}
		}
	}
}

func TestOneRunEachPrintsNoSpreadTable(t *testing.T) {
	t.Parallel()
	rows := []figures{{Target: "baseline", Knee: knees(8000)}, {Target: "parley-local", Knee: knees(4000)}}
	summarise(rows, "baseline")
	var b strings.Builder
	if err := writeTables(&b, rows); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "spread") || strings.Count(b.String(), "\n") != 3 {
		t.Fatalf("got more than one table for single runs:\n%s", b.String())
	}
}

func TestTableWithoutABaselineHasNoRatios(t *testing.T) {
	t.Parallel()
	rows := []figures{{Target: "parley-local", Knee: knees(4000, 8000)}}
	summarise(rows, "baseline")
	var b strings.Builder
	if err := writeTables(&b, rows); err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`[0-9]x\)`).MatchString(b.String()) {
		t.Fatalf("got ratios without a baseline:\n%s", b.String())
	}
}

func fanouts(cpuPer1k ...float64) []*fanoutResult {
	var out []*fanoutResult
	for _, v := range cpuPer1k {
		out = append(out, &fanoutResult{CPUPer1k: v})
	}
	return out
}

func knees(rates ...float64) []*kneeResult {
	var out []*kneeResult
	for _, v := range rates {
		out = append(out, &kneeResult{Knee: v})
	}
	return out
}

func idles(perConnKiB ...float64) []*idleResult {
	var out []*idleResult
	for _, v := range perConnKiB {
		out = append(out, &idleResult{PerConnKiB: v})
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func TestASaturatedFanoutRunIsLeftOutOfTheMedians(t *testing.T) {
	f := figures{Fanout: []*fanoutResult{
		{CPUPer1k: 0.02},
		{CPUPer1k: 0.003, GeneratorSaturated: true}, // deliveries after the window
		{CPUPer1k: 0.03},
	}}
	got := columns[0].values(f)
	if len(got) != 2 || got[0] != 0.02 || got[1] != 0.03 {
		t.Errorf("got CPU figures %v, want [0.02 0.03] without the saturated run", got)
	}
}
