package systemtest

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/parleychat/parley/internal/testenv"
)

// TestMain fails the package's tests if any goroutine outlives them, and
// removes the programs the tests built (testenv.GoBuild).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { testenv.RemoveBuilds() }))
}
