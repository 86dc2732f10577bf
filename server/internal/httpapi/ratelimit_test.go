package httpapi

import (
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestFloodGuard(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	every := func(from, to, step int) []time.Time {
		var ts []time.Time
		for ms := from; ms <= to; ms += step {
			ts = append(ts, at(ms))
		}
		return ts
	}
	tests := []struct {
		name     string
		refusals []time.Time // the last one is the one judged
		want     bool
	}{
		{"a first refusal is no flood", []time.Time{at(0)}, false},
		{"a streak as long as the window is no flood", every(0, 5000, 1000), false},
		{"a streak longer than the window trips it", append(every(0, 5000, 1000), at(5001)), true},
		{"a pause over one second restarts the streak", append(every(0, 4500, 500), at(5501), at(6000)), false},
		{"a restarted streak trips it once it outlasts the window", append(append(every(0, 500, 500), every(1501, 6501, 1000)...), at(6502)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := floodGuard{window: 5 * time.Second}
			var got bool
			for _, now := range tt.refusals {
				got = g.refused(now)
			}
			if got != tt.want {
				t.Errorf("got refused() = %v after %d refusals, want %v", got, len(tt.refusals), tt.want)
			}
		})
	}
}

func TestUserLimitsAllowABurstOfTwiceTheRateThenRefuse(t *testing.T) {
	t.Parallel()
	const userRate = 5
	// The clock stands still: no token comes back during the test.
	u := mustBuildServer(t, Config{UserRate: userRate, Now: clockAt(time.Now())}).users
	for i := range 2 * userRate {
		if !u.allow("alice") {
			t.Fatalf("message %d of the burst: got refused, want allowed", i+1)
		}
	}
	if u.allow("alice") {
		t.Errorf("message %d: got allowed, want refused", 2*userRate+1)
	}
}

func TestUserLimitsKeepOneBucketPerUser(t *testing.T) {
	t.Parallel()
	u := newUserLimits(1, 2, clockAt(time.Now()))
	for u.allow("alice") {
	}
	if !u.allow("bob") {
		t.Error("bob after alice spent her bucket: got refused, want allowed")
	}
	if u.allow("alice") {
		t.Error("alice with an empty bucket: got allowed, want refused")
	}
}

func TestUserLimitsRefillAtTheRate(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	u := newUserLimits(1, 2, func() time.Time { return now })
	for u.allow("alice") {
	}
	now = now.Add(999 * time.Millisecond)
	if u.allow("alice") {
		t.Error("alice 999ms after spending her bucket at 1/s: got allowed, want refused")
	}
	now = now.Add(time.Millisecond)
	if !u.allow("alice") {
		t.Error("alice a second after spending her bucket at 1/s: got refused, want allowed")
	}
}

func TestUserLimitsSweepDropsIdleBuckets(t *testing.T) {
	t.Parallel()
	lastUse := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	u := newUserLimits(1, 2, clockAt(lastUse)) // an empty bucket refills in 2s
	u.allow("alice")
	u.allow("bob")

	u.sweep(lastUse.Add(time.Second))
	if got := len(u.buckets); got != 2 {
		t.Fatalf("sweep one second after use: got %d buckets, want 2 (not refilled yet)", got)
	}

	u.buckets["bob"].lastUsed = lastUse.Add(10 * time.Second)
	u.sweep(lastUse.Add(11 * time.Second))
	if _, ok := u.buckets["alice"]; ok {
		t.Error("alice, idle for 11s: got a bucket kept, want it dropped")
	}
	if _, ok := u.buckets["bob"]; !ok {
		t.Error("bob, idle for 1s: got his bucket dropped, want it kept")
	}
}

// clockAt is a clock that stands still at t.
func clockAt(t time.Time) func() time.Time {
	return func() time.Time { return t }
}

// mustBuildServer builds a Server for tests that need only its own state;
// they never reach the chat or auth services.
func mustBuildServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	return New(nil, nil, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), cfg)
}
