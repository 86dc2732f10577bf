package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley/server/internal/chat"
)

// sessionSweepEvery is how often CreateSession deletes expired sessions,
// which nothing else would remove.
const sessionSweepEvery = time.Minute

// CreateSession stores a live session.
func (s *Store) CreateSession(ctx context.Context, sess chat.Session) error {
	_, err := s.pool.Exec(ctx,
		`INSERT INTO sessions (id, user_id, expires) VALUES ($1, $2, $3)`,
		sess.ID, sess.User.ID, sess.Expires)
	switch {
	case isUniqueViolation(err, "sessions_pkey"):
		return chat.Errorf(chat.ErrConflict, "session already exists")
	case err != nil:
		return s.fail("create session", err)
	}
	s.sweepSessions(ctx)
	return nil
}

// sweepSessions deletes expired sessions if no sweep ran in the last
// sessionSweepEvery, on this store; other replicas sweep on their own.
func (s *Store) sweepSessions(ctx context.Context) {
	now := time.Now().UnixNano()
	next := s.nextSessionSweep.Load()
	if now < next || !s.nextSessionSweep.CompareAndSwap(next, now+int64(sessionSweepEvery)) {
		return
	}
	// The margin is the tickets' (see sweepTickets): a replica whose clock
	// lags must not find a session gone that it still calls live.
	_, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE expires < now() - interval '1 minute'`)
	if err != nil {
		s.log.WarnContext(ctx, "deleting expired sessions", "err", err)
	}
}

// Session returns the session while it is live at now.
func (s *Store) Session(ctx context.Context, id string, now time.Time) (chat.Session, error) {
	sess := chat.Session{ID: id}
	err := s.pool.QueryRow(ctx,
		`SELECT s.user_id, u.username, s.expires FROM sessions s JOIN users u ON u.id = s.user_id
		 WHERE s.id = $1 AND s.expires > $2 AND u.deleted_at IS NULL`,
		id, now).Scan(&sess.User.ID, &sess.User.Username, &sess.Expires)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return chat.Session{}, chat.Errorf(chat.ErrNotFound, "session not found or ended")
	case err != nil:
		return chat.Session{}, s.fail("session", err)
	}
	sess.Expires = sess.Expires.UTC()
	return sess, nil
}

// SessionStatuses tells which of the listed sessions are not live at now,
// in one round trip: only those rows come back.
func (s *Store) SessionStatuses(ctx context.Context, ids []string, now time.Time) (map[string]chat.SessionStatus, error) {
	out := make(map[string]chat.SessionStatus)
	if len(ids) == 0 {
		return out, nil
	}
	rows, _ := s.pool.Query(ctx,
		`SELECT q.id, u.deleted_at IS NOT NULL
		 FROM unnest($1::text[]) AS q(id)
		 LEFT JOIN sessions s ON s.id = q.id
		 LEFT JOIN users u ON u.id = s.user_id
		 WHERE s.id IS NULL OR s.expires <= $2 OR u.deleted_at IS NOT NULL`,
		ids, now)
	var id string
	var deleted bool
	_, err := pgx.ForEachRow(rows, []any{&id, &deleted}, func() error {
		out[id] = chat.SessionEnded
		if deleted {
			out[id] = chat.SessionUserDeleted
		}
		return nil
	})
	if err != nil {
		return nil, s.fail("session statuses", err)
	}
	return out, nil
}

// RevokeSession ends the session by deleting it.
func (s *Store) RevokeSession(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id = $1`, id); err != nil {
		return s.fail("revoke session", err)
	}
	return nil
}

// RevokeSessions ends every session of the user but except.
func (s *Store) RevokeSessions(ctx context.Context, userID, except string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1 AND id <> $2`, userID, except); err != nil {
		return s.fail("revoke sessions", err)
	}
	return nil
}

// SetPassword replaces the password hash of a live account.
func (s *Store) SetPassword(ctx context.Context, userID, passwordHash string) error {
	tag, err := s.pool.Exec(ctx,
		`UPDATE users SET password_hash = $2 WHERE id = $1 AND deleted_at IS NULL`, userID, passwordHash)
	switch {
	case err != nil:
		return s.fail("set password", err)
	case tag.RowsAffected() == 0:
		return chat.Errorf(chat.ErrNotFound, "user not found")
	}
	return nil
}

// DeleteUser marks a live account deleted and forgets its password hash.
// The row stays: it keeps the username taken and marks the account's
// messages, and its sessions die by the join on it.
func (s *Store) DeleteUser(ctx context.Context, userID string) error {
	tag, err := s.pool.Exec(ctx,
		`UPDATE users SET deleted_at = now(), password_hash = '' WHERE id = $1 AND deleted_at IS NULL`, userID)
	switch {
	case err != nil:
		return s.fail("delete user", err)
	case tag.RowsAffected() == 0:
		return chat.Errorf(chat.ErrNotFound, "user not found")
	}
	return nil
}
