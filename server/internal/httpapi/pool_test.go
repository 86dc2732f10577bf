package httpapi

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// After a burst, a trickle of jobs keeps one goroutine busy and lets the
// rest of the burst's end; a quiet pool has none; stop waits for them.
func TestAPoolShrinksToWhatATrickleNeeds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var ran sync.WaitGroup
		p := newPool(func(block bool) {
			if block {
				<-release
			}
			ran.Done()
		})
		idle := func() int {
			synctest.Wait()
			p.mu.Lock()
			defer p.mu.Unlock()
			return len(p.idle)
		}
		const burst = 20
		ran.Add(burst)
		for range burst {
			p.submit(true)
		}
		close(release)
		ran.Wait()
		if got := idle(); got != burst {
			t.Fatalf("after the burst: %d goroutines waiting, want %d", got, burst)
		}
		// One job every 50 ms for 5 s: far more often than a goroutine
		// ends (a second or two without a job), but one at a time.
		for range 100 {
			ran.Add(1)
			p.submit(false)
			ran.Wait()
			time.Sleep(50 * time.Millisecond)
		}
		if got := idle(); got > 1 {
			t.Errorf("after a trickle: %d goroutines waiting, want 1", got)
		}
		time.Sleep(3 * poolIdle)
		if got := idle(); got != 0 {
			t.Errorf("after quiet: %d goroutines waiting, want none", got)
		}
		ran.Add(1)
		p.submit(false)
		ran.Wait()
		p.stop()
	})
}
