package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/exaring/otelpgx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/instrument"
	"github.com/parleychat/parley/server/internal/memstore"
	"github.com/parleychat/parley/server/internal/postgres"
	"github.com/parleychat/parley/telemetry"
)

// openStore returns PostgreSQL when DATABASE_URL is set and the in-memory
// store otherwise.
func openStore(ctx context.Context, cfg config, log *slog.Logger, tel *telemetry.Telemetry, reg prometheus.Registerer, onBatch func(int)) (chat.Store, func(), error) {
	if cfg.DatabaseURL == "" {
		log.Warn("DATABASE_URL is not set: using the in-memory store; history is not durable and is lost at restart",
			"history_per_room", cfg.MemoryHistory)
		s := memstore.New(memstore.Options{HistoryLimit: cfg.MemoryHistory})
		return s, s.Close, nil
	}
	s, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{
		Logger:  log,
		Tracer:  otelpgx.NewTracer(otelpgx.WithTracerProvider(tel.Tracer)),
		OnBatch: onBatch,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("open PostgreSQL (DATABASE_URL %s): %w", redactURL(cfg.DatabaseURL), err)
	}
	instrument.Pool(reg, func() instrument.PoolStat { return s.PoolStat() })
	return s, s.Close, nil
}
