package httpapi

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// userLimits holds one token bucket per user, shared by all of the user's
// connections and REST calls on this server. Buckets idle long enough to
// have refilled carry no state worth keeping and are swept out.
type userLimits struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu        sync.Mutex
	buckets   map[string]*userBucket
	lastSweep time.Time
}

type userBucket struct {
	lim      *rate.Limiter
	lastUsed time.Time
}

// sweepEvery is how often, at most, idle buckets are dropped.
const sweepEvery = time.Minute

func newUserLimits(limit rate.Limit, burst int, now func() time.Time) *userLimits {
	// A rate under 0.5/s still allows one message at a time.
	return &userLimits{limit: limit, burst: max(burst, 1), now: now, buckets: make(map[string]*userBucket), lastSweep: now()}
}

// allow takes a token from the user's bucket.
func (u *userLimits) allow(userID string) bool {
	now := u.now()
	u.mu.Lock()
	defer u.mu.Unlock()
	if now.Sub(u.lastSweep) > sweepEvery {
		u.sweep(now)
	}
	b := u.buckets[userID]
	if b == nil {
		b = &userBucket{lim: rate.NewLimiter(u.limit, u.burst)}
		u.buckets[userID] = b
	}
	b.lastUsed = now
	return b.lim.AllowN(now, 1)
}

// sweep drops buckets that have been idle long enough to be full again.
func (u *userLimits) sweep(now time.Time) {
	refill := time.Duration(float64(u.burst) / float64(u.limit) * float64(time.Second))
	for id, b := range u.buckets {
		if now.Sub(b.lastUsed) > refill {
			delete(u.buckets, id)
		}
	}
	u.lastSweep = now
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
