package testenv

import (
	"strconv"
	"testing"
)

// missing ends a test that lacks something outside Go: it skips, saying what
// is missing and how to provide it, so `go test ./...` works on a laptop with
// nothing installed; under CI=true, where .ci/run provides everything, it
// fails instead, because a skip there would hide that the test never ran.
// getenv is os.Getenv but in testenv's own tests, which pass a map so that
// they need not change the process's environment and can run in parallel.
func missing(t testing.TB, getenv func(string) string, what, provide string) {
	t.Helper()
	if ci, _ := strconv.ParseBool(getenv("CI")); ci {
		t.Fatalf("%s: CI must provide it (%s)", what, provide)
	}
	t.Skipf("%s: %s to run this test", what, provide)
}
