package main

import (
	"io"
	"strings"
	"testing"
)

func TestRunsDefaultToThreeAndTheKneeToOne(t *testing.T) {
	t.Parallel()
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for shape, want := range map[string]int{shapeFanout: 3, shapeIdle: 3, shapeKnee: 1} {
		if got := o.rounds(shape); got != want {
			t.Errorf("%s: got %d runs, want %d", shape, got, want)
		}
	}
}

func TestRunsBelowOneAreRefusedByName(t *testing.T) {
	t.Parallel()
	_, err := parseFlags([]string{"-runs", "0", "-knee-runs", "-1"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-runs must be") || !strings.Contains(err.Error(), "-knee-runs must be") {
		t.Fatalf("got %v, want both flags named", err)
	}
}

func TestRunCountsSayHowManyRunsEachShapeHad(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		shapes         []string
		runs, kneeRuns int
		want           string
	}{
		{[]string{shapeFanout, shapeKnee, shapeIdle}, 3, 1, "3 runs (knee 1)"},
		{[]string{shapeFanout, shapeKnee}, 3, 3, "3 runs"},
		{[]string{shapeFanout}, 2, 1, "2 runs"},
		{[]string{shapeKnee}, 3, 1, "1 run"},
		{[]string{shapeIdle}, 1, 5, "1 run"},
	} {
		o := options{shapes: tc.shapes, runs: tc.runs, kneeRuns: tc.kneeRuns}
		if got := runCounts(o); got != tc.want {
			t.Errorf("%v, -runs %d, -knee-runs %d: got %q, want %q", tc.shapes, tc.runs, tc.kneeRuns, got, tc.want)
		}
	}
}
