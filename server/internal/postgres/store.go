// Package postgres is the PostgreSQL chat.Store. It applies its own schema
// migrations when opened and writes messages with group commit: appends to
// the same room are queued to one writer goroutine, which stores whatever has
// queued up in a single transaction.
package postgres

import (
	"context"
	"embed"
	"fmt"
	"hash/maphash"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"

	"github.com/parleychat/parley/server/internal/chat"
)

//go:embed migrations/*.sql
var migrations embed.FS

// versionTable records which migrations have run. It is named for the
// application so that a database shared with other tern users keeps the two
// histories apart.
const versionTable = "parley_schema_version"

// Options tune a Store. The zero value is ready to use.
type Options struct {
	// Shards is the number of writer goroutines appends are spread over,
	// by room: one room always goes to the same writer. 0 means 4.
	Shards int
	// MaxBatch is the most appends one transaction stores. 0 means 256.
	MaxBatch int
	// Logger receives the failures the store deals with itself rather than
	// returns. nil discards them.
	Logger *slog.Logger
	// Tracer, if set, traces every query (the server passes otelpgx's).
	Tracer pgx.QueryTracer
	// OnBatch, if set, is told the size of each group commit the writers
	// attempt.
	OnBatch func(size int)
}

// Store is a chat.Store backed by PostgreSQL. It is safe for concurrent use;
// several Stores (in one process or many) may share a database.
type Store struct {
	pool     *pgxpool.Pool
	log      *slog.Logger
	maxBatch int
	onBatch  func(size int)
	seed     maphash.Seed
	queues   []chan *appendReq
	writers  sync.WaitGroup

	// mu is held for reading while an append is queued and for writing while
	// Close closes the queues, so nothing is ever sent on a closed queue.
	mu        sync.RWMutex
	closed    bool
	closeOnce sync.Once

	nextSweep        atomic.Int64 // unix nanoseconds after which SaveTicket deletes expired tickets
	nextSessionSweep atomic.Int64 // the same for CreateSession and expired sessions
	batches          atomic.Int64
	drafts           atomic.Int64
}

// Open connects to the database at url, brings its schema up to date and
// starts the writers. ctx bounds only the connecting and migrating; the
// Store lives until Close.
//
// Replicas may open the same database at the same time: migrations run under
// an advisory lock, so one applies them and the others find them done.
//
// Each writer holds a connection while it commits. Unless url sizes the pool
// (pool_max_conns), the pool is made large enough for every writer and a few
// readers besides.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if opts.Shards <= 0 {
		opts.Shards = 4
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}

	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = max(cfg.MaxConns, int32(opts.Shards)+4)
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "parley"
	}
	if opts.Tracer != nil {
		cfg.ConnConfig.Tracer = opts.Tracer
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, classify("open", err)
	}
	if err := migrateUp(ctx, pool); err != nil {
		pool.Close()
		return nil, classify("migrate", err)
	}

	s := &Store{
		pool:     pool,
		log:      opts.Logger,
		maxBatch: opts.MaxBatch,
		onBatch:  opts.OnBatch,
		seed:     maphash.MakeSeed(),
		queues:   make([]chan *appendReq, opts.Shards),
	}
	for i := range s.queues {
		// A queue holds one batch: the next one fills while the last one
		// commits, and beyond that Append waits, which slows senders to what
		// the database takes.
		q := make(chan *appendReq, opts.MaxBatch)
		s.queues[i] = q
		s.writers.Add(1)
		go s.runWriter(q)
	}
	return s, nil
}

// migrateUp applies the embedded migrations on one connection of pool.
func migrateUp(ctx context.Context, pool *pgxpool.Pool) (err error) {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err == nil {
			c.Release()
			return
		}
		// The migrator holds a session advisory lock while it works. After a
		// failure it may not have let go, and a pooled connection holding
		// it would stall every later migration, so the connection goes.
		conn := c.Hijack()
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()

	m, err := migrate.NewMigrator(ctx, c.Conn(), versionTable)
	if err != nil {
		return err
	}
	files, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	if err := m.LoadMigrations(files); err != nil {
		return err
	}
	return m.Migrate(ctx)
}

// Close stops taking appends, stores and answers every append already
// queued, stops the writers and closes the pool. It is safe to call more
// than once and from several goroutines; every call returns once the store
// is closed. Calls made after Close fail with chat.ErrUnavailable.
func (s *Store) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		for _, q := range s.queues {
			close(q)
		}
		s.mu.Unlock()
		s.writers.Wait()
		s.pool.Close()
	})
}

func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// Ping reports whether the database answers within ctx.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return s.fail("ping", err)
	}
	return nil
}

// Stats are running totals of the store's group commit, for metrics.
type Stats struct {
	// Batches counts the transactions the writers have attempted.
	Batches int64
	// Drafts counts the appends those transactions carried, so that
	// Drafts/Batches is the mean batch size.
	Drafts int64
}

// Stats returns the totals so far.
func (s *Store) Stats() Stats {
	return Stats{Batches: s.batches.Load(), Drafts: s.drafts.Load()}
}

// PoolStat reports the connection pool's state, for metrics.
func (s *Store) PoolStat() *pgxpool.Stat { return s.pool.Stat() }

var _ chat.Store = (*Store)(nil)
