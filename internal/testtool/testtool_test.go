package testtool

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

func TestFindFindsACommandOnThePath(t *testing.T) {
	if got := Find(t, "go", "golang"); got == "" {
		t.Fatal("got no path for go, which runs this test")
	}
}

// recorder stands in for the test's testing.TB: it keeps what Fatalf or
// Skipf said and ends the goroutine as they do.
type recorder struct {
	testing.TB
	verdict, message string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.verdict, r.message = "fail", fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Skipf(format string, args ...any) {
	r.verdict, r.message = "skip", fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// A missing program skips the test, naming how to install it, and fails
// it under CI=true, where .ci/run must have installed it.
func TestAMissingProgramSkipsOrFailsUnderCI(t *testing.T) {
	const missing = "parley-no-such-program"
	for _, tc := range []struct {
		ci, want string
		find     func(testing.TB) string
		install  string
	}{
		{"false", "skip", func(tb testing.TB) string { return Find(tb, missing, "some-package") }, "Debian's some-package package"},
		{"true", "fail", func(tb testing.TB) string { return Find(tb, missing, "some-package") }, "Debian's some-package package"},
		{"false", "skip", func(tb testing.TB) string { return FindGo(tb, missing, "example.com/tool@v1.2.3") }, "go install example.com/tool@v1.2.3"},
		{"true", "fail", func(tb testing.TB) string { return FindGo(tb, missing, "example.com/tool@v1.2.3") }, "go install example.com/tool@v1.2.3"},
	} {
		t.Setenv("CI", tc.ci)
		r := &recorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			tc.find(r)
		}()
		<-done
		if r.verdict != tc.want || !strings.Contains(r.message, missing) || !strings.Contains(r.message, tc.install) {
			t.Errorf("CI=%s: got %s %q, want %s naming %s and %q", tc.ci, r.verdict, r.message, tc.want, missing, tc.install)
		}
	}
}
