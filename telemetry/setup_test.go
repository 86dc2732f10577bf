package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/parleychat/parley/telemetry"
)

// TestMain fails the package if a test leaves a goroutine behind: Shutdown
// must stop everything Setup started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// env returns a Getenv reading the given name/value pairs.
func env(pairs ...string) func(string) string {
	m := make(map[string]string)
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return func(name string) string { return m[name] }
}

// mustSetup runs Setup and shuts the result down when the test ends.
func mustSetup(t *testing.T, cfg telemetry.Config) *telemetry.Telemetry {
	t.Helper()
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	if cfg.Getenv == nil {
		cfg.Getenv = env()
	}
	tel, err := telemetry.Setup(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(ctx)
	})
	return tel
}

// logLines decodes one JSON object per line.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for line := range strings.Lines(buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("got log line %q, want JSON: %v", line, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

func TestSpansReachTheExporterAndTheirIDsReachTheLogs(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	var logs bytes.Buffer
	tel := mustSetup(t, telemetry.Config{Stdout: &logs, SpanExporter: exp})

	ctx, span := tel.Tracer.Tracer("test").Start(context.Background(), "send message")
	tel.Logger.InfoContext(ctx, "inside")
	span.End()
	tel.Logger.InfoContext(context.Background(), "outside")

	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Name != "send message" {
		t.Fatalf("got spans %v, want the one ended span", spans)
	}
	sc := span.SpanContext()
	if got := spans[0].SpanContext.TraceID(); got != sc.TraceID() {
		t.Errorf("got exported trace id %s, want %s", got, sc.TraceID())
	}

	recs := logLines(t, &logs)
	if len(recs) != 2 {
		t.Fatalf("got %d log lines, want 2", len(recs))
	}
	if recs[0]["trace_id"] != sc.TraceID().String() || recs[0]["span_id"] != sc.SpanID().String() {
		t.Errorf("got trace_id %v span_id %v, want %s %s", recs[0]["trace_id"], recs[0]["span_id"], sc.TraceID(), sc.SpanID())
	}
	for _, key := range []string{"trace_id", "span_id"} {
		if v, ok := recs[1][key]; ok {
			t.Errorf("got %s=%v on a line logged without a span, want none", key, v)
		}
	}
}

func TestResourceNamesTheService(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		getenv      func(string) string
		wantService string
		wantAttr    attribute.KeyValue
	}{
		{"config by default", env(), "parley", semconv.ServiceVersion("1.2.3")},
		{"OTEL_SERVICE_NAME overrides config", env("OTEL_SERVICE_NAME", "parley-canary"), "parley-canary", semconv.ServiceVersion("1.2.3")},
		{
			"OTEL_SERVICE_NAME overrides OTEL_RESOURCE_ATTRIBUTES",
			env("OTEL_SERVICE_NAME", "a", "OTEL_RESOURCE_ATTRIBUTES", "service.name=b"),
			"a", semconv.ServiceVersion("1.2.3"),
		},
		{
			"OTEL_RESOURCE_ATTRIBUTES adds decoded attributes",
			env("OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=chat-0, team=chat%20core"),
			"parley", attribute.String("team", "chat core"),
		},
		{"environment from config", env(), "parley", semconv.DeploymentEnvironmentNameKey.String("staging")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tel := mustSetup(t, telemetry.Config{
				Version: "1.2.3", Environment: "staging", Getenv: tt.getenv, SpanExporter: exp,
			})
			_, span := tel.Tracer.Tracer("test").Start(context.Background(), "op")
			span.End()
			spans := exp.GetSpans()
			if len(spans) != 1 {
				t.Fatalf("got %d spans, want 1", len(spans))
			}
			set := spans[0].Resource.Set()
			if got, _ := set.Value(semconv.ServiceNameKey); got.AsString() != tt.wantService {
				t.Errorf("got service.name %q, want %q", got.AsString(), tt.wantService)
			}
			if got, _ := set.Value(tt.wantAttr.Key); got != tt.wantAttr.Value {
				t.Errorf("got %s=%q, want %q", tt.wantAttr.Key, got.String(), tt.wantAttr.Value.String())
			}
		})
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		getenv   func(string) string
		wantName string
	}{
		{"unknown sampler", env("OTEL_TRACES_SAMPLER", "sometimes"), "OTEL_TRACES_SAMPLER"},
		{"ratio above one", env("OTEL_TRACES_SAMPLER_ARG", "1.5"), "OTEL_TRACES_SAMPLER_ARG"},
		{"negative ratio", env("OTEL_TRACES_SAMPLER", "traceidratio", "OTEL_TRACES_SAMPLER_ARG", "-0.1"), "OTEL_TRACES_SAMPLER_ARG"},
		{"ratio not a number", env("OTEL_TRACES_SAMPLER_ARG", "half"), "OTEL_TRACES_SAMPLER_ARG"},
		{"ratio NaN", env("OTEL_TRACES_SAMPLER_ARG", "NaN"), "OTEL_TRACES_SAMPLER_ARG"},
		{"unknown exporter", env("OTEL_TRACES_EXPORTER", "zipkin"), "OTEL_TRACES_EXPORTER"},
		{"unknown protocol", env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/xml"), "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"unknown traces protocol", env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "udp"), "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		{"endpoint without scheme", env("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"), "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{"traces endpoint not a URL", env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://[::1"), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{"resource attribute without value", env("OTEL_RESOURCE_ATTRIBUTES", "team"), "OTEL_RESOURCE_ATTRIBUTES"},
		{"DSN without project", env("SENTRY_DSN", "https://secretkey@sentry.example.com"), "SENTRY_DSN"},
		{"DSN without key", env("SENTRY_DSN", "https://sentry.example.com/1"), "SENTRY_DSN"},
		{"DSN not a URL", env("SENTRY_DSN", "https://secretkey@sentry example.com:x/1"), "SENTRY_DSN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel, err := telemetry.Setup(context.Background(), telemetry.Config{Stdout: io.Discard, Getenv: tt.getenv})
			if err == nil {
				_ = tel.Shutdown(context.Background())
				t.Fatalf("got no error, want one naming %s", tt.wantName)
			}
			if !strings.Contains(err.Error(), tt.wantName) {
				t.Errorf("got %q, want it to name %s", err, tt.wantName)
			}
			if strings.Contains(err.Error(), "secretkey") {
				t.Errorf("got %q, want the DSN's key left out", err)
			}
		})
	}
}

func TestConfigErrorsAreReportedTogether(t *testing.T) {
	t.Parallel()
	_, err := telemetry.Setup(context.Background(), telemetry.Config{
		Stdout: io.Discard,
		Getenv: env("OTEL_TRACES_SAMPLER", "sometimes", "SENTRY_DSN", "nope"),
	})
	for _, name := range []string{"OTEL_TRACES_SAMPLER", "SENTRY_DSN"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("got %v, want an error naming %s", err, name)
		}
	}
}

func TestTracingModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		getenv      func(string) string
		wantValid   bool
		wantSampled bool
	}{
		{"exporter none is a no-op", env("OTEL_TRACES_EXPORTER", "none", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1"), false, false},
		{"no endpoint still makes real ids", env(), true, true},
		{"no endpoint follows the sampler", env("OTEL_TRACES_SAMPLER", "always_off"), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel := mustSetup(t, telemetry.Config{Getenv: tt.getenv})
			_, span := tel.Tracer.Tracer("test").Start(context.Background(), "op")
			span.End()
			sc := span.SpanContext()
			if sc.IsValid() != tt.wantValid || sc.IsSampled() != tt.wantSampled {
				t.Errorf("got valid=%t sampled=%t, want valid=%t sampled=%t", sc.IsValid(), sc.IsSampled(), tt.wantValid, tt.wantSampled)
			}
		})
	}
}

func TestSamplers(t *testing.T) {
	t.Parallel()
	const (
		sampledParent   = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		unsampledParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	)
	tests := []struct {
		name        string
		getenv      func(string) string
		traceparent string
		wantSampled bool
	}{
		{"default samples roots", env(), "", true},
		{"parent-based ratio 0 drops roots", env("OTEL_TRACES_SAMPLER_ARG", "0"), "", false},
		{"parent-based ratio 0 follows a sampled parent", env("OTEL_TRACES_SAMPLER_ARG", "0"), sampledParent, true},
		{"parent-based ratio 1 follows an unsampled parent", env("OTEL_TRACES_SAMPLER_ARG", "1"), unsampledParent, false},
		{"traceidratio 0 ignores a sampled parent", env("OTEL_TRACES_SAMPLER", "traceidratio", "OTEL_TRACES_SAMPLER_ARG", "0"), sampledParent, false},
		{"always_on ignores an unsampled parent", env("OTEL_TRACES_SAMPLER", "always_on"), unsampledParent, true},
		{"always_off drops roots", env("OTEL_TRACES_SAMPLER", "always_off"), "", false},
		{"parentbased_always_off follows a sampled parent", env("OTEL_TRACES_SAMPLER", "parentbased_always_off"), sampledParent, true},
		{"parentbased_always_on samples roots", env("OTEL_TRACES_SAMPLER", "parentbased_always_on"), "", true},
		{"sampler arg ignored where unused", env("OTEL_TRACES_SAMPLER", "always_on", "OTEL_TRACES_SAMPLER_ARG", "x"), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tel := mustSetup(t, telemetry.Config{Getenv: tt.getenv, SpanExporter: exp})
			ctx := context.Background()
			if tt.traceparent != "" {
				ctx = tel.Propagator.Extract(ctx, propagation.MapCarrier{"traceparent": tt.traceparent})
			}
			_, span := tel.Tracer.Tracer("test").Start(ctx, "op")
			span.End()

			if got := span.SpanContext().IsSampled(); got != tt.wantSampled {
				t.Errorf("got sampled=%t, want %t", got, tt.wantSampled)
			}
			if got, want := len(exp.GetSpans()), map[bool]int{true: 1}[tt.wantSampled]; got != want {
				t.Errorf("got %d exported spans, want %d", got, want)
			}
			if tt.traceparent != "" {
				parent := trace.SpanContextFromContext(ctx)
				if got := span.SpanContext().TraceID(); got != parent.TraceID() {
					t.Errorf("got trace id %s, want the remote parent's %s", got, parent.TraceID())
				}
			}
		})
	}
}

// collector records the URL paths and span counts an OTLP receiver gets.
type collector struct {
	mu    sync.Mutex
	paths []string
	spans int
}

func (c *collector) record(path string, req *coltracepb.ExportTraceServiceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paths = append(c.paths, path)
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			c.spans += len(ss.GetSpans())
		}
	}
}

func (c *collector) got() ([]string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.paths...), c.spans
}

// startHTTPCollector serves OTLP/HTTP (protobuf) on a local port.
func startHTTPCollector(t *testing.T) (*collector, string) {
	t.Helper()
	c := &collector{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.record(r.URL.Path, &req)
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return c, srv.URL
}

type grpcCollector struct {
	coltracepb.UnimplementedTraceServiceServer
	c *collector
}

func (g grpcCollector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	g.c.record("grpc", req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// startGRPCCollector serves OTLP/gRPC on a local port.
func startGRPCCollector(t *testing.T) (*collector, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, grpcCollector{c: c})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return c, "http://" + lis.Addr().String()
}

func TestSpansAreExportedOverOTLP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		start    func(*testing.T) (*collector, string)
		getenv   func(base string) func(string) string
		wantPath string
	}{
		{
			"gRPC by default",
			startGRPCCollector,
			func(base string) func(string) string { return env("OTEL_EXPORTER_OTLP_ENDPOINT", base) },
			"grpc",
		},
		{
			"HTTP appends the signal path to the generic endpoint",
			startHTTPCollector,
			func(base string) func(string) string {
				return env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT", base+"/otlp")
			},
			"/otlp/v1/traces",
		},
		{
			"HTTP uses the traces endpoint as is",
			startHTTPCollector,
			func(base string) func(string) string {
				return env(
					"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf",
					"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc",
					"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1",
					"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", base+"/custom/spans",
				)
			},
			"/custom/spans",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, base := tt.start(t)
			tel, err := telemetry.Setup(context.Background(), telemetry.Config{Stdout: io.Discard, Getenv: tt.getenv(base)})
			if err != nil {
				t.Fatal(err)
			}
			_, span := tel.Tracer.Tracer("test").Start(context.Background(), "op")
			span.End()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tel.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			paths, spans := c.got()
			if len(paths) != 1 || paths[0] != tt.wantPath || spans != 1 {
				t.Errorf("got %d spans at %v, want 1 span at %s", spans, paths, tt.wantPath)
			}
		})
	}
}

func TestShutdownIsIdempotent(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{
		Stdout:       io.Discard,
		Getenv:       env("SENTRY_DSN", "http://public@"+srv.Listener.Addr().String()+"/1"),
		SpanExporter: tracetest.NewInMemoryExporter(),
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := tel.Shutdown(ctx); err != nil {
			t.Errorf("call %d: got %v, want nil", i+1, err)
		}
		cancel()
	}
	// Reporting after shutdown is a no-op, not a panic.
	tel.Sentry.Capture(context.Background(), io.EOF, nil)
}

func TestSetupRefusesNilStdout(t *testing.T) {
	t.Parallel()
	if _, err := telemetry.Setup(context.Background(), telemetry.Config{}); err == nil {
		t.Fatal("got no error, want one for the nil Stdout")
	}
}
