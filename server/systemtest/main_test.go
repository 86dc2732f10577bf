package systemtest

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/parleychat/parley/internal/testenv"
)

// TestMain fails the package's tests if any goroutine outlives them, and
// removes the programs the tests built (testenv.GoBuild).
//
// Tests that mostly wait on the clock (a load generator's scenario, alerts
// travelling through Prometheus, token expiry) or are light call
// t.Parallel. Those whose time is their CPU run alone: the cluster
// scenarios (three race-enabled server processes under load), the
// slow-consumer flood and the browser tests. On two cores, running them
// beside the others made the cluster scenarios up to 60% slower each, for
// a sixth of the package's time (191 s against 224 s): not worth the
// headroom their waits would lose on a busier machine.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { testenv.RemoveBuilds() }))
}
