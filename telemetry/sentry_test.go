package telemetry_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/testenv"
	"github.com/parleychat/parley/telemetry"
)

// sentryEvent is the part of a Sentry event payload the tests look at.
type sentryEvent struct {
	Level       string                    `json:"level"`
	Message     string                    `json:"message"`
	Release     string                    `json:"release"`
	Environment string                    `json:"environment"`
	Tags        map[string]string         `json:"tags"`
	Contexts    map[string]map[string]any `json:"contexts"`
	Exception   []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"exception"`
}

// fakeSentry is a Sentry-protocol endpoint that keeps the events it receives.
type fakeSentry struct {
	mu     sync.Mutex
	events []sentryEvent
}

// ServeHTTP reads an envelope: a header line, then item header and payload
// pairs, all JSON.
func (f *fakeSentry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	dec := json.NewDecoder(r.Body)
	var header map[string]any
	if err := dec.Decode(&header); err != nil {
		http.Error(w, "bad envelope header", http.StatusBadRequest)
		return
	}
	for {
		var item struct {
			Type string `json:"type"`
		}
		if err := dec.Decode(&item); err != nil {
			break
		}
		var payload json.RawMessage
		if err := dec.Decode(&payload); err != nil {
			http.Error(w, "bad item payload", http.StatusBadRequest)
			return
		}
		if item.Type != "event" {
			continue
		}
		var ev sentryEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.events = append(f.events, ev)
		f.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

func (f *fakeSentry) received() []sentryEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sentryEvent(nil), f.events...)
}

// startFakeSentry returns the endpoint and a DSN pointing to it.
func startFakeSentry(t *testing.T) (*fakeSentry, string) {
	t.Helper()
	f := &fakeSentry{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, "http://public@" + srv.Listener.Addr().String() + "/1"
}

func TestSentryEventsCarryTraceReleaseAndEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		capture func(ctx context.Context, r *telemetry.Reporter)
		check   func(t *testing.T, ev sentryEvent)
	}{
		{
			"panic",
			func(ctx context.Context, r *telemetry.Reporter) {
				defer func() { r.CapturePanic(ctx, recover(), map[string]string{"route": "/ws"}) }()
				panic("boom")
			},
			func(t *testing.T, ev sentryEvent) {
				if ev.Level != "fatal" || ev.Message != "boom" {
					t.Errorf("got level %q message %q, want fatal boom", ev.Level, ev.Message)
				}
			},
		},
		{
			"error",
			func(ctx context.Context, r *telemetry.Reporter) {
				r.Capture(ctx, errors.New("store unreachable"), map[string]string{"route": "/ws"})
			},
			func(t *testing.T, ev sentryEvent) {
				if ev.Level != "error" || len(ev.Exception) == 0 || ev.Exception[len(ev.Exception)-1].Value != "store unreachable" {
					t.Errorf("got level %q exception %v, want error store unreachable", ev.Level, ev.Exception)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sentry, dsn := startFakeSentry(t)
			tel := mustSetup(t, telemetry.Config{Version: "1.2.3", Environment: "staging", Getenv: env("SENTRY_DSN", dsn)})

			ctx, span := tel.Tracer.Tracer("test").Start(context.Background(), "op")
			tt.capture(ctx, tel.Sentry)
			span.End()

			flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if !tel.Sentry.Flush(flushCtx) {
				t.Fatal("got Flush false, want the event delivered")
			}
			events := sentry.received()
			if len(events) != 1 {
				t.Fatalf("got %d events, want 1", len(events))
			}
			ev := events[0]
			traceID := span.SpanContext().TraceID().String()
			if ev.Tags["trace_id"] != traceID || ev.Tags["route"] != "/ws" {
				t.Errorf("got tags %v, want trace_id %s and route /ws", ev.Tags, traceID)
			}
			if got := ev.Contexts["trace"]["trace_id"]; got != traceID {
				t.Errorf("got trace context trace_id %v, want %s", got, traceID)
			}
			if ev.Release != "1.2.3" || ev.Environment != "staging" {
				t.Errorf("got release %q environment %q, want 1.2.3 staging", ev.Release, ev.Environment)
			}
			tt.check(t, ev)
		})
	}
}

func TestSentryWithoutDSNDoesNothing(t *testing.T) {
	t.Parallel()
	tel := mustSetup(t, telemetry.Config{})
	if tel.Sentry != nil {
		t.Fatalf("got %v, want a nil Reporter", tel.Sentry)
	}
	tel.Sentry.Capture(context.Background(), errors.New("x"), nil)
	tel.Sentry.CapturePanic(context.Background(), "x", nil)
	if !tel.Sentry.Flush(context.Background()) {
		t.Error("got Flush false, want true: there is nothing to deliver")
	}
}

func TestDeadSentryNeverBlocksTheCaller(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		addr func(testing.TB) string
	}{
		{"endpoint that never answers", testenv.StartBlackHole},
		{"closed port", testenv.ClosedAddr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dsn := "http://public@" + tt.addr(t) + "/1"
			tel, err := telemetry.Setup(context.Background(), telemetry.Config{Stdout: io.Discard, Getenv: env("SENTRY_DSN", dsn)})
			if err != nil {
				t.Fatal(err)
			}

			captured := make(chan struct{})
			go func() {
				defer close(captured)
				for range 200 {
					tel.Sentry.Capture(context.Background(), errors.New("store unreachable"), nil)
				}
			}()
			select {
			case <-captured:
			case <-time.After(10 * time.Second):
				t.Fatal("200 Capture calls did not return: reporting blocked on the endpoint")
			}

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			shutdown := make(chan error, 1)
			go func() { shutdown <- tel.Shutdown(ctx) }()
			select {
			case <-shutdown:
			case <-time.After(5 * time.Second):
				t.Fatal("Shutdown with a 2s context did not return")
			}
		})
	}
}
