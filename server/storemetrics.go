package main

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley/server/internal/chat"
)

// timedStore times every store operation by name and outcome. It wraps the
// store here, at the composition root, so that neither the domain nor the
// stores import Prometheus, and both stores are measured alike.
type timedStore struct {
	chat.Store
	seconds *prometheus.HistogramVec
}

func newTimedStore(s chat.Store, reg prometheus.Registerer) *timedStore {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "parley_store_operation_duration_seconds",
		Help:    "Time of each store operation, by operation and outcome (ok, not_found, conflict, invalid, too_large, unavailable, error).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"op", "outcome"})
	reg.MustRegister(h)
	return &timedStore{Store: s, seconds: h}
}

// observe records an operation that began at start and ended with *err;
// deferred, it reads err when the operation returns.
func (s *timedStore) observe(op string, start time.Time, err *error) {
	s.seconds.WithLabelValues(op, outcome(*err)).Observe(time.Since(start).Seconds())
}

// outcome names an error by its kind, so the label stays bounded.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, chat.ErrNotFound):
		return "not_found"
	case errors.Is(err, chat.ErrConflict):
		return "conflict"
	case errors.Is(err, chat.ErrInvalid):
		return "invalid"
	case errors.Is(err, chat.ErrTooLarge):
		return "too_large"
	case errors.Is(err, chat.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "unavailable"
	}
	return "error"
}

func (s *timedStore) CreateUser(ctx context.Context, u chat.User, hash string) (err error) {
	defer s.observe("create_user", time.Now(), &err)
	return s.Store.CreateUser(ctx, u, hash)
}

func (s *timedStore) Credentials(ctx context.Context, username string) (u chat.User, hash string, err error) {
	defer s.observe("credentials", time.Now(), &err)
	return s.Store.Credentials(ctx, username)
}

func (s *timedStore) CreateRoom(ctx context.Context, r chat.Room) (_ chat.Room, err error) {
	defer s.observe("create_room", time.Now(), &err)
	return s.Store.CreateRoom(ctx, r)
}

func (s *timedStore) Room(ctx context.Context, id string) (_ chat.Room, err error) {
	defer s.observe("room", time.Now(), &err)
	return s.Store.Room(ctx, id)
}

func (s *timedStore) Rooms(ctx context.Context) (_ []chat.Room, err error) {
	defer s.observe("rooms", time.Now(), &err)
	return s.Store.Rooms(ctx)
}

func (s *timedStore) LastSeqs(ctx context.Context, rooms []string) (_ map[string]int64, err error) {
	defer s.observe("last_seqs", time.Now(), &err)
	return s.Store.LastSeqs(ctx, rooms)
}

func (s *timedStore) Append(ctx context.Context, d chat.Draft) (_ chat.Message, _ bool, err error) {
	defer s.observe("append", time.Now(), &err)
	return s.Store.Append(ctx, d)
}

func (s *timedStore) History(ctx context.Context, room string, p chat.Page) (_ []chat.Message, _ bool, err error) {
	defer s.observe("history", time.Now(), &err)
	return s.Store.History(ctx, room, p)
}

func (s *timedStore) SaveTicket(ctx context.Context, t chat.Ticket) (err error) {
	defer s.observe("save_ticket", time.Now(), &err)
	return s.Store.SaveTicket(ctx, t)
}

func (s *timedStore) TakeTicket(ctx context.Context, hash string, now time.Time) (_ chat.Ticket, err error) {
	defer s.observe("take_ticket", time.Now(), &err)
	return s.Store.TakeTicket(ctx, hash, now)
}

func (s *timedStore) Ping(ctx context.Context) (err error) {
	defer s.observe("ping", time.Now(), &err)
	return s.Store.Ping(ctx)
}
