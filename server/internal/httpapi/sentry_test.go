package httpapi

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/parleychat/parley/internal/testenv"
	"github.com/parleychat/parley/telemetry"
)

// sentryStandIn is a Sentry-protocol endpoint (no tracker runs here) that
// keeps the envelopes posted to it.
type sentryStandIn struct {
	mu        sync.Mutex
	envelopes []string
}

func (s *sentryStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.envelopes = append(s.envelopes, string(body))
	s.mu.Unlock()
}

func (s *sentryStandIn) events() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.envelopes {
		if strings.Contains(e, `"type":"event"`) {
			out = append(out, e)
		}
	}
	return out
}

// sentryAPI starts an API whose errors go through the real Sentry client
// and transport to dsn, and whose spans land in memory.
func sentryAPI(t *testing.T, dsn string) (*testAPI, *telemetry.Telemetry, *tracetest.InMemoryExporter) {
	t.Helper()
	spans := tracetest.NewInMemoryExporter()
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{
		Version: "test", Environment: "test", Stdout: io.Discard, SpanExporter: spans,
		Getenv: func(k string) string { return map[string]string{"SENTRY_DSN": dsn}[k] },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		tel.Shutdown(ctx)
	})
	api := startAPI(t, newPanickingStore(), Config{UserRate: 1000, Telemetry: Telemetry{Tracer: tel.Tracer.Tracer("test"), Reporter: tel.Sentry}})
	return api, tel, spans
}

// A handler's panic reaches the error tracker once, tagged with the trace of
// the request it broke.
func TestAPanicReachesSentryOnceWithItsTraceID(t *testing.T) {
	t.Parallel()
	standIn := &sentryStandIn{}
	srv := httptest.NewServer(standIn)
	t.Cleanup(srv.Close)
	api, tel, spans := sentryAPI(t, "http://public@"+srv.Listener.Addr().String()+"/1")
	token := api.mustRegister("alice")
	room := api.mustCreateRoom("lobby")
	if status, _ := api.post(token, "/api/v1/rooms/"+room+"/messages", postMessageRequest{ClientID: "c1", Body: panicBody}); status != http.StatusInternalServerError {
		t.Fatalf("got status %d, want 500", status)
	}
	span, ok := spanNamed(spans, "POST /api/v1/rooms/{room}/messages")
	if !ok {
		t.Fatalf("no request span; spans: %v", spanNames(spans))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil { // flushes the event
		t.Fatal(err)
	}
	events := standIn.events()
	if len(events) != 1 {
		t.Fatalf("got %d events, want 1", len(events))
	}
	if want := `"trace_id":"` + span.SpanContext.TraceID().String() + `"`; !strings.Contains(events[0], want) {
		t.Fatalf("the event lacks %s:\n%s", want, events[0])
	}
}

// A tracker that accepts connections and never answers must not hold up
// the requests that report to it, nor the sends after them.
func TestADeadSentryDoesNotHoldRequestsUp(t *testing.T) {
	t.Parallel()
	hanging := testenv.StartBlackHole(t)
	api, _, _ := sentryAPI(t, "http://public@"+hanging+"/1")
	token := api.mustRegister("alice")
	room := api.mustCreateRoom("lobby")
	for i := range 20 {
		if status, _ := api.post(token, "/api/v1/rooms/"+room+"/messages", postMessageRequest{ClientID: "boom", Body: panicBody}); status != http.StatusInternalServerError {
			t.Fatalf("panic %d: got status %d, want 500", i, status)
		}
	}
	c := api.mustDial(token)
	c.mustJoin(room)
	c.send(sendMsg(room, "after", "hello"))
	c.expect("ack")
	c.closeNormally()
}
