package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	dto "github.com/prometheus/client_model/go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/parleychat/parley/server/internal/memstore"
	"github.com/parleychat/parley/telemetry"
)

// tracedAPI is an API whose spans land in memory and whose error reports
// are recorded.
func tracedAPI(t *testing.T) (*testAPI, *tracetest.InMemoryExporter, *reports) {
	t.Helper()
	cfg, spans, rep := traced(t)
	return startAPI(t, memstore.New(memstore.Options{}), cfg), spans, rep
}

// traced is a Config whose spans land in memory and whose error reports
// are recorded.
func traced(t *testing.T) (Config, *tracetest.InMemoryExporter, *reports) {
	t.Helper()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	rep := &reports{}
	return Config{Telemetry: Telemetry{Tracer: tp.Tracer("test"), Reporter: rep}}, spans, rep
}

// reports records what the API reported to the error tracker.
type reports struct {
	mu     sync.Mutex
	errors []map[string]string
	panics []map[string]string
}

func (r *reports) Capture(_ context.Context, _ error, tags map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, tags)
}

func (r *reports) CapturePanic(_ context.Context, _ any, tags map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.panics = append(r.panics, tags)
}

func spanNamed(spans *tracetest.InMemoryExporter, name string) (tracetest.SpanStub, bool) {
	for _, s := range spans.GetSpans() {
		if s.Name == name {
			return s, true
		}
	}
	return tracetest.SpanStub{}, false
}

func TestARequestGetsASpanNamedByItsRouteAndIsCountedWithAnExemplar(t *testing.T) {
	t.Parallel()
	api, spans, _ := tracedAPI(t)
	token := api.mustRegister("alice")
	room := api.mustCreateRoom("lobby")
	if status, body := api.post(token, "/api/v1/rooms/"+room+"/messages", map[string]string{"client_id": "c1", "body": "hi"}); status != http.StatusCreated {
		t.Fatalf("got status %d (%s), want 201", status, body)
	}

	span, ok := spanNamed(spans, "POST /api/v1/rooms/{room}/messages")
	if !ok {
		t.Fatalf("no span named by the route pattern among %v", spanNames(spans))
	}
	if span.SpanKind != trace.SpanKindServer {
		t.Errorf("got span kind %v, want server", span.SpanKind)
	}
	if got := api.metric("parley_http_requests_total", "route", "/api/v1/rooms/{room}/messages", "method", "POST", "code", "2xx"); got != 1 {
		t.Errorf("got %v requests counted, want 1", got)
	}
	if got := api.metric("parley_sends_total", "transport", "rest", "outcome", "acked", "reason", ""); got != 1 {
		t.Errorf("got %v acked REST sends, want 1", got)
	}
	want := span.SpanContext.TraceID().String()
	if !slices.Contains(exemplarTraceIDs(t, api, "parley_http_request_duration_seconds"), want) {
		t.Errorf("the request latency has no exemplar with trace id %s", want)
	}
	if !slices.Contains(exemplarTraceIDs(t, api, "parley_ack_latency_seconds"), want) {
		t.Errorf("the ack latency has no exemplar with trace id %s", want)
	}
}

func TestAnUnknownPathIsCountedAsUnmatched(t *testing.T) {
	t.Parallel()
	api, _, _ := tracedAPI(t)
	resp, err := api.client.Get(api.base + "/wp-admin/" + "x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := api.metric("parley_http_requests_total", "route", "unmatched", "method", "GET", "code", "4xx"); got != 1 {
		t.Errorf("got %v, want the 404 counted once under route unmatched", got)
	}
}

func TestTheUpgradeSpanEndsWhenTheSocketOpensAndFramesGetTracesOfTheirOwn(t *testing.T) {
	t.Parallel()
	api, spans, _ := tracedAPI(t)
	token := api.mustRegister("alice")
	room := api.mustCreateRoom("lobby")
	c := api.mustDial(token)

	// The client has its socket as soon as the server has answered, a moment
	// before the server ends the span; the server reads the first frame only
	// after, so the span has ended by the time the join is answered.
	c.mustJoin(room)
	upgrade, ok := spanNamed(spans, "GET /ws")
	if !ok {
		t.Fatalf("no upgrade span while the socket is open; spans: %v", spanNames(spans))
	}
	const parent = "4bf92f3577b34da6a3ce929d0e0e4736"
	msg := sendMsg(room, "c1", "hi")
	msg["trace"] = "00-" + parent + "-00f067aa0ba902b7-01"
	c.send(msg)
	c.expect("ack")

	// The send frame was read after the join's span ended.
	join, ok := spanNamed(spans, "chat.join")
	if !ok {
		t.Fatalf("no chat.join span; spans: %v", spanNames(spans))
	}
	if join.SpanContext.TraceID() == upgrade.SpanContext.TraceID() {
		t.Error("the join frame's span is in the upgrade's trace, want a trace of its own")
	}
	if len(join.Links) != 1 || join.Links[0].SpanContext.SpanID() != upgrade.SpanContext.SpanID() {
		t.Errorf("got links %v, want one to the upgrade span", join.Links)
	}
	if got := api.metric("parley_sends_total", "transport", "ws", "outcome", "acked", "reason", ""); got != 1 {
		t.Errorf("got %v acked sends over the socket, want 1", got)
	}
	c.send(sendMsg(room, "c2", ""))
	c.expect("error")
	// A frame's span ends just after its reply is queued; the connection
	// reads the next frame only then, so the answer to c2 means c1's span
	// has ended.
	send, ok := spanNamed(spans, "chat.send")
	if !ok {
		t.Fatalf("no chat.send span; spans: %v", spanNames(spans))
	}
	if got := send.SpanContext.TraceID().String(); got != parent {
		t.Errorf("got the send in trace %s, want the client's trace %s", got, parent)
	}
	if got := api.metric("parley_sends_total", "transport", "ws", "outcome", "rejected", "reason", "bad_request"); got != 1 {
		t.Errorf("got %v rejected sends, want 1", got)
	}
	c.closeNormally()
}

func TestPanicsAreReportedWithTheirRouteOrFrame(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	rep := &reports{}
	api := startAPI(t, newPanickingStore(), Config{Telemetry: Telemetry{Tracer: tp.Tracer("test"), Reporter: rep}})
	token := api.mustRegister("alice")
	room := api.mustCreateRoom("lobby")

	if status, _ := api.post(token, "/api/v1/rooms/"+room+"/messages", map[string]string{"client_id": "c1", "body": panicBody}); status != http.StatusInternalServerError {
		t.Fatalf("got status %d, want 500", status)
	}
	c := api.mustDial(token)
	c.send(sendMsg(room, "c2", panicBody))
	c.waitEnded()

	if got := api.metric("parley_sends_total", "transport", "rest", "outcome", "failed", "reason", "internal"); got != 1 {
		t.Errorf("got %v REST sends failed as internal, want the panic counted", got)
	}
	if got := api.metric("parley_sends_total", "transport", "ws", "outcome", "failed", "reason", "internal"); got != 1 {
		t.Errorf("got %v socket sends failed as internal, want the panic counted", got)
	}
	rep.mu.Lock()
	defer rep.mu.Unlock()
	want := []map[string]string{{"route": "/api/v1/rooms/{room}/messages", "method": "POST"}, {"frame": "send"}}
	if len(rep.panics) != 2 || !mapsEqual(rep.panics[0], want[0]) || !mapsEqual(rep.panics[1], want[1]) {
		t.Fatalf("got panic reports %v, want %v", rep.panics, want)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func spanNames(spans *tracetest.InMemoryExporter) []string {
	var out []string
	for _, s := range spans.GetSpans() {
		out = append(out, s.Name)
	}
	return out
}

// exemplarTraceIDs gathers the trace ids on the exemplars of a histogram.
func exemplarTraceIDs(t *testing.T, api *testAPI, name string) []string {
	t.Helper()
	families, err := api.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, b := range m.GetHistogram().GetBucket() {
				ids = append(ids, exemplarTraceID(b.GetExemplar()))
			}
		}
	}
	return ids
}

func exemplarTraceID(e *dto.Exemplar) string {
	for _, l := range e.GetLabel() {
		if l.GetName() == "trace_id" {
			return l.GetValue()
		}
	}
	return ""
}

func TestResumesAreCountedByResult(t *testing.T) {
	t.Parallel()
	api, _, _ := tracedAPI(t)
	token := api.mustRegister("alice")
	room := api.mustCreateRoom("lobby")
	c := api.mustDial(token)
	c.send(map[string]any{"type": "join", "room": room, "since": 0})
	c.expect("joined")
	c.send(map[string]any{"type": "join", "room": "no-such-room", "since": 3})
	c.expect("error")
	c.mustJoin(api.mustCreateRoom("other")) // no since: not a resume
	if got := api.metric("parley_ws_resumes_total", "result", "ok"); got != 1 {
		t.Errorf("got %v resumes ok, want 1", got)
	}
	if got := api.metric("parley_ws_resumes_total", "result", "not_found"); got != 1 {
		t.Errorf("got %v resumes not_found, want 1", got)
	}
	c.closeNormally()
}

// Each recipient's delivery is timed, with the sender's trace as exemplar,
// and the exemplar is in the OpenMetrics output the scraper reads.
func TestDeliveriesAreTimedPerRecipientWithTheSendersTrace(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		cfg, _, _ := traced(t)
		api := startBubbledAPI(t, memstore.New(memstore.Options{}), cfg)
		room := api.mustCreateRoom("lobby")
		alice, bob := api.mustDial(api.mustRegister("alice")), api.mustDial(api.mustRegister("bob"))
		alice.mustJoin(room)
		bob.mustJoin(room)
		const traceID = "0af7651916cd43dd8448eb211c80319c"
		msg := sendMsg(room, "c1", "hi")
		msg["trace"] = "00-" + traceID + "-b7ad6b7169203331-01"
		alice.send(msg)
		alice.expect("ack")
		bob.expect("message")

		// Each writer times a delivery just after writing it.
		synctest.Wait()
		if got := api.metric("parley_delivery_latency_seconds_count"); got != 2 {
			t.Errorf("got %v deliveries timed, want 2", got)
		}
		if !slices.Contains(exemplarTraceIDs(t, api, "parley_delivery_latency_seconds"), traceID) {
			t.Errorf("the delivery latency has no exemplar with trace id %s", traceID)
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
		telemetry.MetricsHandler(api.reg).ServeHTTP(rec, req)
		found := false
		for line := range strings.SplitSeq(rec.Body.String(), "\n") {
			if strings.HasPrefix(line, "parley_delivery_latency_seconds_bucket") && strings.Contains(line, `# {trace_id="`+traceID+`"}`) {
				found = true
			}
		}
		if !found {
			t.Errorf("the OpenMetrics output has no delivery bucket with exemplar trace_id=%s", traceID)
		}

		// An oversized body is refused as too large, and counted so.
		alice.send(sendMsg(room, "c2", strings.Repeat("x", 4001)))
		alice.expect("error")
		if got := api.metric("parley_sends_total", "transport", "ws", "outcome", "rejected", "reason", "too_large"); got != 1 {
			t.Errorf("got %v sends rejected as too_large, want 1", got)
		}
		alice.closeNormally()
		bob.closeNormally()
	})
}

// The access log names the client a request came from, as the limits count
// it: behind a trusted proxy, the address the proxy forwarded for.
func TestTheAccessLogNamesTheClientAddress(t *testing.T) {
	t.Parallel()
	api := startAPI(t, memstore.New(memstore.Options{}), Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	req, err := http.NewRequest(http.MethodGet, api.base+"/no-such-page", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	resp, err := api.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if logs := api.logs.String(); !strings.Contains(logs, "client_addr=198.51.100.7") {
		t.Errorf("got log %q, want the request logged with client_addr=198.51.100.7", logs)
	}
}
