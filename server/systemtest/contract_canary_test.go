package systemtest

import (
	"os"
	"os/exec"
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
	canary := exec.Command(testenv.GoBuild(t, "github.com/parleychat/parley/canary"),
		"-target", srv.base, "-metrics-addr", "127.0.0.1:0", "-interval", "100ms")
	canary.Env = append(os.Environ(), "CANARY_PASSWORD=canary-contract-test")
	metrics := "http://" + startDaemon(t, "canary", canary, jsonListening) + "/metrics"
	testenv.Eventually(t, "a successful canary probe", func() bool {
		return scrapeCanary(t, metrics)[`parley_canary_latency_seconds_count{path="same_replica"}`] > 0
	})
	return exposedNames(t, metrics)
}
