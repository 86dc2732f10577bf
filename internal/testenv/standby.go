package testenv

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// StartStandby streams WAL from the PostgreSQL of dsn as a physical standby
// does: START_REPLICATION on a replication connection, and a status update
// every second saying how far it has written, flushed and replayed. The
// primary then shows it in pg_stat_replication, streaming, with a replay
// position. Where it differs from a real standby: it keeps nothing, and
// reports as replayed all it has received. The test server's pg_hba.conf
// need not admit physical replication connections: it connects with
// replication=database, which pg_hba takes as a connection to the
// database, and which streams physical WAL as well. It returns the
// application_name the standby shows under in pg_stat_replication.
func StartStandby(t testing.TB, dsn string) (applicationName string) {
	t.Helper()
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["replication"] = "database"
	applicationName = "parley-test-standby-" + randomHex(4)
	cfg.RuntimeParams["application_name"] = applicationName
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("standby: connect: %v", err)
	}
	results, err := conn.Exec(ctx, "IDENTIFY_SYSTEM").ReadAll()
	if err != nil || len(results) != 1 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) < 3 {
		conn.Close(ctx)
		t.Fatalf("standby: IDENTIFY_SYSTEM: %v %v", err, results)
	}
	start := string(results[0].Rows[0][2])
	pos, err := parseLSN(start)
	if err != nil {
		conn.Close(ctx)
		t.Fatalf("standby: IDENTIFY_SYSTEM's xlogpos: %v", err)
	}
	// The connection is idle, so nothing is left in pgconn's buffers: the
	// standby speaks the protocol on the socket from here.
	hc, err := conn.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	s := &standby{conn: hc.Conn, fe: pgproto3.NewFrontend(hc.Conn, hc.Conn), received: pos}
	s.fe.Send(&pgproto3.Query{String: "START_REPLICATION PHYSICAL " + start})
	if err := s.fe.Flush(); err != nil {
		hc.Conn.Close()
		t.Fatalf("standby: START_REPLICATION: %v", err)
	}
	if err := hc.Conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		hc.Conn.Close()
		t.Fatal(err)
	}
	msg, err := s.fe.Receive()
	if _, ok := msg.(*pgproto3.CopyBothResponse); !ok {
		hc.Conn.Close()
		t.Fatalf("standby: START_REPLICATION answered %#v, %v; want CopyBothResponse", msg, err)
	}

	stop, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- s.stream(stop) }()
	t.Cleanup(func() {
		close(stop)
		hc.Conn.Close()
		if err := <-done; err != nil {
			t.Errorf("standby: %v", err)
		}
	})
	return applicationName
}

// standby is the streaming side of StartStandby; one goroutine owns it.
type standby struct {
	conn     net.Conn
	fe       *pgproto3.Frontend
	received uint64 // the end of the WAL received so far
}

// statusInterval is how often the standby reports its position, as
// wal_receiver_status_interval does (10 s by default) but sooner, so that
// replay_lsn is set soon after the start.
const statusInterval = time.Second

// stream reads WAL and keepalives until stop is closed, reporting its
// position every statusInterval and whenever the primary asks.
func (s *standby) stream(stop <-chan struct{}) error {
	if err := s.report(); err != nil {
		return err
	}
	next := time.Now().Add(statusInterval)
	for {
		if err := s.conn.SetReadDeadline(next); err != nil {
			return err
		}
		msg, err := s.fe.Receive()
		select {
		case <-stop:
			return nil
		default:
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if err := s.report(); err != nil {
				return err
			}
			next = time.Now().Add(statusInterval)
			continue
		}
		if err != nil {
			return err
		}
		data, ok := msg.(*pgproto3.CopyData)
		if !ok {
			return fmt.Errorf("got %T while streaming", msg)
		}
		switch {
		case len(data.Data) >= 25 && data.Data[0] == 'w': // XLogData: start, end, time, then the WAL
			s.received = max(s.received, binary.BigEndian.Uint64(data.Data[1:])+uint64(len(data.Data)-25))
		case len(data.Data) >= 18 && data.Data[0] == 'k' && data.Data[17] == 1: // a keepalive that asks for a reply
			if err := s.report(); err != nil {
				return err
			}
		}
	}
}

// report sends a standby status update: written, flushed and replayed up to
// what was received.
func (s *standby) report() error {
	msg := make([]byte, 34)
	msg[0] = 'r'
	for i := range 3 {
		binary.BigEndian.PutUint64(msg[1+8*i:], s.received)
	}
	// Microseconds since 2000-01-01, PostgreSQL's epoch.
	binary.BigEndian.PutUint64(msg[25:], uint64(time.Since(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).Microseconds()))
	s.fe.Send(&pgproto3.CopyData{Data: msg})
	return s.fe.Flush()
}

// parseLSN reads a WAL position written as PostgreSQL does, X/Y in hex.
func parseLSN(s string) (uint64, error) {
	hiText, loText, ok := strings.Cut(s, "/")
	hi, hiErr := strconv.ParseUint(hiText, 16, 32)
	lo, loErr := strconv.ParseUint(loText, 16, 32)
	if !ok || hiErr != nil || loErr != nil {
		return 0, fmt.Errorf("LSN %q is not X/Y in hexadecimal", s)
	}
	return hi<<32 | lo, nil
}
