package instrument_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/parleychat/parley/internal/testenv"
	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/instrument"
)

// took is how long every call of the fake store takes on the test's clock.
const took = 30 * time.Millisecond

func TestStoreTimesAndTracesEachOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err        error
		outcome    string
		spanFailed bool
	}{
		{nil, "ok", false},
		{chat.Errorf(chat.ErrNotFound, "room not found"), "not_found", false},
		{chat.Errorf(chat.ErrConflict, "name taken"), "conflict", false},
		{chat.Errorf(chat.ErrInvalid, "bad name"), "invalid", false},
		{chat.Errorf(chat.ErrTooLarge, "body too long"), "too_large", false},
		{chat.Errorf(chat.ErrUnavailable, "database down"), "unavailable", true},
		{fmt.Errorf("append: %w", context.DeadlineExceeded), "unavailable", true},
		{context.Canceled, "unavailable", true},
		{errors.New("a bug"), "error", true},
	}
	for _, tt := range tests {
		t.Run(tt.outcome+"/"+fmt.Sprint(tt.err), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tt.err)

			_, _, err := f.store.Append(context.Background(), chat.Draft{Room: "r1"})
			if !errors.Is(err, tt.err) {
				t.Errorf("got error %v, want the store's %v unchanged", err, tt.err)
			}
			wantSeries(t, f.reg, map[string]float64{
				`parley_store_operation_duration_seconds_count{op="append",outcome="` + tt.outcome + `"}`: 1,
				`parley_store_operation_duration_seconds_sum{op="append",outcome="` + tt.outcome + `"}`:   took.Seconds(),
			})
			spans := f.spans.Ended()
			if len(spans) != 1 {
				t.Fatalf("got %d spans, want 1", len(spans))
			}
			s := spans[0]
			if s.Name() != "store.append" || s.SpanKind() != trace.SpanKindClient {
				t.Errorf("got span %q of kind %v, want store.append of kind client", s.Name(), s.SpanKind())
			}
			wantStatus := codes.Unset
			if tt.spanFailed {
				wantStatus = codes.Error
			}
			if got := s.Status(); got.Code != wantStatus || (tt.spanFailed && got.Description != tt.outcome) {
				t.Errorf("got span status %v %q, want %v %q", got.Code, got.Description, wantStatus, tt.outcome)
			}
		})
	}
}

func TestStoreNamesEveryOperationAndPassesItsSpanOn(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	s := f.store
	s.CreateUser(ctx, chat.User{}, "")
	s.Credentials(ctx, "")
	s.CreateRoom(ctx, chat.Room{})
	s.Room(ctx, "")
	s.Rooms(ctx)
	s.RoomsAfter(ctx, "", 0)
	s.LastSeqs(ctx, nil)
	s.Append(ctx, chat.Draft{})
	s.History(ctx, "", chat.Page{})
	s.SaveTicket(ctx, chat.Ticket{})
	s.TakeTicket(ctx, "", time.Time{})
	s.Ping(ctx)
	s.CreateSession(ctx, chat.Session{})
	s.Session(ctx, "", time.Time{})
	s.SessionStatuses(ctx, nil, time.Time{})
	s.RevokeSession(ctx, "")
	s.RevokeSessions(ctx, "", "")
	s.SetPassword(ctx, "", "")
	s.DeleteUser(ctx, "")

	ops := []string{"create_user", "credentials", "create_room", "room", "rooms", "rooms_after", "last_seqs", "append", "history", "save_ticket", "take_ticket", "ping",
		"create_session", "session", "session_statuses", "revoke_session", "revoke_sessions", "set_password", "delete_user"}
	want := map[string]float64{}
	for _, op := range ops {
		want[`parley_store_operation_duration_seconds_count{op="`+op+`",outcome="ok"}`] = 1
		want[`parley_store_operation_duration_seconds_sum{op="`+op+`",outcome="ok"}`] = took.Seconds()
	}
	wantSeries(t, f.reg, want)

	var names []string
	for i, span := range f.spans.Ended() {
		names = append(names, span.Name())
		// The store's own spans (pgx queries) must be children of this one.
		if got := f.next.seen[i]; !got.Equal(span.SpanContext()) {
			t.Errorf("%s: the store got span %v in its context, want %v", span.Name(), got, span.SpanContext())
		}
	}
	var wantNames []string
	for _, op := range ops {
		wantNames = append(wantNames, "store."+op)
	}
	if !slices.Equal(names, wantNames) {
		t.Errorf("got spans %v, want %v", names, wantNames)
	}
}

// fixture is a fake store behind the instrumentation, with the registry,
// the spans and the clock it records with.
type fixture struct {
	store chat.Store
	next  *fakeStore
	reg   *prometheus.Registry
	spans *tracetest.SpanRecorder
}

func newFixture(t *testing.T, err error) *fixture {
	t.Helper()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	clock := testenv.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	next := &fakeStore{err: err, clock: clock}
	reg := prometheus.NewRegistry()
	return &fixture{
		store: instrument.Store(next, reg, tp.Tracer("test"), clock.Now),
		next:  next, reg: reg, spans: spans,
	}
}

// fakeStore answers every call with err after taking took on the clock, and
// records the span each call found in its context.
type fakeStore struct {
	err   error
	clock *testenv.Clock
	seen  []trace.SpanContext
}

func (s *fakeStore) call(ctx context.Context) error {
	s.seen = append(s.seen, trace.SpanContextFromContext(ctx))
	s.clock.Advance(took)
	return s.err
}

func (s *fakeStore) CreateUser(ctx context.Context, _ chat.User, _ string) error { return s.call(ctx) }
func (s *fakeStore) Credentials(ctx context.Context, _ string) (chat.User, string, error) {
	return chat.User{}, "", s.call(ctx)
}
func (s *fakeStore) CreateRoom(ctx context.Context, r chat.Room) (chat.Room, error) {
	return r, s.call(ctx)
}
func (s *fakeStore) Room(ctx context.Context, _ string) (chat.Room, error) {
	return chat.Room{}, s.call(ctx)
}
func (s *fakeStore) Rooms(ctx context.Context) ([]chat.Room, error) { return nil, s.call(ctx) }
func (s *fakeStore) RoomsAfter(ctx context.Context, _ string, _ int) ([]chat.Room, error) {
	return nil, s.call(ctx)
}
func (s *fakeStore) LastSeqs(ctx context.Context, _ []string) (map[string]int64, error) {
	return nil, s.call(ctx)
}
func (s *fakeStore) Append(ctx context.Context, _ chat.Draft) (chat.Message, bool, error) {
	return chat.Message{}, false, s.call(ctx)
}
func (s *fakeStore) History(ctx context.Context, _ string, _ chat.Page) ([]chat.Message, bool, error) {
	return nil, false, s.call(ctx)
}
func (s *fakeStore) SaveTicket(ctx context.Context, _ chat.Ticket) error { return s.call(ctx) }
func (s *fakeStore) TakeTicket(ctx context.Context, _ string, _ time.Time) (chat.Ticket, error) {
	return chat.Ticket{}, s.call(ctx)
}
func (s *fakeStore) Ping(ctx context.Context) error { return s.call(ctx) }

func (s *fakeStore) CreateSession(ctx context.Context, _ chat.Session) error { return s.call(ctx) }
func (s *fakeStore) Session(ctx context.Context, _ string, _ time.Time) (chat.Session, error) {
	return chat.Session{}, s.call(ctx)
}
func (s *fakeStore) SessionStatuses(ctx context.Context, _ []string, _ time.Time) (map[string]chat.SessionStatus, error) {
	return nil, s.call(ctx)
}
func (s *fakeStore) RevokeSession(ctx context.Context, _ string) error     { return s.call(ctx) }
func (s *fakeStore) RevokeSessions(ctx context.Context, _, _ string) error { return s.call(ctx) }
func (s *fakeStore) SetPassword(ctx context.Context, _, _ string) error    { return s.call(ctx) }
func (s *fakeStore) DeleteUser(ctx context.Context, _ string) error        { return s.call(ctx) }
