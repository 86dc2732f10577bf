// Package testtool finds the programs that tests run beside Go: promtool,
// amtool, Prometheus and Alertmanager. It sits at the module's root so that
// the server's tests and the alerts' tests share one rule for a missing
// program: skip naming the Debian package that provides it, and under
// CI=true (where .ci/run installs it) fail instead.
package testtool

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// Find returns the path of command, or skips (fails under CI=true) the test
// naming debianPackage.
func Find(t testing.TB, command, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(command)
	if err == nil {
		return path
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatalf("%s not found: CI must install Debian's %s package", command, debianPackage)
	}
	t.Skipf("%s not found: install Debian's %s package to run this test", command, debianPackage)
	return ""
}
