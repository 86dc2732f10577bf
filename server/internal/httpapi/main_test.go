package httpapi

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// connection, pump, timer callback and hub goroutine must have ended.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
