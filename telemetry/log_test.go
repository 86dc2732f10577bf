package telemetry_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/parleychat/parley/telemetry"
)

func TestLogsCarrySpanIDsAtTopLevel(t *testing.T) {
	t.Parallel()
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)

	tests := []struct {
		name   string
		derive func(*slog.Logger) *slog.Logger
		check  func(t *testing.T, rec map[string]any)
	}{
		{"plain", func(l *slog.Logger) *slog.Logger { return l }, func(t *testing.T, rec map[string]any) {
			if rec["k"] != "v" {
				t.Errorf("got k=%v, want v", rec["k"])
			}
		}},
		{"with attrs", func(l *slog.Logger) *slog.Logger { return l.With("room", "general") }, func(t *testing.T, rec map[string]any) {
			if rec["room"] != "general" || rec["k"] != "v" {
				t.Errorf("got room=%v k=%v, want general v", rec["room"], rec["k"])
			}
		}},
		{"with group", func(l *slog.Logger) *slog.Logger {
			return l.With("room", "general").WithGroup("req").With("method", "GET")
		}, func(t *testing.T, rec map[string]any) {
			req, _ := rec["req"].(map[string]any)
			if rec["room"] != "general" || req["method"] != "GET" || req["k"] != "v" {
				t.Errorf("got %v, want room at top level and method, k inside req", rec)
			}
			if _, ok := req["trace_id"]; ok {
				t.Errorf("got trace_id inside the group: %v", rec)
			}
		}},
		{"nested groups", func(l *slog.Logger) *slog.Logger { return l.WithGroup("a").WithGroup("b") }, func(t *testing.T, rec map[string]any) {
			a, _ := rec["a"].(map[string]any)
			b, _ := a["b"].(map[string]any)
			if b["k"] != "v" {
				t.Errorf("got %v, want k inside a.b", rec)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := tt.derive(telemetry.NewLogger(&buf, slog.LevelInfo))
			log.InfoContext(ctx, "hello", "k", "v")
			log.InfoContext(context.Background(), "no span", "k", "v")

			recs := logLines(t, &buf)
			if len(recs) != 2 {
				t.Fatalf("got %d lines, want 2", len(recs))
			}
			if recs[0]["trace_id"] != sc.TraceID().String() || recs[0]["span_id"] != sc.SpanID().String() {
				t.Errorf("got trace_id=%v span_id=%v, want %s %s", recs[0]["trace_id"], recs[0]["span_id"], sc.TraceID(), sc.SpanID())
			}
			if _, ok := recs[1]["trace_id"]; ok {
				t.Errorf("got trace_id without a span: %v", recs[1])
			}
			for _, rec := range recs {
				tt.check(t, rec)
			}
		})
	}
}
