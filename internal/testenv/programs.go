package testenv

import (
	"os/exec"
	"testing"
)

// Find returns the path of command, one of the programs tests run beside Go
// (promtool, amtool, Prometheus, Alertmanager, Chromium), or skips (fails under CI=true) the test
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
	missing(t, command+" not found", "install it: "+install)
	return ""
}
