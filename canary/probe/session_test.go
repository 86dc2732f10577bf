package probe

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley/loadtest/wire"
)

// fakeSigner is the sign-in part of the API: users with passwords, tokens
// that live ttl on the test's clock, and an outage switch.
type fakeSigner struct {
	now     func() time.Time
	ttl     time.Duration
	users   map[string]string
	down    bool
	logins  int
	signups int
}

func (f *fakeSigner) LogIn(_ context.Context, username, password string) (wire.Session, error) {
	f.logins++
	if f.down {
		return wire.Session{}, errors.New("connection refused")
	}
	if p, ok := f.users[username]; !ok || p != password {
		return wire.Session{}, &wire.APIError{Status: http.StatusUnauthorized, Code: "unauthorized"}
	}
	return wire.Session{Token: "token-" + f.now().Format(time.RFC3339Nano), ExpiresAt: f.now().Add(f.ttl)}, nil
}

func (f *fakeSigner) SignUp(_ context.Context, username, password string) (wire.Session, error) {
	f.signups++
	if _, ok := f.users[username]; ok {
		return wire.Session{}, &wire.APIError{Status: http.StatusConflict, Code: "conflict"}
	}
	f.users[username] = password
	return wire.Session{Token: "token-new", ExpiresAt: f.now().Add(f.ttl)}, nil
}

// clock is a test's clock, moved by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// loginCounts reads parley_canary_logins_total by result.
type loginCounts struct {
	t   *testing.T
	reg *prometheus.Registry
}

func (l loginCounts) get(result string) float64 {
	l.t.Helper()
	samples, _ := exposition(l.t, l.reg)
	return samples[`parley_canary_logins_total{result="`+result+`"}`]
}

func newTestSession(t *testing.T, users map[string]string) (*session, *fakeSigner, *clock, loginCounts) {
	c := &clock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	f := &fakeSigner{now: c.now, ttl: time.Hour, users: users}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, 0)
	return &session{api: f, username: "parley-canary", password: "canary-password", now: c.now, metrics: m}, f, c, loginCounts{t, reg}
}

func TestSessionSignsInOnceAndAgainOnlyNearExpiry(t *testing.T) {
	s, f, c, m := newTestSession(t, map[string]string{"parley-canary": "canary-password"})
	first, err := s.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// A probe every 5 s for three quarters of the token's life.
	for range 539 {
		c.advance(5 * time.Second)
		if tok, err := s.Token(t.Context()); err != nil || tok != first {
			t.Fatalf("at %v: got %q, %v; want the first token again", c.t, tok, err)
		}
	}
	if f.logins != 1 {
		t.Fatalf("got %d logins in 45 minutes of probes, want 1", f.logins)
	}
	c.advance(5 * time.Second) // 45 min: a quarter of its life left
	renewed, err := s.Token(t.Context())
	if err != nil || renewed == first {
		t.Fatalf("near expiry: got %q, %v; want a new token", renewed, err)
	}
	if f.logins != 2 || m.get("ok") != 2 {
		t.Fatalf("got %d logins (%v counted ok), want 2", f.logins, m.get("ok"))
	}
}

func TestSessionSignsUpAMissingUserAndRefusesATakenName(t *testing.T) {
	s, f, _, _ := newTestSession(t, map[string]string{})
	if tok, err := s.Token(t.Context()); err != nil || tok != "token-new" {
		t.Fatalf("got %q, %v; want the sign-up's token", tok, err)
	}
	if f.signups != 1 {
		t.Fatalf("got %d sign-ups, want 1", f.signups)
	}

	s, _, _, m := newTestSession(t, map[string]string{"parley-canary": "someone-else's"})
	_, err := s.Token(t.Context())
	if err == nil || !strings.Contains(err.Error(), "parley-canary exists") {
		t.Fatalf("got %v, want an error saying the user exists with another password", err)
	}
	if m.get("failed") != 1 {
		t.Fatalf("got %v failed logins counted, want 1", m.get("failed"))
	}
}

// While the server is away, sign-ins are tried at growing intervals, not
// on every probe; each probe meanwhile fails at once.
func TestSessionBacksOffWhileSignInsFail(t *testing.T) {
	s, f, c, m := newTestSession(t, map[string]string{"parley-canary": "canary-password"})
	f.down = true
	tries := 0
	for range 120 { // ten minutes of probes every 5 s
		if _, err := s.Token(t.Context()); err == nil {
			t.Fatal("got a token from a server that is down")
		}
		c.advance(5 * time.Second)
		tries = f.logins
	}
	// 5 s, 10, 20, 40, 80, 160, then every 300 s: 8 tries in 600 s.
	if tries < 6 || tries > 9 {
		t.Fatalf("got %d sign-in attempts in ten minutes, want about 8 (backing off to 5 minutes)", tries)
	}
	if got := m.get("failed"); got != float64(tries) {
		t.Fatalf("counted %v failed logins, want %d", got, tries)
	}
	f.down = false
	c.advance(maxLoginBackoff)
	if _, err := s.Token(t.Context()); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
	if s.backoff != 0 {
		t.Fatalf("backoff %v after a success, want it reset", s.backoff)
	}
}

// A renewal that fails leaves the token in use until it expires.
func TestSessionKeepsAValidTokenWhileRenewalFails(t *testing.T) {
	s, f, c, _ := newTestSession(t, map[string]string{"parley-canary": "canary-password"})
	first, _ := s.Token(t.Context())
	c.advance(50 * time.Minute)
	f.down = true
	if tok, err := s.Token(t.Context()); err != nil || tok != first {
		t.Fatalf("renewal failing, token valid: got %q, %v; want the old token", tok, err)
	}
	c.advance(11 * time.Minute)
	if _, err := s.Token(t.Context()); err == nil {
		t.Fatal("got a token after the old one expired and sign-in kept failing")
	}
}

// A refused token is replaced at once; but when the server refuses every
// fresh token (a signing secret mismatched during a rotation), the
// canary does not sign in on every probe: forced sign-ins back off as
// failed ones do, and a token refused long after its sign-in is replaced
// at once again.
func TestSessionBacksOffWhenFreshTokensAreRefusedToo(t *testing.T) {
	s, f, c, m := newTestSession(t, map[string]string{"parley-canary": "canary-password"})
	if _, err := s.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.advance(5 * time.Second)
	s.Forget()
	if _, err := s.Token(t.Context()); err != nil || f.logins != 2 {
		t.Fatalf("after the first refusal: %d sign-ins, err %v; want a second sign-in at once", f.logins, err)
	}

	// From here the server refuses every token the probe it was signed in
	// for uses: an hour of probes every 5 s.
	before := f.logins
	refusals := 0
	for range 720 {
		c.advance(5 * time.Second)
		if _, err := s.Token(t.Context()); err == nil {
			s.Forget()
			refusals++
		} else if !errors.Is(err, errRefusedAgain) {
			t.Fatalf("probe without a token: %v, want it to say the server refused a fresh token", err)
		}
	}
	// 5 s, 10, 20, 40, 80, 160, then every 300 s: about 16 in an hour.
	signIns := f.logins - before
	if signIns < 12 || signIns > 20 {
		t.Fatalf("%d sign-ins in an hour of refused tokens, want about 16 (backing off to %v)", signIns, maxLoginBackoff)
	}
	if refusals != signIns+1 { // and the token held when the hour began
		t.Errorf("%d refusals, %d sign-ins: want each fresh token used once", refusals, signIns)
	}
	if got := m.get("ok"); got != float64(f.logins) {
		t.Errorf("counted %v successful logins, want %d", got, f.logins)
	}

	// The rotation ends: the next fresh token is kept, the backoff
	// forgotten once a token outlives its forced sign-in...
	c.advance(maxLoginBackoff)
	good, err := s.Token(t.Context())
	if err != nil {
		t.Fatalf("after the rotation: %v", err)
	}
	c.advance(maxLoginBackoff)
	if tok, err := s.Token(t.Context()); err != nil || tok != good {
		t.Fatalf("got %q, %v; want the token in use", tok, err)
	}
	// ...so that a token refused later is replaced at once.
	s.Forget()
	before = f.logins
	if _, err := s.Token(t.Context()); err != nil || f.logins != before+1 {
		t.Fatalf("a token refused %v after its sign-in: %d new sign-ins, err %v; want one at once", maxLoginBackoff, f.logins-before, err)
	}
	if s.backoff != 0 {
		t.Errorf("backoff %v after a refusal long after the last, want none", s.backoff)
	}
}
