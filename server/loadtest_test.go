package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The load generator's smoke scenario against two replicas on PostgreSQL
// and Redis, its users spread over both as a load balancer would: every
// threshold holds (nothing lost, duplicated, reordered or refused), and the
// JSON and HTML reports are written. The generator is a black box that
// speaks only the public protocol, so this is also a contract test.
func TestLoadtestSmokeScenario(t *testing.T) {
	c := newCluster(t, 2)
	bin := goBuild(t, "../loadtest")
	dir := t.TempDir()
	result, page := filepath.Join(dir, "result.json"), filepath.Join(dir, "report.html")
	cmd := exec.Command(bin,
		"-target", c.live[0].base+","+c.live[1].base,
		"-scenario", "../loadtest/scenarios/smoke.yaml",
		"-json", result, "-html", page, "-quiet")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("loadtest: %v\n%s", err, out)
	}
	t.Logf("loadtest:\n%s", out)

	raw, err := os.ReadFile(result)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Pass   bool
		Counts struct {
			Sent, Acked, Expected, Delivered, Lost, Duplicates, Reordered int64
		}
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if !r.Pass || r.Counts.Sent == 0 || r.Counts.Acked != r.Counts.Sent || r.Counts.Delivered != r.Counts.Expected || r.Counts.Lost+r.Counts.Duplicates+r.Counts.Reordered != 0 {
		t.Errorf("got %+v, want a pass with every send acked and every delivery made", r)
	}
	// Both replicas carried the run: the room with everyone spans them.
	for _, p := range c.live {
		if got := p.metricLabelled("parley_sends_total", `outcome="acked",reason="",transport="ws"`); got == 0 {
			t.Errorf("replica %s acked no sends", p.base)
		}
	}
	html, err := os.ReadFile(page)
	if err != nil || !strings.Contains(string(html), "smoke") {
		t.Errorf("HTML report: %v, %d bytes", err, len(html))
	}
}
