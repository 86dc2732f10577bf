package main

import (
	"math"
	"testing"
	"time"
)

func TestCPUSecondsAddsUserAndSystemTime(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		stat string
		want float64
	}{
		{"plain name", "4242 (parley) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 130 0 0 20 0 9 0 123456 987654321 4567 18446744073709551615", 3.8},
		{"name with spaces and parentheses", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 1 1 1", 0.03},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := cpuSeconds([]byte(tc.stat))
			if err != nil || math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("got %v, %v, want %v", got, err, tc.want)
			}
		})
	}
}

func TestCPUSecondsRefusesATruncatedLine(t *testing.T) {
	t.Parallel()
	for _, stat := range []string{"4242 parley S 1", "4242 (parley) S 1 2 3", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 x 2 0"} {
		if _, err := cpuSeconds([]byte(stat)); err == nil {
			t.Errorf("%q: got no error", stat)
		}
	}
}

func TestRSSKiBReadsVmRSS(t *testing.T) {
	t.Parallel()
	status := "Name:\tparley\nVmPeak:\t  900000 kB\nVmRSS:\t   52345 kB\nThreads:\t9\n"
	if got, err := rssKiB([]byte(status)); err != nil || got != 52345 {
		t.Fatalf("got %d, %v, want 52345", got, err)
	}
	if _, err := rssKiB([]byte("Name:\tzombie\n")); err == nil {
		t.Fatal("a status without VmRSS: got no error")
	}
}

func TestCPUAtInterpolatesBetweenSamples(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	series := []sample{{at: t0, cpu: 1}, {at: t0.Add(100 * time.Millisecond), cpu: 2}, {at: t0.Add(200 * time.Millisecond), cpu: 2.5}}
	for _, tc := range []struct {
		at     time.Duration
		want   float64
		wantOK bool
	}{
		{0, 1, true},
		{25 * time.Millisecond, 1.25, true},
		{100 * time.Millisecond, 2, true},
		{150 * time.Millisecond, 2.25, true},
		{200 * time.Millisecond, 2.5, true},
		{-time.Millisecond, 0, false},
		{201 * time.Millisecond, 0, false},
	} {
		got, ok := cpuAt(series, t0.Add(tc.at))
		if ok != tc.wantOK || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("at %v: got %v, %v, want %v, %v", tc.at, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestRSSBeforeTakesTheLastSampleNotAfter(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	series := []sample{{at: t0, rssKiB: 10}, {at: t0.Add(time.Second), rssKiB: 20}}
	for _, tc := range []struct {
		at     time.Duration
		want   int64
		wantOK bool
	}{{-1, 0, false}, {0, 10, true}, {999 * time.Millisecond, 10, true}, {time.Second, 20, true}, {time.Hour, 20, true}} {
		if got, ok := rssBefore(series, t0.Add(tc.at)); got != tc.want || ok != tc.wantOK {
			t.Errorf("at %v: got %d, %v, want %d, %v", tc.at, got, ok, tc.want, tc.wantOK)
		}
	}
}
