package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Find returns the path of command, one of the programs tests run beside Go
// (promtool, amtool, Prometheus, Alertmanager, Chromium), or skips (fails under CI=true) the test
// naming debianPackage.
func Find(t testing.TB, command, debianPackage string) string {
	t.Helper()
	return find(t, os.Getenv, command, fromDebian(debianPackage))
}

// FindGo is Find for a program built with go install: the skip names the
// package path and version to install.
func FindGo(t testing.TB, command, packageAtVersion string) string {
	t.Helper()
	return find(t, os.Getenv, command, goInstall(packageAtVersion))
}

// fromDebian and goInstall say how to install a missing program.
func fromDebian(pkg string) string             { return "Debian's " + pkg + " package" }
func goInstall(packageAtVersion string) string { return "go install " + packageAtVersion }

func find(t testing.TB, getenv func(string) string, command, install string) string {
	t.Helper()
	path, err := exec.LookPath(command)
	if err == nil {
		return path
	}
	missing(t, getenv, command+" not found", "install it: "+install)
	return ""
}
