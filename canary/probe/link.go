package probe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/canary/api"
)

// link is one of the canary's two connections. Like a user's, it stays
// open from probe to probe; it is dialled again when it drops, and also
// every redial period, so that over time the two connections land on the
// same replica and on different ones.
type link struct {
	name     string // sender or receiver, for logs
	conn     *api.Conn
	replica  string    // the replica serving conn, once joined
	redialAt time.Time // when conn is retired
}

// errDropped is a connection that ended while the canary held it.
var errDropped = errors.New("connection dropped")

// errNoRoom is a join refused because the room does not exist (a server
// whose store was reset): the room must be found or made again.
var errNoRoom = errors.New("no such room")

// dropped reports whether the connection ended under the canary since the
// last look, and forgets it if so.
func (l *link) dropped() error {
	if l.conn == nil {
		return nil
	}
	select {
	case <-l.conn.Done():
		err := fmt.Errorf("%s: %w: %w", l.name, errDropped, l.conn.Err())
		l.conn = nil
		return err
	default:
		return nil
	}
}

// retire closes the connection if its time is up.
func (l *link) retire(now time.Time) {
	if l.conn != nil && !now.Before(l.redialAt) {
		l.close()
	}
}

func (l *link) close() {
	if l.conn != nil {
		l.conn.Close()
		l.conn = nil
	}
}

// open dials and joins room, when the link has no connection. It returns
// the step that failed.
func (l *link) open(ctx context.Context, d *websocket.Dialer, url, token, room string, redialAt time.Time) (step string, err error) {
	if l.conn != nil {
		return "", nil
	}
	l.replica = ""
	conn, err := api.Dial(ctx, d, url, token)
	if err != nil {
		return StepConnect, fmt.Errorf("%s: %w", l.name, err)
	}
	if err := conn.Join(room); err != nil {
		conn.Close()
		return StepJoin, fmt.Errorf("%s: join: %w", l.name, err)
	}
	for {
		select {
		case f := <-conn.Frames():
			switch {
			case f.Type == "joined" && f.Room == room:
				l.conn, l.replica, l.redialAt = conn, f.Replica, redialAt
				if l.replica == "" {
					l.replica = conn.Replica
				}
				return "", nil
			case f.Type == "error" && f.Ref == "join":
				conn.Close()
				err := fmt.Errorf("%s: join refused: %s: %s", l.name, f.Code, f.Message)
				if f.Code == "not_found" {
					err = fmt.Errorf("%w: %w", errNoRoom, err)
				}
				return StepJoin, err
			}
		case <-conn.Done():
			return StepJoin, fmt.Errorf("%s: %w while joining: %w", l.name, errDropped, conn.Err())
		case <-ctx.Done():
			conn.Close()
			return StepJoin, fmt.Errorf("%s: no joined frame: %w", l.name, ctx.Err())
		}
	}
}

// drain discards frames left from earlier probes.
func (l *link) drain() {
	for {
		select {
		case <-l.conn.Frames():
		default:
			return
		}
	}
}
