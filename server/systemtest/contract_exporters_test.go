package systemtest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/parleychat/parley/internal/testenv"
)

// The exporter versions whose series names are the contract
// (dashboards/README.md): Debian's packages, and the images that compose
// and Kubernetes pin.
var exporterVersions = map[string]*regexp.Regexp{
	"prometheus-postgres-exporter": regexp.MustCompile(`version 0\.11\.1\b`),
	"prometheus-redis-exporter":    regexp.MustCompile(`Exporter 1\.45\.0\b`),
}

// exporterNames returns every series name that Debian's postgres_exporter
// and redis_exporter expose against the test PostgreSQL and Redis, with a
// standby streaming from that PostgreSQL so that the replication series
// exist too. TestMetricContract adds them to the replicas' names: every
// exporter series a panel or rule names must be among them.
func exporterNames(t *testing.T) map[string]bool {
	t.Helper()
	ex := startExporters(t)
	names := map[string]bool{}
	for _, addr := range []string{ex.postgres, ex.redis} {
		for name := range exposedNames(t, "http://"+addr+"/metrics") {
			names[name] = true
		}
	}
	return names
}

// exporters are the /metrics addresses (host:port) of running exporters.
type exporters struct{ postgres, redis string }

// startExporters runs Debian's exporters, as the compose stack runs the
// images of the same versions (defaults but for the addresses), against a
// fresh database on the test PostgreSQL and against the test Redis, with a
// standby streaming from that PostgreSQL. It returns once both answer and
// the replication series are on the PostgreSQL exporter's page; the test's
// end stops all three.
func startExporters(t *testing.T) exporters {
	t.Helper()
	pgBin := testenv.Find(t, "prometheus-postgres-exporter", "prometheus-postgres-exporter")
	redisBin := testenv.Find(t, "prometheus-redis-exporter", "prometheus-redis-exporter")
	for bin, want := range map[string]*regexp.Regexp{pgBin: exporterVersions["prometheus-postgres-exporter"], redisBin: exporterVersions["prometheus-redis-exporter"]} {
		out, _ := exec.Command(bin, "--version").CombinedOutput()
		if !want.Match(out) {
			t.Fatalf("%s --version says %q, want %s: the pinned images and dashboards/README.md name the contract's version", bin, out, want)
		}
	}
	dsn := testenv.PostgresURL(t)
	startStandby(t, dsn)

	var ex exporters
	pg := exec.Command(pgBin, "--web.listen-address=127.0.0.1:0")
	pg.Env = []string{"DATA_SOURCE_NAME=" + dsn}
	ex.postgres = startDaemon(t, "postgres_exporter", pg, promListening)

	// redis_exporter logs the address it was given, not the one it got, so
	// it gets a port that was free a moment ago.
	ex.redis = startDaemon(t, "redis_exporter", exec.Command(redisBin,
		"-redis.addr", testenv.RedisURL(t), "-web.listen-address", freeAddr(t)), redisExporterListening)

	testenv.Eventually(t, "the exporters answer, the standby in pg_stat_replication", func() bool {
		resp, err := http.Get("http://" + ex.redis + "/metrics")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK &&
			exposedNames(t, "http://"+ex.postgres+"/metrics")["pg_stat_replication_pg_wal_lsn_diff"]
	})
	return ex
}

var redisExporterListening = regexp.MustCompile(`msg="Providing metrics at ([^/]+)/metrics"`)

// freeAddr returns a loopback address whose port was free when asked.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// scrapeExporters starts the exporters and has the Prometheus whose file_sd
// directory is targets scrape them as jobs postgres and redis, as
// alerts/prometheus.yml expects.
func scrapeExporters(t *testing.T, targets string) {
	t.Helper()
	ex := startExporters(t)
	writeTargets(t, filepath.Join(targets, "postgres.yml"), ex.postgres)
	writeTargets(t, filepath.Join(targets, "redis.yml"), ex.redis)
}

// startStandby streams WAL from the PostgreSQL of dsn as a physical standby
// does: START_REPLICATION on a replication connection, and a status update
// every second saying how far it has written, flushed and replayed. The
// primary then shows it in pg_stat_replication, streaming, with a replay
// position. Where it differs from a real standby: it keeps nothing, and
// reports as replayed all it has received. The test server's pg_hba.conf
// need not admit physical replication connections: it connects with
// replication=database, which pg_hba takes as a connection to the
// database, and which streams physical WAL as well.
func startStandby(t *testing.T, dsn string) {
	t.Helper()
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["replication"] = "database"
	cfg.RuntimeParams["application_name"] = "parley-test-standby"
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
	hc.Conn.SetReadDeadline(time.Now().Add(30 * time.Second))
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
}

// standby is the streaming side of startStandby; one goroutine owns it.
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
		s.conn.SetReadDeadline(next)
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
	var hi, lo uint32
	if _, err := fmt.Sscanf(s, "%X/%X", &hi, &lo); err != nil || !strings.Contains(s, "/") {
		return 0, fmt.Errorf("LSN %q: %v", s, err)
	}
	return uint64(hi)<<32 | uint64(lo), nil
}
