package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestPostgresURLGivesAFreshDatabaseDroppedAtTheEnd(t *testing.T) {
	t.Parallel()
	base := PostgresURL(t) // skips here without TEST_DATABASE_URL

	var name string
	var left *pgx.Conn // still open when the database is dropped
	t.Run("inner", func(t *testing.T) {
		u := PostgresURL(t)
		if u == base {
			t.Fatalf("got the same URL twice: %s", u)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatalf("connect to the new database: %v", err)
		}
		left = conn
		var tables int
		if err := conn.QueryRow(ctx, "SELECT current_database(), count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&name, &tables); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "parley_test_") {
			t.Errorf("got database %q, want the prefix parley_test_", name)
		}
		if tables != 0 {
			t.Errorf("got %d tables, want an empty database", tables)
		}
	})

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if left != nil {
		left.Close(ctx)
	}
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestWithDatabaseKeepsEverythingButTheName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, base, want string
	}{
		{"url", "postgres://u:p@db:5432/test?sslmode=disable", "postgres://u:p@db:5432/x?sslmode=disable"},
		{"url without a database", "postgresql://db", "postgresql://db/x"},
		{"key value", "host=db user=u dbname=test", "host=db user=u dbname=test dbname=x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := withDatabase(tt.base, "x")
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMissingServiceSkipsOrFailsUnderCI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		ci       string
		get      func(testing.TB, func(string) string) string
		wantSkip bool
		wantFail bool
	}{
		{"postgres skips on a laptop", "", postgresURL, true, false},
		{"postgres fails in CI", "true", postgresURL, false, true},
		{"redis skips on a laptop", "false", redisURL, true, false},
		{"redis fails in CI", "true", redisURL, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Neither TEST_DATABASE_URL nor TEST_REDIS_URL is set.
			rec := run(func(tb testing.TB) string { return tt.get(tb, env("CI", tt.ci)) })
			if rec.skipped != tt.wantSkip || rec.failed != tt.wantFail {
				t.Errorf("got skipped=%v failed=%v, want skipped=%v failed=%v", rec.skipped, rec.failed, tt.wantSkip, tt.wantFail)
			}
			if !strings.Contains(rec.msg, "not set") {
				t.Errorf("got message %q, want it to say the variable is not set", rec.msg)
			}
		})
	}
}

func TestRedisURLReturnsTheVariable(t *testing.T) {
	t.Parallel()
	if got, want := redisURL(t, env("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")), "redis://127.0.0.1:6379/0"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
