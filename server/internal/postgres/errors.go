package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/parleychat/parley/server/internal/chat"
)

// fail wraps err from op, marking it chat.ErrUnavailable when the database
// could not be reached or the store is closed (pgx reports a closed pool
// with an error of its pool library's own).
func (s *Store) fail(op string, err error) error {
	if s.isClosed() {
		return unavailable(op, err)
	}
	return classify(op, err)
}

// classify wraps err from op, marking it chat.ErrUnavailable when the
// database could not be reached.
func classify(op string, err error) error {
	if isUnavailable(err) {
		return unavailable(op, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// unavailable wraps cause so that errors.Is finds both chat.ErrUnavailable
// and cause, and errors.As finds a *chat.Error whose message is safe to show
// a client (the cause's may hold host names).
func unavailable(op string, cause error) error {
	return fmt.Errorf("postgres: %s: %w: %w", op, chat.Errorf(chat.ErrUnavailable, "database unavailable"), cause)
}

// isUnavailable reports whether err means the database could not be reached
// or did not answer in time, as opposed to a query it refused. A caller's
// cancellation is neither: the caller gave up, the database did not fail.
func isUnavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true // includes refused logins and "the database system is starting up"
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pgErr.Code {
		case "53300", // too_many_connections
			"57P01", // admin_shutdown: "terminating connection due to administrator command"
			"57P02", // crash_shutdown
			"57P03", // cannot_connect_now: "the database system is shutting down"
			"25006": // read_only_sql_transaction: we reached a standby, e.g. during a failover
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection_exception
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return true
	}
	if errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	// An error before anything reached the server comes from the
	// connection, not from the query.
	return pgconn.SafeToRetry(err)
}

// isUniqueViolation reports whether err is a unique violation of the named
// constraint or index.
func isUniqueViolation(err error, constraint string) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	return ok && pgErr.Code == "23505" && pgErr.ConstraintName == constraint
}
