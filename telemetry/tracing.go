package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

const (
	protocolGRPC         = "grpc"
	protocolHTTPProtobuf = "http/protobuf"
)

// traceSettings is what the OTEL_* variables decide.
type traceSettings struct {
	off      bool   // OTEL_TRACES_EXPORTER=none
	protocol string // protocolGRPC or protocolHTTPProtobuf
	endpoint string // the exporter's full URL; "" exports nothing
	sampler  sdktrace.Sampler

	serviceName string               // OTEL_SERVICE_NAME
	attrs       []attribute.KeyValue // OTEL_RESOURCE_ATTRIBUTES
}

// parseTraceSettings reads the OTEL_* variables through getenv and reports
// every bad one, by name.
func parseTraceSettings(getenv func(string) string) (traceSettings, error) {
	var (
		s    traceSettings
		errs []error
	)

	switch v := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); v {
	case "", "otlp":
	case "none":
		s.off = true
	default:
		errs = append(errs, fmt.Errorf("OTEL_TRACES_EXPORTER: %q is not supported (want otlp or none)", v))
	}

	name, v := firstSet(getenv, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	switch v {
	case "", protocolGRPC:
		s.protocol = protocolGRPC
	case protocolHTTPProtobuf:
		s.protocol = protocolHTTPProtobuf
	default:
		errs = append(errs, fmt.Errorf("%s: %q is not supported (want %s or %s)", name, v, protocolGRPC, protocolHTTPProtobuf))
	}

	endpoint, err := parseEndpoint(getenv, s.protocol)
	if err != nil {
		errs = append(errs, err)
	}
	s.endpoint = endpoint

	if s.sampler, err = parseSampler(getenv); err != nil {
		errs = append(errs, err)
	}

	s.serviceName = strings.TrimSpace(getenv("OTEL_SERVICE_NAME"))
	if s.attrs, err = parseResourceAttributes(getenv("OTEL_RESOURCE_ATTRIBUTES")); err != nil {
		errs = append(errs, err)
	}

	return s, errors.Join(errs...)
}

// firstSet returns the first of the named variables that is set, so a
// signal-specific variable overrides its generic fallback.
func firstSet(getenv func(string) string, names ...string) (name, value string) {
	for _, n := range names {
		if v := strings.TrimSpace(getenv(n)); v != "" {
			return n, v
		}
	}
	return names[len(names)-1], ""
}

// parseEndpoint returns the URL the exporter sends to. As the OTLP
// specification says, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as is, while
// the generic OTEL_EXPORTER_OTLP_ENDPOINT is a base URL to which OTLP/HTTP
// appends v1/traces (gRPC ignores the path). The scheme decides TLS.
func parseEndpoint(getenv func(string) string, protocol string) (string, error) {
	name, v := firstSet(getenv, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
	if v == "" {
		return "", nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s: want an http:// or https:// URL with a host, like http://collector:4317", name)
	}
	if name == "OTEL_EXPORTER_OTLP_ENDPOINT" && protocol == protocolHTTPProtobuf {
		u.Path = path.Join("/", u.Path, "v1/traces")
	}
	return u.String(), nil
}

func parseSampler(getenv func(string) string) (sdktrace.Sampler, error) {
	name := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER"))
	if name == "" {
		name = "parentbased_traceidratio"
	}
	ratio := func() (float64, error) {
		v := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
		if v == "" {
			return 1, nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f >= 0 && f <= 1) { // the negation also rejects NaN
			return 0, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG: %q is not a ratio between 0 and 1", v)
		}
		return f, nil
	}

	switch name {
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		r, err := ratio()
		return sdktrace.TraceIDRatioBased(r), err
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		r, err := ratio()
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), err
	default:
		return nil, fmt.Errorf("OTEL_TRACES_SAMPLER: %q is not supported (want always_on, always_off, traceidratio, "+
			"parentbased_always_on, parentbased_always_off or parentbased_traceidratio)", name)
	}
}

// parseResourceAttributes parses key=value pairs separated by commas, values
// percent-encoded, as the SDK specification defines OTEL_RESOURCE_ATTRIBUTES.
// Unlike the SDK, which drops what it cannot parse, it refuses a malformed
// value so that a typo is seen at start.
func parseResourceAttributes(v string) ([]attribute.KeyValue, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var attrs []attribute.KeyValue
	for pair := range strings.SplitSeq(v, ",") {
		k, val, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %q is not key=value", strings.TrimSpace(pair))
		}
		decoded, err := url.PathUnescape(strings.TrimSpace(val))
		if err != nil {
			return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: value of %q is not percent-encoded", k)
		}
		attrs = append(attrs, attribute.String(k, decoded))
	}
	return attrs, nil
}

// newTracerProvider builds the provider s describes and the function that
// flushes and stops it.
func newTracerProvider(ctx context.Context, s traceSettings, cfg Config) (trace.TracerProvider, func(context.Context) error, error) {
	if s.off && cfg.SpanExporter == nil {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}

	res, err := newResource(ctx, s, cfg)
	if err != nil {
		return nil, nil, err
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(s.sampler),
	}
	switch {
	case cfg.SpanExporter != nil:
		opts = append(opts, sdktrace.WithSyncer(cfg.SpanExporter))
	case s.endpoint != "":
		exp, err := newOTLPExporter(ctx, s)
		if err != nil {
			return nil, nil, err
		}
		// Batched so that a slow or absent collector costs dropped spans, never
		// request latency.
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return tp, tp.Shutdown, nil
}

func newOTLPExporter(ctx context.Context, s traceSettings) (sdktrace.SpanExporter, error) {
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch s.protocol {
	case protocolHTTPProtobuf:
		exp, err = otlptracehttp.New(ctx,
			otlptracehttp.WithEndpointURL(s.endpoint),
			otlptracehttp.WithEncoding(otlptracehttp.EncodingProtobuf))
	default:
		exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(s.endpoint))
	}
	if err != nil {
		return nil, fmt.Errorf("create OTLP %s trace exporter: %w", s.protocol, err)
	}
	return exp, nil
}

// newResource describes this process. Later sources win: built-in detectors,
// then cfg, then OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME, which is
// the precedence the SDK specification gives.
func newResource(ctx context.Context, s traceSettings, cfg Config) (*resource.Resource, error) {
	own := []attribute.KeyValue{
		semconv.ServiceName(cfg.Service),
		semconv.ServiceVersion(cfg.Version),
	}
	if cfg.Environment != "" {
		own = append(own, semconv.DeploymentEnvironmentNameKey.String(cfg.Environment))
	}
	opts := []resource.Option{
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessRuntimeName(),
		resource.WithProcessRuntimeVersion(),
		resource.WithAttributes(own...),
		resource.WithAttributes(s.attrs...),
	}
	if s.serviceName != "" {
		opts = append(opts, resource.WithAttributes(semconv.ServiceName(s.serviceName)))
	}
	res, err := resource.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("describe resource: %w", err)
	}
	return res, nil
}
