package memstore

import (
	"context"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

// CreateSession stores a live session.
func (s *Store) CreateSession(_ context.Context, sess chat.Session) error {
	s.sessionsMu.Lock()
	defer s.sessionsMu.Unlock()
	if _, taken := s.sessions[sess.ID]; taken {
		return chat.Errorf(chat.ErrConflict, "session already exists")
	}
	if len(s.sessions) >= s.nextSessionSweep {
		s.dropExpiredSessions()
	}
	s.sessions[sess.ID] = sess
	return nil
}

// dropExpiredSessions runs once the number of held sessions has doubled
// since the last sweep, as dropExpiredTickets does. s.sessionsMu is held.
func (s *Store) dropExpiredSessions() {
	now := s.now()
	for id, sess := range s.sessions {
		if !now.Before(sess.Expires) {
			delete(s.sessions, id)
		}
	}
	s.nextSessionSweep = max(2*len(s.sessions), minTicketSweep)
}

// Session returns the session while it is live at now, and chat.ErrNotFound
// once it is not.
func (s *Store) Session(_ context.Context, id string, now time.Time) (chat.Session, error) {
	s.sessionsMu.Lock()
	sess, ok := s.sessions[id]
	s.sessionsMu.Unlock()
	if !ok || s.status(sess, now) != chat.SessionLive {
		return chat.Session{}, chat.Errorf(chat.ErrNotFound, "session not found or ended")
	}
	return sess, nil
}

// SessionStatuses tells which of the listed sessions are not live at now.
func (s *Store) SessionStatuses(_ context.Context, ids []string, now time.Time) (map[string]chat.SessionStatus, error) {
	out := make(map[string]chat.SessionStatus)
	s.sessionsMu.Lock()
	defer s.sessionsMu.Unlock()
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

// status is the status of a held session at now. It takes usersMu while
// the caller may hold sessionsMu: the locks are taken in that order only.
func (s *Store) status(sess chat.Session, now time.Time) chat.SessionStatus {
	s.usersMu.RLock()
	deleted := s.deleted[sess.User.ID]
	s.usersMu.RUnlock()
	switch {
	case deleted:
		return chat.SessionUserDeleted
	case !now.Before(sess.Expires):
		return chat.SessionEnded
	}
	return chat.SessionLive
}

// RevokeSession ends the session; an unknown one is already ended.
func (s *Store) RevokeSession(_ context.Context, id string) error {
	s.sessionsMu.Lock()
	delete(s.sessions, id)
	s.sessionsMu.Unlock()
	return nil
}

// RevokeSessions ends every session of the user but except. It walks every
// session: revoking is rare, and an index by user would cost every sign-in.
func (s *Store) RevokeSessions(_ context.Context, userID, except string) error {
	s.sessionsMu.Lock()
	defer s.sessionsMu.Unlock()
	for id, sess := range s.sessions {
		if sess.User.ID == userID && id != except {
			delete(s.sessions, id)
		}
	}
	return nil
}

// SetPassword replaces the password hash of a live account.
func (s *Store) SetPassword(_ context.Context, userID, passwordHash string) error {
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	key, ok := s.userKeys[userID]
	if !ok || s.users[key].deleted {
		return chat.Errorf(chat.ErrNotFound, "user not found")
	}
	a := s.users[key]
	a.passwordHash = passwordHash
	s.users[key] = a
	return nil
}

// DeleteUser deletes a live account. Its entry stays, without its password
// hash, so that its username stays taken and its messages can be marked.
// Its sessions stay until they expire, dead, so that SessionStatuses can
// tell why they ended.
func (s *Store) DeleteUser(_ context.Context, userID string) error {
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	key, ok := s.userKeys[userID]
	if !ok || s.users[key].deleted {
		return chat.Errorf(chat.ErrNotFound, "user not found")
	}
	s.users[key] = account{user: s.users[key].user, deleted: true}
	s.deleted[userID] = true
	return nil
}

// markDeleted sets User.Deleted on the messages of deleted accounts.
func (s *Store) markDeleted(msgs []chat.Message) {
	s.usersMu.RLock()
	defer s.usersMu.RUnlock()
	if len(s.deleted) == 0 {
		return
	}
	for i := range msgs {
		if s.deleted[msgs[i].User.ID] {
			msgs[i].User.Deleted = true
		}
	}
}
