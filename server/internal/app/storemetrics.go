package app

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/parleychat/parley/server/internal/chat"
)

// timedStore gives every store operation a span (store.append, ...) and
// times it by name and outcome. It wraps the store here, at the composition
// root, so that neither the domain nor the stores import Prometheus or
// OpenTelemetry, and both stores are measured alike. The span matters most
// for appends: PostgreSQL's group commit runs them in a writer goroutine,
// whose queries cannot be children of the sender's span, so this span is
// what a trace shows of the wait and the commit.
type timedStore struct {
	chat.Store
	seconds *prometheus.HistogramVec
	tracer  trace.Tracer
}

func newTimedStore(s chat.Store, reg prometheus.Registerer, tracer trace.Tracer) *timedStore {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "parley_store_operation_duration_seconds",
		Help:    "Time of each store operation, by operation and outcome (ok, not_found, conflict, invalid, too_large, unavailable, error).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"op", "outcome"})
	reg.MustRegister(h)
	return &timedStore{Store: s, seconds: h, tracer: tracer}
}

// begin starts op's span and returns the function that ends it and records
// the operation with the error it returned.
func (s *timedStore) begin(ctx context.Context, op string) (context.Context, func(*error)) {
	start := time.Now()
	ctx, span := s.tracer.Start(ctx, "store."+op, trace.WithSpanKind(trace.SpanKindClient))
	return ctx, func(err *error) {
		out := outcome(*err)
		if out == "unavailable" || out == "error" {
			span.SetStatus(codes.Error, out)
		}
		span.End()
		s.seconds.WithLabelValues(op, out).Observe(time.Since(start).Seconds())
	}
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
	ctx, end := s.begin(ctx, "create_user")
	defer end(&err)
	return s.Store.CreateUser(ctx, u, hash)
}

func (s *timedStore) Credentials(ctx context.Context, username string) (u chat.User, hash string, err error) {
	ctx, end := s.begin(ctx, "credentials")
	defer end(&err)
	return s.Store.Credentials(ctx, username)
}

func (s *timedStore) CreateRoom(ctx context.Context, r chat.Room) (_ chat.Room, err error) {
	ctx, end := s.begin(ctx, "create_room")
	defer end(&err)
	return s.Store.CreateRoom(ctx, r)
}

func (s *timedStore) Room(ctx context.Context, id string) (_ chat.Room, err error) {
	ctx, end := s.begin(ctx, "room")
	defer end(&err)
	return s.Store.Room(ctx, id)
}

func (s *timedStore) Rooms(ctx context.Context) (_ []chat.Room, err error) {
	ctx, end := s.begin(ctx, "rooms")
	defer end(&err)
	return s.Store.Rooms(ctx)
}

func (s *timedStore) LastSeqs(ctx context.Context, rooms []string) (_ map[string]int64, err error) {
	ctx, end := s.begin(ctx, "last_seqs")
	defer end(&err)
	return s.Store.LastSeqs(ctx, rooms)
}

func (s *timedStore) Append(ctx context.Context, d chat.Draft) (_ chat.Message, _ bool, err error) {
	ctx, end := s.begin(ctx, "append")
	defer end(&err)
	return s.Store.Append(ctx, d)
}

func (s *timedStore) History(ctx context.Context, room string, p chat.Page) (_ []chat.Message, _ bool, err error) {
	ctx, end := s.begin(ctx, "history")
	defer end(&err)
	return s.Store.History(ctx, room, p)
}

func (s *timedStore) SaveTicket(ctx context.Context, t chat.Ticket) (err error) {
	ctx, end := s.begin(ctx, "save_ticket")
	defer end(&err)
	return s.Store.SaveTicket(ctx, t)
}

func (s *timedStore) TakeTicket(ctx context.Context, hash string, now time.Time) (_ chat.Ticket, err error) {
	ctx, end := s.begin(ctx, "take_ticket")
	defer end(&err)
	return s.Store.TakeTicket(ctx, hash, now)
}

func (s *timedStore) Ping(ctx context.Context) (err error) {
	ctx, end := s.begin(ctx, "ping")
	defer end(&err)
	return s.Store.Ping(ctx)
}
