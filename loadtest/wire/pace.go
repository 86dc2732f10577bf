package wire

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Pacer spaces the attempts of one kind (a REST endpoint, or one
// connection's resent frames) after the server refused one and said how
// long to wait. Waiting out each refusal alone is not enough: when many
// callers are refused at once they are told the same wait, retry at the
// same instant, and all but one are refused again, round after round. The
// pacer gives each a slot of its own instead, spaced by the server's wait
// (the time its limit takes to allow one more), so that after a burst of
// refusals the attempts go out at the rate the server accepts. While no
// slot is taken attempts are not held at all. The zero Pacer is ready.
type Pacer struct {
	mu   sync.Mutex
	next time.Time     // the next free slot; in the past when not pacing
	step time.Duration // the spacing of slots: the last wait the server asked for
}

// Hold takes a slot for an attempt about to be made at now, and returns
// how long to wait before making it: zero unless refusals are being
// paced.
func (p *Pacer) Hold(now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !now.Before(p.next) {
		return 0
	}
	slot := p.next
	p.next = slot.Add(p.step)
	return slot.Sub(now) + jitter(p.step)
}

// Refused records that an attempt made before now was refused with wait,
// and returns how long to wait before making it again: at least wait, and
// after the slots already taken.
func (p *Pacer) Refused(now time.Time, wait time.Duration) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.step = wait
	slot := now.Add(wait)
	if slot.Before(p.next) {
		slot = p.next
	}
	p.next = slot.Add(wait)
	return slot.Sub(now) + jitter(wait)
}

// jitter is a small random delay, a tenth of step at most, so that callers
// given neighbouring slots (or other clients told the same wait) do not
// hit the server at the very same instant.
func jitter(step time.Duration) time.Duration {
	if step < 10 {
		return 0
	}
	return rand.N(step / 10)
}

// Paced is how much the server held a client back: the refusals it
// answered with a wait (429 over REST, rate_limited over WebSocket) and
// the time attempts spent waiting, for their own refusal or for a slot
// behind others', summed over attempts that waited at the same time.
type Paced struct {
	Refusals int64
	Waits    int64
	Waited   time.Duration
}

// PaceCounter counts a client's pacing; it is safe for concurrent use.
type PaceCounter struct {
	refusals, waits, waited atomic.Int64
}

// Refused counts a refusal that is waited out.
func (c *PaceCounter) Refused() { c.refusals.Add(1) }

// Waited counts a wait of d.
func (c *PaceCounter) Waited(d time.Duration) {
	if d > 0 {
		c.waits.Add(1)
		c.waited.Add(int64(d))
	}
}

// Load returns the counts so far.
func (c *PaceCounter) Load() Paced {
	return Paced{Refusals: c.refusals.Load(), Waits: c.waits.Load(), Waited: time.Duration(c.waited.Load())}
}
