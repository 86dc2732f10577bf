package driver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A server whose limits refuse things paces the run, and the run still
// comes through whole: the fake server refuses the first attempt of every
// sign-up and room creation (429) and of every join and send (error frame
// rate_limited), each asking for 200 ms. The generator waits each refusal
// out and tries again (a send with the same client_id), so every send is
// acked and none counts as failed; ack latencies run from the intended
// send time and so include the wait; and the report says how much the
// server paced the run.
func TestRunIsPacedByRateLimits(t *testing.T) {
	t.Parallel()
	const wait = 200 * time.Millisecond
	srv := newFakeServer(func(received time.Time) time.Time { return received.Add(5 * time.Millisecond) })
	srv.refuseFirst = wait
	hs := httptest.NewServer(srv)
	defer hs.Close()

	dir := t.TempDir()
	scenarioFile := filepath.Join(dir, "paced.yaml")
	// Two rooms of every user: each connection has two joins refused at
	// once, answered in order with nothing but ref "join".
	if err := os.WriteFile(scenarioFile, []byte(`
name: paced
users: {count: 4}
rooms: [{name: r, count: 2, members: 4}]
stages: [{name: steady, duration: 2s, rate: 20}]
drain: 3s
thresholds: ["lost == 0", "ack_error_rate == 0", "unanswered == 0"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	result := filepath.Join(dir, "result.json")
	cfg := testConfig(hs.URL, scenarioFile)
	cfg.JSONOut = result
	var table bytes.Buffer
	err := Drive(context.Background(), cfg, &table, io.Discard)
	srv.pending.Wait()
	if err != nil {
		t.Fatalf("%v\n%s", err, table.String())
	}
	raw, err := os.ReadFile(result)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Counts  struct{ Sent, Acked, Failed, Lost int64 }
		Latency struct {
			Ack struct {
				MinMS float64 `json:"min_ms"`
			}
		}
		Pacing struct {
			REST, Frames struct {
				Refusals int64
				WaitedMS float64 `json:"waited_ms"`
			}
		}
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if r.Counts.Sent != 40 || r.Counts.Acked != 40 || r.Counts.Failed != 0 || r.Counts.Lost != 0 {
		t.Errorf("got %+v, want 40 sends, all acked, none failed or lost", r.Counts)
	}
	if got, want := r.Pacing.REST.Refusals, int64(4+2); got != want {
		t.Errorf("got %d REST refusals waited out, want %d (4 sign-ups, 2 rooms)", got, want)
	}
	if got, want := r.Pacing.Frames.Refusals, int64(4*2+40); got != want {
		t.Errorf("got %d frames resent, want %d (8 joins, 40 sends)", got, want)
	}
	if got := r.Latency.Ack.MinMS; got < float64(wait/time.Millisecond) {
		t.Errorf("the fastest ack took %.1f ms, want at least the %v wait: latency must run from the first attempt", got, wait)
	}
	if !strings.Contains(table.String(), "Paced by the server: REST 6 refusals (429)") {
		t.Errorf("the table does not say the run was paced:\n%s", table.String())
	}
}
