package httpapi

import (
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
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

func TestSendLimitAllowsABurstOfTwiceTheRateThenRefuses(t *testing.T) {
	t.Parallel()
	const userRate = 5
	// The clock stands still: no token comes back during the test.
	u := mustBuildServer(t, Config{UserRate: userRate, Now: clockAt(time.Now())}).sends
	for i := range 2 * userRate {
		if ok, _ := u.allow("alice"); !ok {
			t.Fatalf("message %d of the burst: got refused, want allowed", i+1)
		}
	}
	if ok, wait := u.allow("alice"); ok || wait != time.Second/userRate {
		t.Errorf("message %d: got allowed=%v wait %v, want refused with a wait of %v", 2*userRate+1, ok, wait, time.Second/userRate)
	}
}

func TestKeyedLimiterKeepsOneBucketPerKey(t *testing.T) {
	t.Parallel()
	u := newKeyedLimiter(1, 2, clockAt(time.Now()))
	for allowed(u, "alice") {
	}
	if !allowed(u, "bob") {
		t.Error("bob after alice spent her bucket: got refused, want allowed")
	}
	if allowed(u, "alice") {
		t.Error("alice with an empty bucket: got allowed, want refused")
	}
}

func TestKeyedLimiterRefillsAtTheRateAndSaysWhen(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	u := newKeyedLimiter(1, 2, func() time.Time { return now })
	for allowed(u, "alice") {
	}
	now = now.Add(250 * time.Millisecond)
	if ok, wait := u.allow("alice"); ok || wait != 750*time.Millisecond {
		t.Errorf("alice 250ms after spending her bucket at 1/s: got allowed=%v wait %v, want refused with a wait of 750ms", ok, wait)
	}
	now = now.Add(749 * time.Millisecond)
	if allowed(u, "alice") {
		t.Error("alice 999ms after spending her bucket at 1/s: got allowed, want refused")
	}
	now = now.Add(time.Millisecond)
	if !allowed(u, "alice") {
		t.Error("alice a second after spending her bucket at 1/s: got refused, want allowed")
	}
}

func TestKeyedLimiterOffAllowsEverything(t *testing.T) {
	t.Parallel()
	u := newKeyedLimiter(0, 10, clockAt(time.Now()))
	for i := range 1000 {
		if ok, wait := u.allow("alice"); !ok {
			t.Fatalf("request %d to a limit switched off: got refused with a wait of %v, want allowed", i+1, wait)
		}
	}
}

func TestKeyedLimiterSweepDropsRefilledBuckets(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	u := newKeyedLimiter(1, 2, func() time.Time { return now }) // an empty bucket refills in 2s
	u.allow("alice")
	u.allow("bob")

	u.sweep(now.Add(500 * time.Millisecond))
	if got := len(u.buckets); got != 2 {
		t.Fatalf("sweep half a second after use: got %d buckets, want 2 (not refilled yet)", got)
	}

	now = now.Add(10 * time.Second)
	u.allow("bob")
	u.sweep(now.Add(500 * time.Millisecond))
	if _, ok := u.buckets["alice"]; ok {
		t.Error("alice, idle for 10.5s: got a bucket kept, want it dropped")
	}
	if _, ok := u.buckets["bob"]; !ok {
		t.Error("bob, idle for 0.5s: got his bucket dropped, want it kept")
	}
}

// An attacker who varies the key (a new address, a new username) faster
// than the sweep can drop buckets fills the map up to maxKeys and no
// further; the keys evicted get full buckets back, never fewer tokens.
func TestKeyedLimiterMemoryIsBounded(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	u := newKeyedLimiter(1, 1, func() time.Time { return now })
	u.maxKeys = 1000
	for i := range 50_000 {
		u.allow(fmt.Sprintf("203.0.%d.%d", i/256, i%256))
		if i%997 == 0 {
			now = now.Add(time.Millisecond) // never long enough to refill
		}
	}
	if got := len(u.buckets); got != u.maxKeys {
		t.Errorf("after 50,000 keys: got %d buckets, want the cap, %d", got, u.maxKeys)
	}

	// What a full map of the default cap weighs, for docs/operations.md.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	full := newKeyedLimiter(1, 1, clockAt(now))
	for i := range defaultMaxKeys {
		full.allow(addrKey(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})).String())
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perKey := float64(after.HeapAlloc-before.HeapAlloc) / defaultMaxKeys
	t.Logf("%d address buckets: %.1f MiB, %.0f bytes a key", len(full.buckets), float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), perKey)
	runtime.KeepAlive(full)
}

func allowed(u *keyedLimiter, key string) bool {
	ok, _ := u.allow(key)
	return ok
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
