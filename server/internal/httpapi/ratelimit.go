package httpapi

import (
	"math"
	"sync"
	"time"
)

// keyedLimiter is one token bucket per key (a user id, a client address),
// the one type behind every rate limit of the API. A key's bucket holds up
// to burst tokens and refills at perSecond; a request takes one.
//
// Its memory is bounded twice over. A bucket idle long enough to have
// refilled carries no state worth keeping, and the sweep drops it. And
// the map never holds more than maxKeys buckets: past that, a new key
// evicts an arbitrary one, whose owner gets a full bucket back. That makes
// an attacker who varies keys faster than the sweep runs (many addresses,
// many usernames) cost at most maxKeys buckets, at the price of being more
// lenient with the keys evicted, never stricter: a full map must not lock
// out everyone new.
//
// A nil *keyedLimiter is a limit switched off: it allows everything.
type keyedLimiter struct {
	rateSpec
	maxKeys int
	now     func() time.Time

	mu        sync.Mutex
	buckets   map[string]bucket
	lastSweep time.Time
}

// bucket is a key's tokens as they stood at a time: 16 bytes, so a full
// map of maxKeys is a few megabytes (see TestKeyedLimiterMemoryIsBounded).
type bucket struct {
	tokens float64
	at     int64 // UnixNano of the last take
}

// sweepEvery is how often, at most, idle buckets are dropped.
const sweepEvery = time.Minute

// defaultMaxKeys caps each limiter's buckets: far more users or addresses
// than one replica serves at once.
const defaultMaxKeys = 100_000

// newKeyedLimiter returns a limiter of perSecond with bursts of burst, or
// nil (no limit) when perSecond is not positive.
func newKeyedLimiter(perSecond float64, burst int, now func() time.Time) *keyedLimiter {
	if !(perSecond > 0) {
		return nil
	}
	// A burst under one would refuse everything.
	return &keyedLimiter{rateSpec: newRateSpec(perSecond, burst), maxKeys: defaultMaxKeys, now: now,
		buckets: make(map[string]bucket), lastSweep: now()}
}

// allow takes a token from key's bucket. When there is none it takes
// nothing and returns how long until there is one: the wait a refusal
// tells the client.
func (k *keyedLimiter) allow(key string) (ok bool, wait time.Duration) {
	if k == nil {
		return true, 0
	}
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.Sub(k.lastSweep) > sweepEvery {
		k.sweep(now)
	}
	b, found := k.buckets[key]
	if !found {
		if len(k.buckets) >= k.maxKeys {
			k.evictOne()
		}
		b = k.full()
	}
	ok, wait = k.take(&b, now)
	k.buckets[key] = b
	return ok, wait
}

// rateSpec is a token bucket's refill rate and size: the one rule of
// every limit, keyed (keyedLimiter) or a connection's own.
type rateSpec struct {
	perSecond float64
	burst     float64
}

// newRateSpec returns perSecond with bursts of burst, at least one: a
// burst under one would refuse everything.
func newRateSpec(perSecond float64, burst int) rateSpec {
	return rateSpec{perSecond: perSecond, burst: float64(max(burst, 1))}
}

// full is a bucket that has not been used yet.
func (r rateSpec) full() bucket { return bucket{tokens: r.burst} }

// take takes a token from b at now. When there is none it takes nothing
// and returns how long until there is one: the wait a refusal tells the
// client, rounded up so that a client that waits it is let through.
func (r rateSpec) take(b *bucket, now time.Time) (ok bool, wait time.Duration) {
	b.tokens = r.refilled(*b, now)
	b.at = now.UnixNano()
	if b.tokens < 1 {
		return false, time.Duration(math.Ceil((1 - b.tokens) / r.perSecond * float64(time.Second)))
	}
	b.tokens--
	return true, 0
}

// refilled is b's tokens at now. A clock that steps back refills nothing,
// and neither does a bucket that was never used (at is zero: it is full).
func (r rateSpec) refilled(b bucket, now time.Time) float64 {
	if b.at == 0 {
		return b.tokens
	}
	elapsed := max(0, float64(now.UnixNano()-b.at)/float64(time.Second))
	return min(r.burst, b.tokens+elapsed*r.perSecond)
}

// sweep drops the buckets that have refilled: forgetting them changes
// nothing.
func (k *keyedLimiter) sweep(now time.Time) {
	for key, b := range k.buckets {
		if k.refilled(b, now) >= k.burst {
			delete(k.buckets, key)
		}
	}
	k.lastSweep = now
}

// evictOne drops one bucket, whichever the map's randomised iteration
// offers first: O(1), where finding the least recently used would be a
// scan per request exactly when an attacker floods.
func (k *keyedLimiter) evictOne() {
	for key := range k.buckets {
		delete(k.buckets, key)
		return
	}
}

// floodGuard decides when a connection has been over its limit for too
// long. A streak of refusals with no pause of a second between them counts
// as one flood; a client that backs off when told ends its streak.
type floodGuard struct {
	window      time.Duration
	streakStart time.Time
	lastRefusal time.Time
}

// refused records a refused frame and reports whether the flood has lasted
// longer than the window.
func (g *floodGuard) refused(now time.Time) bool {
	if now.Sub(g.lastRefusal) > time.Second {
		g.streakStart = now
	}
	g.lastRefusal = now
	return now.Sub(g.streakStart) > g.window
}
