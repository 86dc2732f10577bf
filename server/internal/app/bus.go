package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleychat/parley/server/internal/redisbus"
)

// openBus connects to the Redis of REDIS_URL for cross-replica fan-out,
// publishing as replica. A Redis that cannot be reached at start is not
// fatal: members on this replica are served meanwhile, and the bus
// connects when Redis comes.
func openBus(ctx context.Context, cfg config, log *slog.Logger, replica string, opts redisbus.Options) (*redisbus.Bus, func(), error) {
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("REDIS_URL %s: %w", redactURL(cfg.RedisURL), err)
	}
	client := redis.NewClient(opt)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		log.Warn("Redis cannot be reached; serving this replica's members until it can", "err", err)
	}
	log.Info("cross-replica fan-out through Redis", "replica", replica)
	bus := redisbus.New(client, replica, opts)
	return bus, func() { bus.Close(); client.Close() }, nil
}

// replicaID names this process among the replicas: the host name (the pod's,
// in Kubernetes) for people, and random bytes so that a restarted process
// is never taken for its predecessor. One per process, made once: the bus
// publishes under it and clients are told it, with or without Redis.
func replicaID() string {
	host, err := os.Hostname()
	if err != nil {
		host = "parley"
	}
	b := make([]byte, 4)
	rand.Read(b) // never fails (crypto/rand documents it)
	return host + "-" + hex.EncodeToString(b)
}
