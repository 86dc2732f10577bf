package testenv

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
)

// ClosedAddr returns a loopback address where nothing listens: a connection
// to it is refused at once.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// StartBlackHole listens on a loopback port that accepts connections and
// never answers, as a host that hangs would, until the test ends. It
// returns the address.
func StartBlackHole(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// Tool returns the path of a command a test runs, such as promtool, or
// skips the test naming the Debian package that provides it; under CI=true
// it fails instead, as .ci/run installs it.
func Tool(t testing.TB, command, debianPackage string) string {
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
