package driver

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The generator reports the latencies a server imposes, including a stall:
// the fake server answers every send 20 ms after receiving it, except that
// for half a second, two seconds in, it answers nothing and then
// everything at once. An open model keeps sending through the stall, and
// measuring from the intended send time, a tenth of the messages wait
// between 20 and 520 ms: p50 is 20 ms and p99 about 470 ms, where a
// closed-loop generator would have sent almost nothing during the stall
// and reported a p99 near 20 ms.
//
// The reference is what the fake server really did (receipt of each send
// to the end of each write), since on a busy machine the burst at the
// stall's end queues for a while: the generator's percentiles must be
// within 15 ms plus 10% of those, and the stall must show in p99. It is
// not parallel: the generator's own lag is inside what it measures, and
// other tests' work would add to it.
func TestLatencyAccuracyWithAStall(t *testing.T) {
	const (
		delay    = 20 * time.Millisecond
		stallAt  = 2 * time.Second
		stallFor = 500 * time.Millisecond
		early    = 15 * time.Millisecond
	)
	var (
		firstMu sync.Mutex
		first   time.Time
	)
	srv := newFakeServer(func(received time.Time) time.Time {
		firstMu.Lock()
		if first.IsZero() {
			first = received
		}
		stallStart := first.Add(stallAt)
		firstMu.Unlock()
		if !received.Before(stallStart) && received.Before(stallStart.Add(stallFor)) {
			return stallStart.Add(stallFor + delay)
		}
		return received.Add(delay)
	})
	hs := httptest.NewServer(srv)
	defer hs.Close()

	dir := t.TempDir()
	scenarioFile := filepath.Join(dir, "accuracy.yaml")
	os.WriteFile(scenarioFile, []byte(`
name: accuracy
users: {count: 4}
rooms: [{name: r, count: 1, members: 4}]
stages: [{name: steady, duration: 5s, rate: 200}]
drain: 3s
thresholds: ["lost == 0"]
`), 0o644)
	result := filepath.Join(dir, "result.json")
	cfg := testConfig(hs.URL, scenarioFile)
	cfg.JSONOut = result
	err := Drive(context.Background(), cfg, io.Discard, io.Discard)
	srv.pending.Wait()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(result)
	var r struct {
		Counts struct{ Sent, Acked, Lost int64 }
		Values map[string]float64
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if r.Counts.Sent != 1000 || r.Counts.Acked != 1000 || r.Counts.Lost != 0 {
		t.Fatalf("got %+v, want 1000 sends, all acked, none lost", r.Counts)
	}
	t.Logf("injected 20 ms and a 500 ms stall: ack p50 %.1f ms p99 %.1f ms; delivery p50 %.1f ms p99 %.1f ms max %.1f ms",
		r.Values["ack_p50"]*1000, r.Values["ack_p99"]*1000, r.Values["delivery_p50"]*1000, r.Values["delivery_p99"]*1000, r.Values["delivery_max"]*1000)
	seconds := func(d time.Duration) float64 { return d.Seconds() }
	srv.truthMu.Lock()
	defer srv.truthMu.Unlock()
	// The percentiles must agree with the server's record both ways. The
	// maximum is one sample: a single scheduling hiccup of a busy machine
	// lengthens it, so only understating it (what coordinated omission
	// does) fails.
	for _, c := range []struct {
		metric  string
		truth   []time.Duration
		p       float64
		onlyMin bool
	}{
		{"ack_p50", srv.ackTruth, 50, false},
		{"ack_p99", srv.ackTruth, 99, false},
		{"delivery_p50", srv.delTruth, 50, false},
		{"delivery_p99", srv.delTruth, 99, false},
		{"delivery_max", srv.delTruth, 100, true},
	} {
		want := percentile(c.truth, c.p)
		margin := 15*time.Millisecond + want/10
		got := r.Values[c.metric]
		if got < seconds(want-margin) || (!c.onlyMin && got > seconds(want+margin)) {
			t.Errorf("%s = %.1f ms, the server's own record says %v (± %v)", c.metric, got*1000, want.Round(time.Millisecond), margin.Round(time.Millisecond))
		}
	}
	if got := r.Values["delivery_p99"]; got < seconds(stallFor*9/10+delay-early) {
		t.Errorf("delivery p99 %.1f ms hides the stall: it must be at least %v", got*1000, stallFor*9/10+delay-early)
	}
}
