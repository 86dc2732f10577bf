package testenv

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// In a synctest bubble the clock moves only when every goroutine waits, so
// these tests see exactly when Poll looks and gives up, at no cost in time.

func TestPollReturnsSoonAfterTheConditionHolds(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		holdsAt := start.Add(3 * time.Second)
		if !Poll(time.Minute, func() bool { return !time.Now().Before(holdsAt) }) {
			t.Fatal("got false, want true: the condition held after 3s of a minute")
		}
		if late := time.Since(holdsAt); late > maxPoll {
			t.Errorf("returned %v after the condition held, want at most %v", late, maxPoll)
		}
	})
}

func TestPollGivesUpAtTheTimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		checks := 0
		if Poll(5*time.Second, func() bool { checks++; return false }) {
			t.Fatal("got true for a condition that never holds")
		}
		if took := time.Since(start); took < 5*time.Second || took > 5*time.Second+maxPoll {
			t.Errorf("gave up after %v, want 5s (plus at most %v)", took, maxPoll)
		}
		// Spread out: every 100 ms after the first few, not every 10 ms.
		if checks > 60 {
			t.Errorf("checked %d times in 5s, want the checks spread out", checks)
		}
	})
}

func TestPollChecksOnceAtLeast(t *testing.T) {
	t.Parallel()
	checks := 0
	if !Poll(0, func() bool { checks++; return true }) || checks != 1 {
		t.Errorf("got %d checks, want one that holds", checks)
	}
}

func TestEventuallyFailsNamingWhatItWaitedFor(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		r := run(func(tb testing.TB) string {
			Eventually(tb, "the kettle to boil", func() bool { return false })
			return ""
		})
		if !r.failed || !strings.Contains(r.msg, "the kettle to boil") || !strings.Contains(r.msg, WaitTimeout.String()) {
			t.Errorf("got failed=%v %q, want a failure naming the kettle and %v", r.failed, r.msg, WaitTimeout)
		}
	})
}

func TestEventuallyPassesOnceTheConditionHolds(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		checks := 0
		r := run(func(tb testing.TB) string {
			EventuallyWithin(tb, time.Second, "the third look", func() bool { checks++; return checks == 3 })
			return ""
		})
		if r.failed || checks != 3 {
			t.Errorf("got failed=%v %q after %d checks, want a pass on the third", r.failed, r.msg, checks)
		}
	})
}
