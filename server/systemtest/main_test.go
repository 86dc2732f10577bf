package systemtest

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them, and
// removes the server binary that process tests build.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		if binary.dir != "" {
			os.RemoveAll(binary.dir)
		}
	}))
}
