package systemtest

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The load generator's SLI truth check (-sli-check) against two real
// replicas on PostgreSQL and Redis, proving it can fail and that it
// passes when the servers tell the truth.
//
// The failing run reads the replicas' /metrics through a proxy that skews
// the delivery histogram as an instrumentation bug would (skewDeliveries):
// no fault of the server's skews only its own measurement (slow_fanout
// and the others slow real deliveries, which the users see too), and a
// production knob that falsifies a metric would be a trap, so the skew is
// a test hook on the scrape path. It leaves every count alone, so only
// the latency shares can tell, and the test asserts that they are what
// failed. It runs first, on a fresh cluster: the proxy moves a third of
// all the deliveries a replica ever counted, which is a third of this
// run's only while the run is all there is.
func TestLoadtestTruthCheck(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	scenario := filepath.Join(t.TempDir(), "truth.yaml")
	writeFile(t, scenario, `
name: truth
users: {count: 10}
rooms: [{name: team, count: 2, members: 5}, {name: all, count: 1, members: 10}]
stages: [{name: steady, duration: 4s, rate: 20}]
drain: 5s
thresholds: ["lost == 0", "unanswered == 0", "ack_error_rate == 0"]
`)
	targets := "-target=" + c.live[0].base + "," + c.live[1].base

	skewed := skewedMetrics(t, c.live[0].admin) + "," + skewedMetrics(t, c.live[1].admin)
	result, out, err := runLoadtest(t, targets, "-scenario", scenario, "-sli-check", skewed)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("skewed: got %v, want exit status 1 (a failed check)\n%s", err, out)
	}
	v := truthVerdict(t, result, out)
	if v.Pass || !strings.Contains(v.Detail, "deliveries ≤ 250ms: users ") {
		t.Errorf("skewed: got verdict %v, want a failure naming the share under 250ms", v.Detail)
	}
	for what, want := range map[string]string{"sends acked": "PASS", "deliveries": "PASS", "deliveries ≤ 250ms": "FAIL", "deliveries ≤ 1s": "FAIL"} {
		if got := v.row(what); got == nil || got[len(got)-1] != want {
			t.Errorf("skewed: got row %q, want %s\n%s", got, want, out)
		}
	}
	// The run itself was sound: the check alone failed it.
	if !strings.Contains(out, "Result: FAIL: sli-truth\n") {
		t.Errorf("skewed: want the SLI check to be the only failure\n%s", out)
	}
	t.Logf("skewed histogram:\n%s", v.table())

	direct := c.live[0].admin + "/metrics," + c.live[1].admin + "/metrics"
	result, out, err = runLoadtest(t, targets, "-scenario", scenario, "-sli-check", direct)
	if err != nil {
		t.Fatalf("healthy: %v\n%s", err, out)
	}
	v = truthVerdict(t, result, out)
	counts, _ := result["counts"].(map[string]any)
	acked := fmt.Sprint(counts["acked"])
	if !v.Pass || v.row("sends acked") == nil || v.row("sends acked")[1] != acked || v.row("deliveries ≤ 250ms") == nil {
		t.Fatalf("healthy: got %v, want a pass over the run's %s acked sends\n%s", v.Detail, acked, out)
	}
	t.Logf("healthy:\n%s", v.table())
}

// truthCheck is the SLI truth check's verdict in the JSON report.
type truthCheck struct {
	Pass   bool
	Detail string
	Table  [][]string
}

func truthVerdict(t *testing.T, result map[string]any, out string) truthCheck {
	t.Helper()
	checks, _ := result["checks"].([]any)
	for _, c := range checks {
		m, _ := c.(map[string]any)
		if m["name"] != "sli-truth" {
			continue
		}
		v := truthCheck{Detail: fmt.Sprint(m["detail"])}
		v.Pass, _ = m["pass"].(bool)
		rows, _ := m["table"].([]any)
		for _, r := range rows {
			cells, _ := r.([]any)
			var row []string
			for _, cell := range cells {
				row = append(row, fmt.Sprint(cell))
			}
			v.Table = append(v.Table, row)
		}
		return v
	}
	t.Fatalf("no sli-truth check in the report\n%s", out)
	return truthCheck{}
}

// row is the table's row for a comparison: what, users, servers, allowed,
// verdict.
func (v truthCheck) row(what string) []string {
	for _, r := range v.Table {
		if len(r) == 5 && r[0] == what {
			return r
		}
	}
	return nil
}

func (v truthCheck) table() string {
	var b strings.Builder
	for _, r := range v.Table {
		fmt.Fprintf(&b, "  %-20s %10s %10s  %-38s %s\n", r[0], r[1], r[2], r[3], r[4])
	}
	return b.String()
}

// skewedMetrics serves a replica's admin /metrics with its delivery
// histogram skewed (skewDeliveries), and returns the URL.
func skewedMetrics(t *testing.T, admin string) string {
	t.Helper()
	client := newHTTPClient()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := client.Get(admin + "/metrics")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		page, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			http.Error(w, fmt.Sprintf("%s: %v", resp.Status, err), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.Write(skewDeliveries(page))
	}))
	t.Cleanup(func() { srv.Close(); client.CloseIdleConnections() })
	return srv.URL + "/metrics"
}

var (
	deliveryBucket = regexp.MustCompile(`(?m)^parley_delivery_latency_seconds_bucket\{le="([^"]+)"\} (\S+)$`)
	deliveryCount  = regexp.MustCompile(`(?m)^parley_delivery_latency_seconds_count (\S+)$`)
)

// skewDeliveries rewrites the delivery histogram of a /metrics page in
// the text format as a server would report it that timed a third of its
// deliveries from a stale arrival stamp: the fastest third moved past
// every finite bound, into +Inf. The count, the sum and every other
// series are left alone.
func skewDeliveries(page []byte) []byte {
	m := deliveryCount.FindSubmatch(page)
	if m == nil {
		return page // the check will say the histogram is missing
	}
	count, _ := strconv.ParseFloat(string(m[1]), 64)
	moved := math.Floor(count / 3)
	return deliveryBucket.ReplaceAllFunc(page, func(line []byte) []byte {
		b := deliveryBucket.FindSubmatch(line)
		n, err := strconv.ParseFloat(string(b[2]), 64)
		if string(b[1]) == "+Inf" || err != nil {
			return line
		}
		return fmt.Appendf(nil, `parley_delivery_latency_seconds_bucket{le="%s"} %v`, b[1], max(0, n-moved))
	})
}
