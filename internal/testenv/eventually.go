package testenv

import (
	"testing"
	"time"
)

// WaitTimeout is how long Eventually waits: long enough for a loaded
// two-core machine running the race detector, short enough that a condition
// that never comes fails the test instead of its whole package.
const WaitTimeout = 10 * time.Second

// The first checks come soon, so a condition that holds at once costs a
// test little; later ones spread out, so a costly check (a /metrics scrape,
// a Prometheus query) does not take the machine from what it waits for.
const (
	firstPoll = 10 * time.Millisecond
	maxPoll   = 100 * time.Millisecond
)

// Eventually checks cond until it holds, and fails the test, naming what it
// waited for, if it has not within WaitTimeout.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, WaitTimeout, what, cond)
}

// EventuallyWithin is Eventually for a wait known to take longer, such as an
// alert travelling through Prometheus and Alertmanager.
func EventuallyWithin(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("gave up after %v waiting for %s", timeout, what)
	}
}

// Poll checks cond until it holds, true, or until timeout has passed, false,
// for a caller that says itself what went wrong (with what it saw) or that
// goes on either way.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for wait := firstPoll; ; wait = min(2*wait, maxPoll) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(wait)
	}
}
