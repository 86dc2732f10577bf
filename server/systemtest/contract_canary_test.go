package systemtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleychat/parley/internal/testenv"
)

// canaryNames returns the series names the synthetic canary (canary/)
// exposes, for the metric contract: the built canary probing a server of
// its own until a probe has succeeded. Its other series exist from its
// start (failures by step at zero, the last-success gauge).
func canaryNames(t *testing.T) map[string]bool {
	t.Helper()
	srv := startServer(t, envFor(t, "memory"))
	metrics := startCanary(t, srv.base, "100ms")
	testenv.Eventually(t, "a successful canary probe", func() bool {
		return testenv.Samples(t, metrics)[`parley_canary_latency_seconds_count{path="same_replica"}`] > 0
	})
	return exposedNames(t, metrics)
}

// scrapeWithCanary runs a canary against target and adds it to
// Prometheus's file_sd targets (job canary), so that the canary SLO and its
// panels have data like the server's.
func scrapeWithCanary(t *testing.T, targets, target, interval string) {
	t.Helper()
	metrics := startCanary(t, target, interval)
	host := strings.TrimSuffix(strings.TrimPrefix(metrics, "http://"), "/metrics")
	writeTargets(t, filepath.Join(targets, "canary.yml"), host)
}

// startCanary starts the built canary probing target every interval and
// returns the URL of its /metrics.
func startCanary(t *testing.T, target, interval string) string {
	t.Helper()
	canary := exec.Command(testenv.GoBuild(t, "github.com/parleychat/parley/canary"),
		"-target", target, "-metrics-addr", "127.0.0.1:0", "-interval", interval)
	canary.Env = append(os.Environ(), "CANARY_PASSWORD=canary-system-test")
	return "http://" + startDaemon(t, "canary", canary, jsonListening) + "/metrics"
}
