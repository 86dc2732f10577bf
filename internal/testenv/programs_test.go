package testenv

import (
	"strings"
	"testing"
)

func TestFindFindsACommandOnThePath(t *testing.T) {
	t.Parallel()
	if got := Find(t, "go", "golang"); got == "" {
		t.Fatal("got no path for go, which runs this test")
	}
}

// A missing program skips the test, naming how to install it, and fails
// it under CI=true, where .ci/run must have installed it.
func TestAMissingProgramSkipsOrFailsUnderCI(t *testing.T) {
	t.Parallel()
	const missing = "parley-no-such-program"
	for _, tc := range []struct {
		ci       string
		wantSkip bool
		how      string // how to install it, as Find and FindGo say it
		install  string
	}{
		{"false", true, fromDebian("some-package"), "Debian's some-package package"},
		{"true", false, fromDebian("some-package"), "Debian's some-package package"},
		{"false", true, goInstall("example.com/tool@v1.2.3"), "go install example.com/tool@v1.2.3"},
		{"true", false, goInstall("example.com/tool@v1.2.3"), "go install example.com/tool@v1.2.3"},
	} {
		r := run(func(tb testing.TB) string { return find(tb, env("CI", tc.ci), missing, tc.how) })
		if r.skipped != tc.wantSkip || r.failed == tc.wantSkip || !strings.Contains(r.msg, missing) || !strings.Contains(r.msg, tc.install) {
			t.Errorf("CI=%s: got skipped=%v failed=%v %q, want skipped=%v naming %s and %q", tc.ci, r.skipped, r.failed, r.msg, tc.wantSkip, missing, tc.install)
		}
	}
}
