package stats

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/loadtest/ledger"
)

// The generator's series are those the load-test dashboard's "Load
// generator" row queries, and they follow the ledger.
func TestMetricsFollowTheRun(t *testing.T) {
	t.Parallel()
	start := time.Now()
	l := ledger.New(start, time.Second)
	var c Counters
	c.Connections.Store(2)
	addr, stop, err := ServeMetrics("127.0.0.1:0", l, &c)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	l.Expect("m1", "room", start, []int32{0, 1})
	l.Acked("m1", start.Add(20*time.Millisecond))
	l.Delivered(0, "room", "m1", 1, start.Add(30*time.Millisecond), false)
	l.Delivered(1, "room", "m1", 1, start.Add(40*time.Millisecond), false)

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`parley_loadtest_sends_total{outcome="acked"} 1`,
		`parley_loadtest_connections 2`,
		`parley_loadtest_ack_latency_seconds_bucket{le="0.025"} 1`,
		`parley_loadtest_delivery_latency_seconds_count 2`,
		`parley_loadtest_delivery_latency_seconds_bucket{le="0.025"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
