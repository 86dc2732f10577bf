package testenv

import (
	"debug/buildinfo"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// One test, not several in parallel: RemoveBuilds empties the cache that
// any other GoBuild in this package would share.
func TestGoBuildBuildsEachPackageOnceUntilRemoved(t *testing.T) {
	const hello = "./testdata/hello"
	first := GoBuild(t, hello)
	if again := GoBuild(t, hello); again != first {
		t.Errorf("second build: got %s, want the first one's %s", again, first)
	}
	out, err := exec.Command(first).Output()
	if err != nil || strings.TrimSpace(string(out)) != "hello" {
		t.Errorf("running the binary: got %q, %v, want hello", out, err)
	}
	info, err := buildinfo.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	race := false
	for _, s := range info.Settings {
		if s.Key == "-race" {
			race, _ = strconv.ParseBool(s.Value)
		}
	}
	if race != raceEnabled {
		t.Errorf("binary built with race=%v, want %v as the tests have", race, raceEnabled)
	}

	RemoveBuilds()

	if _, err := os.Stat(first); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after RemoveBuilds: stat %s: got %v, want it gone", first, err)
	}
	rebuilt := GoBuild(t, hello)
	t.Cleanup(RemoveBuilds)
	if _, err := os.Stat(rebuilt); err != nil {
		t.Errorf("a build after RemoveBuilds: %v", err)
	}
}
