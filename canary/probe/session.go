package probe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/parleychat/parley/loadtest/wire"
)

// signer is the part of the API a session needs.
type signer interface {
	LogIn(ctx context.Context, username, password string) (wire.Session, error)
	SignUp(ctx context.Context, username, password string) (wire.Session, error)
}

// Backoff of failed sign-ins: a canary that cannot sign in tries again at
// these growing intervals, not on every probe, so that it never trips the
// server's limits on logins (each probe in between fails at login).
const (
	minLoginBackoff = 5 * time.Second
	maxLoginBackoff = 5 * time.Minute
)

// session holds the canary user's token. It signs in once, and again only
// when the token has run three quarters of its life, so a canary signs in
// a few times a day however often it probes.
type session struct {
	api                signer
	username, password string
	now                func() time.Time
	metrics            *Metrics

	token     string
	expiresAt time.Time
	renewAt   time.Time

	retryAt time.Time     // no sign-in before this, after a failure
	backoff time.Duration // the wait after the last failure
	lastErr error

	// A refused token is replaced at once, but a server that refuses
	// fresh tokens too (a signing secret mismatched during a rotation)
	// would then see a sign-in every probe: a token refused within
	// maxLoginBackoff of the sign-in that replaced a refused one counts
	// as a failed sign-in, and backs off alike.
	forcing  bool      // the next sign-in replaces a refused token
	forcedAt time.Time // the last sign-in that did
}

// errRefusedAgain is why no sign-in follows a refused token: the token
// from the previous forced sign-in was refused too.
var errRefusedAgain = errors.New("the server refused a fresh token too")

// Token returns a token that is valid now, signing in first when there is
// none or the one held nears its expiry. While sign-ins fail, a token that
// has not expired yet is still used.
func (s *session) Token(ctx context.Context) (string, error) {
	now := s.now()
	if s.token != "" && now.Before(s.renewAt) {
		return s.token, nil
	}
	valid := s.token != "" && now.Before(s.expiresAt)
	if now.Before(s.retryAt) {
		if valid {
			return s.token, nil
		}
		return "", fmt.Errorf("no token: next sign-in in %v: %w", s.retryAt.Sub(now).Round(time.Second), s.lastErr)
	}
	sess, err := s.signIn(ctx)
	s.metrics.login(err == nil)
	if err != nil {
		s.backoff = min(max(2*s.backoff, minLoginBackoff), maxLoginBackoff)
		s.retryAt, s.lastErr = now.Add(s.backoff), err
		if valid {
			return s.token, nil
		}
		return "", err
	}
	if s.forcing {
		// The backoff stays until a token outlives its forced sign-in
		// (Forget), so that refusals in a row keep growing it.
		s.forcing, s.forcedAt = false, now
	} else {
		s.backoff = 0
	}
	s.retryAt, s.lastErr = time.Time{}, nil
	s.token, s.expiresAt = sess.Token, sess.ExpiresAt
	s.renewAt = now.Add(sess.ExpiresAt.Sub(now) * 3 / 4)
	return s.token, nil
}

// Forget drops the token: the server refused it (a new signing secret,
// say), so the next Token signs in again, at once the first time. When the
// token came from such a forced sign-in not long ago, the server refuses
// fresh tokens: the next sign-in waits the backoff of a failed one.
func (s *session) Forget() {
	if s.token == "" {
		return // refused already (both connections at once, say)
	}
	s.token = ""
	s.forcing = true
	now := s.now()
	if s.forcedAt.IsZero() || now.Sub(s.forcedAt) >= maxLoginBackoff {
		// The first refusal, or one long after the last: the token
		// was good for a while, so this is news, not a loop.
		s.backoff, s.forcedAt = 0, time.Time{}
		return
	}
	s.backoff = min(max(2*s.backoff, minLoginBackoff), maxLoginBackoff)
	s.retryAt, s.lastErr = now.Add(s.backoff), errRefusedAgain
}

// signIn logs in, and signs up first if the user does not exist yet: the
// server cannot tell a missing user from a wrong password (401 both), and
// sign-up then says which (409 for a taken name).
func (s *session) signIn(ctx context.Context) (wire.Session, error) {
	sess, err := s.api.LogIn(ctx, s.username, s.password)
	if err == nil || !wire.HasStatus(err, http.StatusUnauthorized) {
		return sess, err
	}
	sess, err = s.api.SignUp(ctx, s.username, s.password)
	if wire.HasStatus(err, http.StatusConflict) {
		return sess, fmt.Errorf("user %s exists and refuses the canary's password: %w", s.username, err)
	}
	return sess, err
}
