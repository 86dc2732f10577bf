package postgres

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley/server/internal/chat"
)

// CreateUser stores a new user. A username taken in any letter case is
// chat.ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u chat.User, passwordHash string) error {
	_, err := s.pool.Exec(ctx,
		`INSERT INTO users (id, username, password_hash) VALUES ($1, $2, $3)`,
		u.ID, u.Username, passwordHash)
	switch {
	case isUniqueViolation(err, "users_username_key"):
		return chat.Errorf(chat.ErrConflict, "username taken")
	case isUniqueViolation(err, "users_pkey"):
		return chat.Errorf(chat.ErrConflict, "user already exists")
	case err != nil:
		return s.fail("create user", err)
	}
	return nil
}

// Credentials returns the user with the username, matched in any letter
// case, and their password hash. A deleted user is not found.
func (s *Store) Credentials(ctx context.Context, username string) (chat.User, string, error) {
	var u chat.User
	var hash string
	err := s.pool.QueryRow(ctx,
		`SELECT id, username, password_hash FROM users WHERE lower(username) = lower($1) AND deleted_at IS NULL`,
		username).Scan(&u.ID, &u.Username, &hash)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return chat.User{}, "", chat.Errorf(chat.ErrNotFound, "user not found")
	case err != nil:
		return chat.User{}, "", s.fail("credentials", err)
	}
	return u, hash, nil
}

// CreateRoom stores a new room. A name taken in any letter case is
// chat.ErrConflict.
func (s *Store) CreateRoom(ctx context.Context, r chat.Room) (chat.Room, error) {
	row := s.pool.QueryRow(ctx,
		`INSERT INTO rooms (id, name, created_at) VALUES ($1, $2, $3)
		 RETURNING id, name, created_at, last_seq`,
		r.ID, r.Name, r.CreatedAt)
	room, err := scanRoom(row)
	switch {
	case isUniqueViolation(err, "rooms_name_key"):
		return chat.Room{}, chat.Errorf(chat.ErrConflict, "room name taken")
	case isUniqueViolation(err, "rooms_pkey"):
		return chat.Room{}, chat.Errorf(chat.ErrConflict, "room already exists")
	case err != nil:
		return chat.Room{}, s.fail("create room", err)
	}
	return room, nil
}

// Room returns the room with the id.
func (s *Store) Room(ctx context.Context, id string) (chat.Room, error) {
	room, err := scanRoom(s.pool.QueryRow(ctx,
		`SELECT id, name, created_at, last_seq FROM rooms WHERE id = $1`, id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return chat.Room{}, chat.Errorf(chat.ErrNotFound, "room not found")
	case err != nil:
		return chat.Room{}, s.fail("room", err)
	}
	return room, nil
}

// Rooms returns every room, oldest first.
func (s *Store) Rooms(ctx context.Context) ([]chat.Room, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, name, created_at, last_seq FROM rooms ORDER BY created_at, id`)
	rooms, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (chat.Room, error) { return scanRoom(row) })
	if err != nil {
		return nil, s.fail("rooms", err)
	}
	return rooms, nil
}

const roomsAfterQuery = `SELECT id, name, created_at, last_seq FROM rooms WHERE id > $1 ORDER BY id LIMIT $2`

// RoomsAfter returns up to limit rooms whose ids sort after after, in id
// order: a keyset page read from the primary key's index, so a page costs
// the same at the end of 50,000 rooms as at the start. The index orders by
// the database's collation, not bytes; ids are lower-case base32 of one
// length, which every collation orders as bytes, and the service accepts
// no other cursor.
func (s *Store) RoomsAfter(ctx context.Context, after string, limit int) ([]chat.Room, error) {
	rows, _ := s.pool.Query(ctx, roomsAfterQuery, after, max(limit, 0))
	rooms, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (chat.Room, error) { return scanRoom(row) })
	if err != nil {
		return nil, s.fail("rooms after", err)
	}
	return rooms, nil
}

// LastSeqs returns the last seq of each listed room that exists, in one
// query and in a map that is never nil. An empty list is answered without
// asking the database, so it gives an empty map even when the database is
// unreachable.
func (s *Store) LastSeqs(ctx context.Context, ids []string) (map[string]int64, error) {
	seqs := make(map[string]int64, len(ids))
	if len(ids) == 0 {
		return seqs, nil
	}
	rows, _ := s.pool.Query(ctx, `SELECT id, last_seq FROM rooms WHERE id = ANY($1)`, ids)
	var id string
	var seq int64
	_, err := pgx.ForEachRow(rows, []any{&id, &seq}, func() error {
		seqs[id] = seq
		return nil
	})
	if err != nil {
		return nil, s.fail("last seqs", err)
	}
	return seqs, nil
}

func scanRoom(row pgx.Row) (chat.Room, error) {
	var r chat.Room
	err := row.Scan(&r.ID, &r.Name, &r.CreatedAt, &r.LastSeq)
	r.CreatedAt = r.CreatedAt.UTC()
	return r, err
}

// History returns a page of a room's messages in ascending seq order, each
// author marked Deleted if their account has been deleted since. The join
// looks each author up by primary key, once per row of the page.
func (s *Store) History(ctx context.Context, room string, p chat.Page) ([]chat.Message, bool, error) {
	limit := max(p.Limit, 0)
	query := `SELECT ` + historyColumns + ` FROM messages m LEFT JOIN users u ON u.id = m.user_id
		WHERE m.room_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3`
	if p.Backward {
		query = `SELECT ` + historyColumns + ` FROM messages m LEFT JOIN users u ON u.id = m.user_id
		WHERE m.room_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3`
	}
	// One row past the page tells whether there is more.
	rows, _ := s.pool.Query(ctx, query, room, p.Cursor, limit+1)
	msgs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (chat.Message, error) { return scanHistory(row) })
	if err != nil {
		return nil, false, s.fail("history", err)
	}
	if len(msgs) == 0 {
		// Only now is it worth asking whether the room exists: a message
		// found proves it does.
		if err := s.checkRoomExists(ctx, room); err != nil {
			return nil, false, err
		}
	}
	hasMore := len(msgs) > limit
	msgs = msgs[:min(len(msgs), limit)]
	if p.Backward {
		slices.Reverse(msgs)
	}
	return msgs, hasMore, nil
}

func (s *Store) checkRoomExists(ctx context.Context, room string) error {
	var exists bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM rooms WHERE id = $1)`, room).Scan(&exists)
	switch {
	case err != nil:
		return s.fail("history", err)
	case !exists:
		return chat.Errorf(chat.ErrNotFound, "room not found")
	}
	return nil
}

// messageColumns are the columns scanMessage reads, in its order.
const messageColumns = `room_id, seq, id, user_id, username, client_id, body, created_at`

func scanMessage(row pgx.Row) (chat.Message, error) {
	var m chat.Message
	err := row.Scan(&m.Room, &m.Seq, &m.ID, &m.User.ID, &m.User.Username, &m.ClientID, &m.Body, &m.TS)
	m.TS = m.TS.UTC()
	return m, err
}

// historyColumns are messageColumns of messages m, and whether the author's
// account (users u, left joined: user_id has no foreign key) is deleted.
const historyColumns = `m.room_id, m.seq, m.id, m.user_id, m.username, m.client_id, m.body, m.created_at, u.deleted_at IS NOT NULL`

func scanHistory(row pgx.Row) (chat.Message, error) {
	var m chat.Message
	err := row.Scan(&m.Room, &m.Seq, &m.ID, &m.User.ID, &m.User.Username, &m.ClientID, &m.Body, &m.TS, &m.User.Deleted)
	m.TS = m.TS.UTC()
	return m, err
}

// ticketSweepEvery is how often SaveTicket deletes the expired tickets that
// were never redeemed, which nothing else would remove.
const ticketSweepEvery = time.Minute

// SaveTicket stores a WebSocket ticket.
func (s *Store) SaveTicket(ctx context.Context, t chat.Ticket) error {
	_, err := s.pool.Exec(ctx,
		`INSERT INTO ws_tickets (hash, user_id, username, session_id, session_expires, expires) VALUES ($1, $2, $3, $4, $5, $6)`,
		t.Hash, t.User.ID, t.User.Username, t.Session, t.SessionExpires, t.Expires)
	if isUniqueViolation(err, "ws_tickets_pkey") {
		return chat.Errorf(chat.ErrConflict, "ticket already exists")
	}
	if err != nil {
		return s.fail("save ticket", err)
	}
	s.sweepTickets(ctx)
	return nil
}

// sweepTickets deletes expired tickets if no sweep ran in the last
// ticketSweepEvery, on this store; other replicas sweep on their own.
func (s *Store) sweepTickets(ctx context.Context) {
	now := time.Now().UnixNano()
	next := s.nextSweep.Load()
	if now < next || !s.nextSweep.CompareAndSwap(next, now+int64(ticketSweepEvery)) {
		return
	}
	// The margin keeps a ticket that the database clock calls expired but a
	// replica whose clock lags does not.
	_, err := s.pool.Exec(ctx, `DELETE FROM ws_tickets WHERE expires < now() - interval '1 minute'`)
	if err != nil {
		s.log.WarnContext(ctx, "deleting expired websocket tickets", "err", err)
	}
}

// TakeTicket removes the ticket and returns it, or chat.ErrNotFound when it
// is missing or expired at now.
func (s *Store) TakeTicket(ctx context.Context, hash string, now time.Time) (chat.Ticket, error) {
	t := chat.Ticket{Hash: hash}
	err := s.pool.QueryRow(ctx,
		`DELETE FROM ws_tickets WHERE hash = $1 RETURNING user_id, username, session_id, session_expires, expires`,
		hash).Scan(&t.User.ID, &t.User.Username, &t.Session, &t.SessionExpires, &t.Expires)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return chat.Ticket{}, chat.Errorf(chat.ErrNotFound, "ticket not found")
	case err != nil:
		return chat.Ticket{}, s.fail("take ticket", err)
	case !now.Before(t.Expires):
		return chat.Ticket{}, chat.Errorf(chat.ErrNotFound, "ticket expired")
	}
	t.SessionExpires, t.Expires = t.SessionExpires.UTC(), t.Expires.UTC()
	return t, nil
}
