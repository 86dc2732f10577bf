package main

import (
	"strings"
	"testing"
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

func TestTableGivesEachFigureAndItsRatioToTheBaseline(t *testing.T) {
	t.Parallel()
	rows := []figures{
		{Target: "baseline", Fanout: &fanoutResult{CPUPer1k: 0.02, P50MS: 0.5, P99MS: 1, P999MS: 2}, Knee: &kneeResult{Knee: 8000}, Idle: &idleResult{PerConnKiB: 30}},
		{Target: "parley-local", Fanout: &fanoutResult{CPUPer1k: 0.0304, P50MS: 1, P99MS: 9.3, P999MS: 20}, Knee: &kneeResult{Knee: 4000}, Idle: &idleResult{PerConnKiB: 52.5}},
		{Target: "parley-postgres", Knee: &kneeResult{Knee: 2000}},
	}
	var b strings.Builder
	if err := writeTable(&b, rows, "baseline"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	want := [][]string{
		{"target", "CPU", "s/1k", "deliveries", "p50", "ms", "p99", "ms", "p99.9", "ms", "knee", "msg/s", "RSS", "KiB/idle", "conn"},
		{"baseline", "0.0200", "0.50", "1.00", "2.00", "8000", "30.0"},
		{"parley-local", "0.0304", "(1.52x)", "1.00", "(2.00x)", "9.30", "(9.30x)", "20.00", "(10.00x)", "4000", "(0.50x)", "52.5", "(1.75x)"},
		{"parley-postgres", "-", "-", "-", "-", "2000", "(0.25x)", "-"},
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), b.String())
	}
	for i, line := range lines {
		if got := strings.Fields(line); strings.Join(got, " ") != strings.Join(want[i], " ") {
			t.Errorf("line %d: got %q, want %q", i, got, want[i])
		}
	}
	// Aligned: every line is as wide as the header.
	for i, line := range lines {
		if len(line) != len(lines[0]) {
			t.Errorf("line %d is %d wide, the header %d:\n%s", i, len(line), len(lines[0]), b.String())
		}
	}
}

func TestTableWithoutABaselineHasNoRatios(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	if err := writeTable(&b, []figures{{Target: "parley-local", Knee: &kneeResult{Knee: 4000}}}, "baseline"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "x)") {
		t.Fatalf("got ratios without a baseline:\n%s", b.String())
	}
}
