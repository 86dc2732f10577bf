package systemtest

import (
	"bufio"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/parleychat/parley/internal/testenv"
)

// collector stands in for an OpenTelemetry collector (none runs here): it
// takes OTLP/HTTP exports, decodes them with the protocol's own types, and
// keeps the spans.
type collector struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
}

func startCollector(t *testing.T) *collector { return startBenchCollector(t) }

// startBenchCollector is startCollector for tests and benchmarks alike.
func startBenchCollector(t testing.TB) *collector {
	t.Helper()
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		raw, err := io.ReadAll(body)
		var req coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(raw, &req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				c.spans = append(c.spans, ss.GetSpans()...)
			}
		}
		c.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(c.Close)
	return c
}

// trace returns the spans of one trace, by name.
func (c *collector) trace(traceID string) map[string]*tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]*tracepb.Span)
	for _, s := range c.spans {
		if hex.EncodeToString(s.GetTraceId()) == traceID {
			out[s.GetName()] = s
		}
	}
	return out
}

// count is how many spans of a trace have the name.
func (c *collector) count(traceID, name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.spans {
		if hex.EncodeToString(s.GetTraceId()) == traceID && s.GetName() == name {
			n++
		}
	}
	return n
}

func spanID(s *tracepb.Span) string { return hex.EncodeToString(s.GetSpanId()) }

// A message sent with the load generator's traceparent on replica A and
// received on replica B makes one trace: the client's span, chat.send with
// its store.append on A, chat.publish, and chat.deliver on B, a child of the
// publish linked to it. The frame's log record on A carries the trace id.
func TestOneMessageMakesOneTraceAcrossReplicas(t *testing.T) {
	t.Parallel()
	col := startCollector(t)
	env := envFor(t, "postgres")
	env["REDIS_URL"] = testenv.RedisURL(t)
	env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = col.URL + "/v1/traces"
	env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "http/protobuf"
	env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
	env["OTEL_TRACES_SAMPLER_ARG"] = "0" // only the client's sampled trace is kept
	env["LOG_LEVEL"] = "debug"
	a, b := startServer(t, env), startServer(t, env)
	alice, bob := a.mustSignUp("alice"), b.mustSignUp("bob")
	room := a.mustCreateRoom(alice.Token, "lobby")
	onB := b.dial(bob.Token)
	onB.join(room.ID, nil)
	carolOnB := b.dial(b.mustSignUp("carol").Token) // a second recipient: still one delivery span
	carolOnB.join(room.ID, nil)
	testenv.Eventually(t, "replica B to subscribe", func() bool { return b.metric("parley_bus_subscribed_channels") >= 1 })
	onA := a.dial(alice.Token)
	onA.join(room.ID, nil)

	const traceID, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	onA.send(map[string]any{"type": "send", "room": room.ID, "client_id": "c1", "body": "hello",
		"trace": "00-" + traceID + "-" + clientSpan + "-01"})
	onA.expect("message") // the sender's own copy comes before its ack
	onA.expect("ack")
	for _, c := range []*wsClient{onB, carolOnB} {
		if f := c.expect("message"); f.ClientID != "c1" {
			t.Fatalf("got %+v on B, want the message", f)
		}
	}
	// Stopping the servers flushes their spans.
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}

	spans := col.trace(traceID)
	send, publish, deliver := spans["chat.send"], spans["chat.publish"], spans["chat.deliver"]
	if send == nil || publish == nil || deliver == nil {
		t.Fatalf("trace %s has spans %v, want chat.send, chat.publish and chat.deliver", traceID, keys(spans))
	}
	if got := hex.EncodeToString(send.GetParentSpanId()); got != clientSpan {
		t.Errorf("chat.send's parent is %s, want the client's span %s", got, clientSpan)
	}
	if got := hex.EncodeToString(publish.GetParentSpanId()); got != spanID(send) {
		t.Errorf("chat.publish's parent is %s, want chat.send %s", got, spanID(send))
	}
	if got := hex.EncodeToString(deliver.GetParentSpanId()); got != spanID(publish) {
		t.Errorf("chat.deliver's parent is %s, want chat.publish %s", got, spanID(publish))
	}
	if n := col.count(traceID, "chat.deliver"); n != 1 {
		t.Errorf("got %d chat.deliver spans for two recipients on B, want 1 per fan-out", n)
	}
	if links := deliver.GetLinks(); len(links) != 1 || hex.EncodeToString(links[0].GetSpanId()) != spanID(publish) {
		t.Errorf("chat.deliver has links %v, want one to chat.publish", links)
	}
	if app := spans["store.append"]; app == nil || hex.EncodeToString(app.GetParentSpanId()) != spanID(send) {
		t.Errorf("no store.append span under chat.send among %v", keys(spans))
	}

	if !logHas(a.logs.String(), "frame handled", traceID) {
		t.Errorf("replica A logged no frame record with trace id %s", traceID)
	}
}

func keys(m map[string]*tracepb.Span) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// logHas reports whether the JSON log holds a record msg with trace id.
func logHas(log, msg, traceID string) bool {
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			Msg     string `json:"msg"`
			TraceID string `json:"trace_id"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == msg && rec.TraceID == traceID {
			return true
		}
	}
	return false
}
