package auth

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/parleychat/parley/server/internal/chat"
)

// DefaultSessionCacheTTL is how long a session lookup is believed when
// Config.SessionCacheTTL is not set: short enough that a revocation made on
// another replica is honoured here within a couple of seconds, long enough
// that a client's burst of requests costs one store round trip.
const DefaultSessionCacheTTL = time.Second

// ErrWrongPassword is the kind of a wrong current password given to change
// the password or delete the account. The bearer is signed in, so it is not
// ErrUnauthorized: transports answer it with 403.
var ErrWrongPassword = errors.New("wrong password")

var errWrongPassword = &chat.Error{Kind: ErrWrongPassword, Msg: "wrong password"}

// Logout ends the session the claims name. Its token stops working at once
// on this replica, and within Config.SessionCacheTTL on the others.
func (s *Service) Logout(ctx context.Context, c Claims) error {
	if err := s.store.RevokeSession(ctx, c.Session); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	s.sessions.drop(func(id string, _ chat.Session) bool { return id == c.Session })
	return nil
}

// ChangePassword replaces the password of the claims' user, given the
// current one, and ends every other session of the account. A new password
// that sign-up would refuse is chat.ErrInvalid; a wrong current password is
// ErrWrongPassword.
func (s *Service) ChangePassword(ctx context.Context, c Claims, current, next string) error {
	if err := validatePassword(next); err != nil {
		return err
	}
	if err := s.confirm(ctx, c, current); err != nil {
		return err
	}
	var hash []byte
	err := s.withHashSlot(ctx, func() (err error) {
		hash, err = bcrypt.GenerateFromPassword(prehash(next), s.cost)
		return err
	})
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	if err := s.store.SetPassword(ctx, c.User.ID, string(hash)); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	// The password changed before the sessions end: a failure here leaves
	// them live, and the client is told the change failed, which it did
	// only in part. A retry with the new password ends them.
	if err := s.store.RevokeSessions(ctx, c.User.ID, c.Session); err != nil {
		return fmt.Errorf("revoke other sessions: %w", err)
	}
	s.sessions.drop(func(id string, sess chat.Session) bool { return sess.User.ID == c.User.ID && id != c.Session })
	return nil
}

// DeleteAccount deletes the claims' user, given its password: every session
// of the account ends, its username stays taken, its messages stay. A wrong
// password is ErrWrongPassword.
func (s *Service) DeleteAccount(ctx context.Context, c Claims, password string) error {
	if err := s.confirm(ctx, c, password); err != nil {
		return err
	}
	if err := s.store.DeleteUser(ctx, c.User.ID); err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	s.sessions.drop(func(_ string, sess chat.Session) bool { return sess.User.ID == c.User.ID })
	return nil
}

// confirm checks that password is the current one of the claims' user.
func (s *Service) confirm(ctx context.Context, c Claims, password string) error {
	u, _, err := s.checkPassword(ctx, c.User.Username, password)
	switch {
	case errors.Is(err, ErrUnauthorized):
		return errWrongPassword
	case err != nil:
		return err
	case u.ID != c.User.ID:
		// The name belongs to another account: the claims' one is gone.
		return ErrSessionEnded
	}
	return nil
}

// SessionStatuses asks the store, bypassing the cache, which of the listed
// sessions are not live (a live one has no entry), for a replica that must
// close the sockets of ended sessions. The ended ones leave the cache too.
func (s *Service) SessionStatuses(ctx context.Context, ids []string) (map[string]chat.SessionStatus, error) {
	st, err := s.store.SessionStatuses(ctx, ids, s.now())
	if err != nil {
		return nil, fmt.Errorf("session statuses: %w", err)
	}
	s.sessions.drop(func(id string, _ chat.Session) bool {
		_, ended := st[id] // only sessions that are not live have an entry
		return ended
	})
	return st, nil
}

// sessionCache remembers store lookups of sessions for ttl, live ones and
// ended ones alike (an ended session never comes back). It is swept as it
// grows, so it holds about the sessions used in the last ttl.
type sessionCache struct {
	ttl time.Duration
	now func() time.Time

	mu        sync.Mutex
	entries   map[string]cachedSession
	nextSweep int
	// peak is the most entries the map has held: a Go map keeps the room
	// it grew to, so once it holds far fewer, drop moves them to a new one.
	peak int
	// drops counts the calls of drop, so that a lookup that raced with one
	// does not put back what it dropped.
	drops uint64
}

type cachedSession struct {
	sess  chat.Session
	err   error // chat.ErrNotFound for an ended session
	until time.Time
}

// minCacheSweep is the smallest cache that triggers a sweep of old entries.
const minCacheSweep = 1024

func newSessionCache(ttl time.Duration, now func() time.Time) *sessionCache {
	return &sessionCache{ttl: ttl, now: now, entries: make(map[string]cachedSession), nextSweep: minCacheSweep}
}

// get returns the session with the id while it is live, from the cache or
// the store. Failures of the store are not remembered.
func (c *sessionCache) get(ctx context.Context, store Store, id string) (chat.Session, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[id]
	drops := c.drops
	c.mu.Unlock()
	if ok && now.Before(e.until) && (e.err != nil || now.Before(e.sess.Expires)) {
		return e.sess, e.err
	}
	sess, err := store.Session(ctx, id, now)
	if err != nil && !errors.Is(err, chat.ErrNotFound) {
		return chat.Session{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.drops != drops {
		// A revocation may have run after the store answered.
		return sess, err
	}
	if len(c.entries) >= c.nextSweep {
		for id, e := range c.entries {
			if !now.Before(e.until) {
				delete(c.entries, id)
			}
		}
		c.nextSweep = max(2*len(c.entries), minCacheSweep)
	}
	c.entries[id] = cachedSession{sess: sess, err: err, until: now.Add(c.ttl)}
	c.peak = max(c.peak, len(c.entries))
	return sess, err
}

// drop forgets the entries for which match is true; ended entries are
// forgotten too, which costs only a store lookup if they are asked again.
//
// Entries past their ttl go too: drop runs every few seconds (each session
// check calls it), which keeps the cache to about the sessions used in the
// last ttl, rather than to what the last sweep left (a thousand or more).
func (c *sessionCache) drop(match func(id string, sess chat.Session) bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drops++
	for id, e := range c.entries {
		if e.err != nil || !now.Before(e.until) || match(id, e.sess) {
			delete(c.entries, id)
		}
	}
	if len(c.entries) < c.peak/4 {
		c.entries = maps.Clone(c.entries)
		c.peak = len(c.entries)
	}
}
