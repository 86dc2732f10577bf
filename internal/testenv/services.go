// Package testenv is the one place tests get what they need from outside
// their package: real PostgreSQL and Redis (TEST_DATABASE_URL,
// TEST_REDIS_URL), the programs they run (promtool, Alertmanager, Chromium)
// or build from this module (GoBuild), network stand-ins (a closed address,
// a black hole, a proxy that can be cut or slowed), a standby streaming
// from the test PostgreSQL (StartStandby), and the one way to wait
// for a condition (Eventually). What is missing skips the test with the
// reason, and fails it under CI=true.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// adminTimeout bounds creating and dropping a test database, so a server that
// accepts connections but never answers fails the test instead of hanging it.
const adminTimeout = 30 * time.Second

// PostgresURL returns the URL of a new, empty PostgreSQL database that lives
// as long as the test: it is created on the server named by
// TEST_DATABASE_URL (whose user must be allowed to create databases) and
// dropped, with any connections still open to it, when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return postgresURL(t, os.Getenv)
}

func postgresURL(t testing.TB, getenv func(string) string) string {
	t.Helper()
	base := requireEnv(t, getenv, "TEST_DATABASE_URL", "PostgreSQL")

	name := "parley_test_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if err := adminExec(ctx, base, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// The test's own context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		if err := adminExec(ctx, base, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})

	u, err := withDatabase(base, name)
	if err != nil {
		t.Fatalf("testenv: TEST_DATABASE_URL: %v", err)
	}
	return u
}

// RedisURL returns TEST_REDIS_URL. Tests that share the server should keep
// their keys apart (a random prefix or channel name), as nothing is reset
// between them.
func RedisURL(t testing.TB) string {
	t.Helper()
	return redisURL(t, os.Getenv)
}

func redisURL(t testing.TB, getenv func(string) string) string {
	t.Helper()
	return requireEnv(t, getenv, "TEST_REDIS_URL", "Redis")
}

// requireEnv returns the variable's value, or skips the test (fails it under
// CI=true) when the variable is unset.
func requireEnv(t testing.TB, getenv func(string) string, name, service string) string {
	t.Helper()
	if v := getenv(name); v != "" {
		return v
	}
	missing(t, getenv, name+" not set", "point it at "+service)
	return ""
}

func adminExec(ctx context.Context, url, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// PostgresExec runs one statement on the test database at url, for a test
// that must change what a server stores behind its back (a row that
// vanishes while a client is away). It fails the test if the statement
// does.
func PostgresExec(t testing.TB, url, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := adminExec(ctx, url, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// withDatabase returns base with its database replaced by name, keeping the
// host, credentials and parameters. It accepts both forms libpq does: a URL
// and a list of key=value settings.
func withDatabase(base, name string) (string, error) {
	if !strings.HasPrefix(base, "postgres://") && !strings.HasPrefix(base, "postgresql://") {
		// A later setting overrides an earlier one in a key=value string.
		return fmt.Sprintf("%s dbname=%s", base, name), nil
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b)
}
