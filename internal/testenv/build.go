package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// builds holds what GoBuild has built in this test process, by package.
// It is the package's one piece of mutable state: a cache that must outlive
// each test, because a program is built once however many tests run it, and
// a minute's race-enabled build of the server per test would dwarf the tests.
var builds struct {
	mu   sync.Mutex
	dir  string // made on the first build, removed by RemoveBuilds
	pkgs map[string]*build
}

// build is one package's binary, built by the first test that asks for it.
type build struct {
	once sync.Once
	path string
	err  error
}

// GoBuild builds the main package pkg (an import path) and returns the
// binary's path. Each package is built once per test process, with the race
// detector when the tests have it, so that a race in a program a test runs
// fails that test as well. A TestMain that lets tests call GoBuild calls
// RemoveBuilds after the tests.
func GoBuild(t testing.TB, pkg string) string {
	t.Helper()
	b, dir, err := buildFor(pkg)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	b.once.Do(func() { b.path, b.err = goBuild(dir, pkg) })
	if b.err != nil {
		t.Fatalf("testenv: %v", b.err)
	}
	return b.path
}

// buildFor returns pkg's entry in the cache and the cache's directory, which
// it makes on first use.
func buildFor(pkg string) (*build, string, error) {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "parley-test-bin-")
		if err != nil {
			return nil, "", err
		}
		builds.dir, builds.pkgs = dir, make(map[string]*build)
	}
	b := builds.pkgs[pkg]
	if b == nil {
		b = &build{}
		builds.pkgs[pkg] = b
	}
	return b, builds.dir, nil
}

// goBuild runs go build for pkg into a directory of its own under parent,
// as two packages may end in the same name.
func goBuild(parent, pkg string) (string, error) {
	dir, err := os.MkdirTemp(parent, "build-")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	if msg, err := exec.Command("go", append(args, pkg)...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, msg)
	}
	return out, nil
}

// RemoveBuilds deletes every binary GoBuild has built; a later GoBuild
// builds again.
func RemoveBuilds() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	builds.dir, builds.pkgs = "", nil
}
