package httpapi

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/parleychat/parley/server/internal/auth"
)

// Limits are the rate limits on the REST calls that cost the most or are
// abused first: sign-up and login (a password hash each), room creation
// (rooms are kept for good, and every client lists them) and history
// reads (the heaviest query). Each is per replica: a client spread over N
// replicas by the load balancer gets up to N times as much. Zero values
// take DefaultLimits.
type Limits struct {
	SignupPerAddr      Rate
	LoginPerAddr       Rate
	LoginBackoff       Backoff
	RoomsCreatePerUser Rate
	RoomsCreatePerAddr Rate
	HistoryPerUser     Rate
	HistoryPerAddr     Rate
}

// Rate is a token bucket: N requests per Per on average, in bursts of up
// to Burst. The zero Rate takes the default; Off switches the limit off.
type Rate struct {
	N     float64
	Per   time.Duration
	Burst int
	Off   bool
}

func (r Rate) perSecond() float64 {
	if r.Off || r.Per <= 0 {
		return 0
	}
	return r.N / r.Per.Seconds()
}

// Backoff slows password guessing against one account: after Free failed
// logins in a row, each further failure makes the next attempt wait, one
// second at first and twice as long each time, up to Max. The zero
// Backoff takes the default; Off switches it off.
type Backoff struct {
	Free int
	Max  time.Duration
	Off  bool
}

// DefaultLimits are generous to people and to the load generator's shipped
// scenarios (up to 1,000 users signed up from one address at once, and one user
// creating 300 rooms, within the bursts) and still cut each abuse found by
// orders of magnitude. docs/operations.md explains each and gives the
// settings for a bigger load test.
func DefaultLimits() Limits {
	return Limits{
		SignupPerAddr:      Rate{N: 10, Per: time.Second, Burst: 1000},
		LoginPerAddr:       Rate{N: 60, Per: time.Minute, Burst: 500},
		LoginBackoff:       Backoff{Free: 5, Max: time.Minute},
		RoomsCreatePerUser: Rate{N: 60, Per: time.Hour, Burst: 300},
		RoomsCreatePerAddr: Rate{N: 120, Per: time.Hour, Burst: 600},
		HistoryPerUser:     Rate{N: 5, Per: time.Second, Burst: 50},
		HistoryPerAddr:     Rate{N: 20, Per: time.Second, Burst: 200},
	}
}

func (l *Limits) setDefaults() {
	d := DefaultLimits()
	for _, r := range []struct{ got, def *Rate }{
		{&l.SignupPerAddr, &d.SignupPerAddr},
		{&l.LoginPerAddr, &d.LoginPerAddr},
		{&l.RoomsCreatePerUser, &d.RoomsCreatePerUser},
		{&l.RoomsCreatePerAddr, &d.RoomsCreatePerAddr},
		{&l.HistoryPerUser, &d.HistoryPerUser},
		{&l.HistoryPerAddr, &d.HistoryPerAddr},
	} {
		if *r.got == (Rate{}) {
			*r.got = *r.def
		}
	}
	if l.LoginBackoff == (Backoff{}) {
		l.LoginBackoff = d.LoginBackoff
	}
}

// restLimits are the limiters of Limits; a nil one is switched off.
type restLimits struct {
	signupPerAddr, loginPerAddr    *keyedLimiter
	roomsPerUser, roomsPerAddr     *keyedLimiter
	historyPerUser, historyPerAddr *keyedLimiter
	backoff                        *loginBackoff
}

func newRESTLimits(l Limits, now func() time.Time) *restLimits {
	l.setDefaults()
	bucket := func(r Rate) *keyedLimiter { return newKeyedLimiter(r.perSecond(), r.Burst, now) }
	return &restLimits{
		signupPerAddr:  bucket(l.SignupPerAddr),
		loginPerAddr:   bucket(l.LoginPerAddr),
		roomsPerUser:   bucket(l.RoomsCreatePerUser),
		roomsPerAddr:   bucket(l.RoomsCreatePerAddr),
		historyPerUser: bucket(l.HistoryPerUser),
		historyPerAddr: bucket(l.HistoryPerAddr),
		backoff:        newLoginBackoff(l.LoginBackoff, now),
	}
}

// limit is middleware that refuses a request over its route's limit per
// client address or, behind requireToken, per user. The address is tried
// first: a flood from someone else behind the same address then does not
// also spend the user's own bucket.
func (s *Server) limit(name string, perAddr, perUser *keyedLimiter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ok, wait := perAddr.allow(addrKey(s.clientAddr(r)).String()); !ok {
				s.writeError(w, r, s.refuse(name, wait, "too many requests from this address; retry later"))
				return
			}
			if ok, wait := perUser.allow(claimsFrom(r.Context()).User.ID); !ok {
				s.writeError(w, r, s.refuse(name, wait, "too many requests; retry later"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// loginWithBackoff is auth's Login behind the backoff of the account at
// the client's address.
func (s *Server) loginWithBackoff(r *http.Request, username, password string) (sess auth.Session, err error) {
	err = s.guardPassword(r, username, auth.ErrUnauthorized, func() error {
		sess, err = s.auth.Login(r.Context(), username, password)
		return err
	})
	return sess, err
}

// guardPassword runs check, which checks a password of username's account
// and fails with wrong when it is not the account's, behind that account's
// backoff at the client's address. Every endpoint that takes a password
// shares the backoff: a login, and a signed-in user's password change or
// account deletion, so that a stolen token cannot guess the account's
// password any faster than a login can.
func (s *Server) guardPassword(r *http.Request, username string, wrong error, check func() error) error {
	key := backoffKey(username, s.clientAddr(r))
	if wait, ok := s.limits.backoff.attempt(key); !ok {
		return s.refuse(limitLoginBackoff, wait, "too many wrong passwords; retry later")
	}
	err := check()
	s.limits.backoff.done(key, err == nil, errors.Is(err, wrong))
	return err
}

// backoffKey is the account a login tries, as the store matches it (in
// any letter case), and the address it comes from.
//
// The address is in the key so that an attacker cannot lock a victim out:
// failures from the attacker's address slow that address only, and the
// victim logs in from theirs as usual. An attacker with many addresses
// gets Free guesses at each, a few per address and account, and the
// per-address login limit bounds what each address tries over all
// accounts. A victim behind the attacker's own address (one NAT) waits
// Max at most.
func backoffKey(username string, a netip.Addr) string {
	// Only valid usernames (32 bytes at most) can succeed: a longer one
	// must not make a longer key.
	const keep = 64
	if len(username) > keep {
		username = username[:keep]
	}
	return strings.ToLower(username) + " " + addrKey(a).String()
}

// loginBackoff counts failed logins by backoffKey. Entries are forgotten
// after forgetAfter without a failure, or at once on a success; at most
// maxKeys are kept (past that a new key evicts an arbitrary one, as in
// keyedLimiter).
type loginBackoff struct {
	free    int
	max     time.Duration
	maxKeys int
	now     func() time.Time

	mu        sync.Mutex
	entries   map[string]failures
	lastSweep time.Time
}

type failures struct {
	n     int
	last  int64 // UnixNano of the last attempt counted
	until int64 // UnixNano before which attempts are refused
}

// firstBackoff is the wait after the first failure past the free ones.
const firstBackoff = time.Second

// forgetAfter is how long failures are remembered without another. A
// guesser who waits it out gets Free guesses per forgetAfter (5 in 15
// minutes by default), fewer than waiting out each Max gives (one a
// minute).
const forgetAfter = 15 * time.Minute

func newLoginBackoff(b Backoff, now func() time.Time) *loginBackoff {
	if b.Off {
		return nil
	}
	return &loginBackoff{free: b.Free, max: max(b.Max, firstBackoff), maxKeys: defaultMaxKeys, now: now,
		entries: make(map[string]failures), lastSweep: now()}
}

// attempt lets a login try its password, or says how long it must wait.
// It counts the attempt as a failure before the password is checked, so
// that a burst of concurrent guesses cannot all pass before the first
// fails; done takes it back on a success.
func (b *loginBackoff) attempt(key string) (wait time.Duration, ok bool) {
	if b == nil {
		return 0, true
	}
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Sub(b.lastSweep) > sweepEvery {
		b.sweep(now)
	}
	f, found := b.entries[key]
	if found && now.Sub(time.Unix(0, f.last)) > forgetAfter && now.UnixNano() >= f.until {
		f = failures{}
	}
	if !found && len(b.entries) >= b.maxKeys {
		for k := range b.entries {
			delete(b.entries, k)
			break
		}
	}
	if until := time.Unix(0, f.until); now.Before(until) {
		return until.Sub(now), false
	}
	f.n++
	f.last = now.UnixNano()
	if past := f.n - b.free; past > 0 {
		// Doubling from one second reaches any sensible Max within 30
		// steps; the shift must not overflow past that.
		d := b.max
		if past <= 30 {
			d = min(b.max, firstBackoff<<(past-1))
		}
		f.until = now.Add(d).UnixNano()
	}
	b.entries[key] = f
	return 0, true
}

// done records how the attempt went: a success forgets the failures, a
// wrong password keeps the one attempt counted, and anything else (the
// store down, say) was no guess and is taken back.
func (b *loginBackoff) done(key string, succeeded, wrong bool) {
	if b == nil || wrong {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.entries[key]
	switch {
	case !ok:
	case succeeded || f.n <= 1:
		delete(b.entries, key)
	default:
		f.n--
		b.entries[key] = f
	}
}

func (b *loginBackoff) sweep(now time.Time) {
	cutoff := now.Add(-forgetAfter).UnixNano()
	for k, f := range b.entries {
		if f.last < cutoff && f.until <= now.UnixNano() {
			delete(b.entries, k)
		}
	}
	b.lastSweep = now
}
