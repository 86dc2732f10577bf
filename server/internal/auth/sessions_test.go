package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parleychat/parley/server/internal/auth"
	"github.com/parleychat/parley/server/internal/chat"
)

// A token outlived its store: after a restart of the in-memory store with
// the same secret, the old token was accepted, and a new sign-up under the
// same name was spoken for by it.
func TestATokenDoesNotOutliveItsStore(t *testing.T) {
	t.Parallel()
	before, _, _ := newService(t)
	old := mustRegister(t, before, "alice", "correct horse")

	after, _, _ := newService(t) // same secret, fresh store
	if _, err := after.Verify(t.Context(), old.Token); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("Verify(token of the old store): got %v, want ErrUnauthorized", err)
	}
	mustRegister(t, after, "alice", "another password")
	if _, err := after.Verify(t.Context(), old.Token); !errors.Is(err, auth.ErrUnauthorized) {
		t.Errorf("Verify(old token) once the name is someone else's: got %v, want ErrUnauthorized", err)
	}
}

func TestLogoutEndsOnlyItsSession(t *testing.T) {
	t.Parallel()
	svc, _, _ := newService(t)
	first := mustRegister(t, svc, "alice", "correct horse")
	second := mustSignIn(t, svc, "alice", "correct horse")
	claims := mustVerify(t, svc, first.Token)
	mustVerify(t, svc, second.Token) // cached now, which the logout must see past

	if err := svc.Logout(t.Context(), claims); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if _, err := svc.Verify(t.Context(), first.Token); !errors.Is(err, auth.ErrUnauthorized) {
		t.Errorf("Verify(logged out token): got %v, want ErrUnauthorized", err)
	}
	mustVerify(t, svc, second.Token)
}

// A login whose password check passed just before a password change, and
// whose session was made just after the change had ended the others, kept
// a session on the old password.
func TestALoginRacingAPasswordChangeGetsNoSession(t *testing.T) {
	t.Parallel()
	svc, store, _ := newService(t)
	owner := mustVerify(t, svc, mustRegister(t, svc, "alice", "correct horse").Token)
	store.beforeCreateSession(func() {
		if err := svc.ChangePassword(t.Context(), owner, "correct horse", "battery staple"); err != nil {
			t.Errorf("ChangePassword: %v", err)
		}
	})
	if s, err := svc.Login(t.Context(), "alice", "correct horse"); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("Login with the password being changed: got %+v, %v; want ErrUnauthorized", s, err)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	for id, sess := range store.sessions {
		if id != owner.Session {
			t.Errorf("session %s of %s outlived the password change", id, sess.User.Username)
		}
	}
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name             string
		current, next    string
		want             error // nil for a change that succeeds
		otherSessionLive bool
	}{
		{"a change ends the other sessions", "correct horse", "battery staple", nil, false},
		{"a wrong current password is refused", "wrong horse", "battery staple", auth.ErrWrongPassword, true},
		{"a new password sign-up would refuse is invalid", "correct horse", "short", chat.ErrInvalid, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			svc, _, _ := newService(t)
			reg := mustRegister(t, svc, "alice", "correct horse")
			current := mustVerify(t, svc, reg.Token)
			other := mustSignIn(t, svc, "alice", "correct horse")
			mustVerify(t, svc, other.Token)

			err := svc.ChangePassword(t.Context(), current, tt.current, tt.next)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("ChangePassword: got %v, want %v", err, tt.want)
			}
			if _, err := svc.Verify(t.Context(), other.Token); (err == nil) != tt.otherSessionLive {
				t.Errorf("Verify(other session): got %v, want live=%v", err, tt.otherSessionLive)
			}
			mustVerify(t, svc, reg.Token)
			wantPassword := tt.next
			if tt.want != nil {
				wantPassword = "correct horse"
			}
			mustSignIn(t, svc, "alice", wantPassword)
		})
	}
}

func TestDeleteAccount(t *testing.T) {
	t.Parallel()
	svc, _, _ := newService(t)
	reg := mustRegister(t, svc, "alice", "correct horse")
	claims := mustVerify(t, svc, reg.Token)
	other := mustSignIn(t, svc, "alice", "correct horse")

	if err := svc.DeleteAccount(t.Context(), claims, "wrong horse"); !errors.Is(err, auth.ErrWrongPassword) {
		t.Fatalf("DeleteAccount(wrong password): got %v, want ErrWrongPassword", err)
	}
	mustVerify(t, svc, reg.Token)
	if err := svc.DeleteAccount(t.Context(), claims, "correct horse"); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	for _, token := range []string{reg.Token, other.Token} {
		if _, err := svc.Verify(t.Context(), token); !errors.Is(err, auth.ErrUnauthorized) {
			t.Errorf("Verify(token of a deleted account): got %v, want ErrUnauthorized", err)
		}
	}
	if _, err := svc.Login(t.Context(), "alice", "correct horse"); !errors.Is(err, auth.ErrUnauthorized) {
		t.Errorf("Login of a deleted account: got %v, want ErrUnauthorized", err)
	}
	if _, err := svc.Register(t.Context(), "ALICE", "correct horse"); !errors.Is(err, chat.ErrConflict) {
		t.Errorf("Register of a deleted account's name: got %v, want ErrConflict", err)
	}
}

func TestATicketOfAnEndedSessionIsRefused(t *testing.T) {
	t.Parallel()
	svc, _, _ := newService(t)
	claims := mustLogin(t, svc)
	ticket, _, err := svc.IssueTicket(t.Context(), claims)
	if err != nil {
		t.Fatalf("IssueTicket: %v", err)
	}
	if err := svc.Logout(t.Context(), claims); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if _, err := svc.RedeemTicket(t.Context(), ticket); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("RedeemTicket after logout: got %v, want ErrUnauthorized", err)
	}
}

// A revocation made elsewhere (another replica, straight in the store) is
// seen once the cached lookup is SessionCacheTTL old, and not asked of the
// store again before.
func TestTheSessionCacheIsStaleForAtMostItsTTL(t *testing.T) {
	t.Parallel()
	svc, store, clock := newService(t)
	s := mustRegister(t, svc, "alice", "correct horse")
	claims := mustVerify(t, svc, s.Token)
	lookups := store.sessionLookups()

	if err := store.RevokeSession(t.Context(), claims.Session); err != nil {
		t.Fatal(err)
	}
	clock.Advance(auth.DefaultSessionCacheTTL - time.Millisecond)
	mustVerify(t, svc, s.Token)
	if got := store.sessionLookups(); got != lookups {
		t.Errorf("store lookups within the TTL: got %d, want %d", got, lookups)
	}
	clock.Advance(time.Millisecond)
	if _, err := svc.Verify(t.Context(), s.Token); !errors.Is(err, auth.ErrUnauthorized) {
		t.Errorf("Verify once the cache entry is %v old: got %v, want ErrUnauthorized", auth.DefaultSessionCacheTTL, err)
	}
}

func TestSessionStatusesBypassTheCache(t *testing.T) {
	t.Parallel()
	svc, store, _ := newService(t)
	claims := mustLogin(t, svc)
	if err := store.RevokeSession(t.Context(), claims.Session); err != nil {
		t.Fatal(err)
	}
	st, err := svc.SessionStatuses(t.Context(), []string{claims.Session})
	if err != nil {
		t.Fatalf("SessionStatuses: %v", err)
	}
	if got := st[claims.Session]; got != chat.SessionEnded {
		t.Errorf("status of a session revoked in the store: got %v, want SessionEnded", got)
	}
}

func mustVerify(t *testing.T, svc *auth.Service, token string) auth.Claims {
	t.Helper()
	c, err := svc.Verify(t.Context(), token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return c
}

func mustSignIn(t *testing.T, svc *auth.Service, username, password string) auth.Session {
	t.Helper()
	s, err := svc.Login(t.Context(), username, password)
	if err != nil {
		t.Fatalf("Login(%q): %v", username, err)
	}
	return s
}

func (s *fakeStore) sessionLookups() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookups
}

func (s *fakeStore) userByID(id string) (string, fakeUser, bool) {
	for key, u := range s.users {
		if u.user.ID == id {
			return key, u, true
		}
	}
	return "", fakeUser{}, false
}

func (s *fakeStore) status(sess chat.Session, now time.Time) chat.SessionStatus {
	_, u, _ := s.userByID(sess.User.ID)
	switch {
	case u.deleted:
		return chat.SessionUserDeleted
	case !now.Before(sess.Expires):
		return chat.SessionEnded
	}
	return chat.SessionLive
}

func (s *fakeStore) CreateSession(_ context.Context, sess chat.Session) error {
	if hook := s.takeHook(); hook != nil {
		hook()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.sessions[sess.ID] = sess
	return nil
}

func (s *fakeStore) Session(_ context.Context, id string, now time.Time) (chat.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookups++
	if s.fail != nil {
		return chat.Session{}, s.fail
	}
	sess, ok := s.sessions[id]
	if !ok || s.status(sess, now) != chat.SessionLive {
		return chat.Session{}, chat.Errorf(chat.ErrNotFound, "no such session")
	}
	return sess, nil
}

func (s *fakeStore) SessionStatuses(_ context.Context, ids []string, now time.Time) (map[string]chat.SessionStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	// As the contract says, only the sessions that are not live.
	out := make(map[string]chat.SessionStatus)
	for _, id := range ids {
		status := chat.SessionEnded
		if sess, ok := s.sessions[id]; ok {
			status = s.status(sess, now)
		}
		if status != chat.SessionLive {
			out[id] = status
		}
	}
	return out, nil
}

func (s *fakeStore) RevokeSession(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	delete(s.sessions, id)
	return nil
}

func (s *fakeStore) RevokeSessions(_ context.Context, userID, except string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	for id, sess := range s.sessions {
		if sess.User.ID == userID && id != except {
			delete(s.sessions, id)
		}
	}
	return nil
}

func (s *fakeStore) SetPassword(_ context.Context, userID, hash string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	key, u, ok := s.userByID(userID)
	if !ok || u.deleted {
		return chat.Errorf(chat.ErrNotFound, "no such user")
	}
	u.hash = hash
	s.users[key] = u
	return nil
}

func (s *fakeStore) DeleteUser(_ context.Context, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	key, u, ok := s.userByID(userID)
	if !ok || u.deleted {
		return chat.Errorf(chat.ErrNotFound, "no such user")
	}
	s.users[key] = fakeUser{user: u.user, deleted: true}
	return nil
}

var _ auth.Store = (*fakeStore)(nil)

// beforeCreateSession makes the next CreateSession call hook first.
func (s *fakeStore) beforeCreateSession(hook func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = hook
}

func (s *fakeStore) takeHook() func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	hook := s.hook
	s.hook = nil
	return hook
}
