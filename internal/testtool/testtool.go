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
	return find(t, command, "Debian's "+debianPackage+" package")
}

// FindGo is Find for a program built with go install: the skip names the
// package path and version to install.
func FindGo(t testing.TB, command, packageAtVersion string) string {
	t.Helper()
	return find(t, command, "go install "+packageAtVersion)
}

func find(t testing.TB, command, install string) string {
	t.Helper()
	path, err := exec.LookPath(command)
	if err == nil {
		return path
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatalf("%s not found: CI must install it (%s)", command, install)
	}
	t.Skipf("%s not found: install it (%s) to run this test", command, install)
	return ""
}
