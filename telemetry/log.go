package telemetry

import (
	"context"
	"io"
	"log/slog"
	"slices"

	"go.opentelemetry.io/otel/trace"
)

// NewLogger returns a JSON logger writing to w at the given level. Records
// logged with a context that carries a valid span get top-level trace_id and
// span_id keys, so a log line leads to its trace and back.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(newTraceHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})))
}

// traceHandler wraps a handler to add the span ids of the record's context.
//
// The ids must stay top-level even under WithGroup, or log queries would have
// to know every group a logger might open. Appending them to the record would
// put them inside the open groups, so a grouped handler instead rebuilds its
// chain on top of the ids: root.WithAttrs(ids) followed by every WithAttrs and
// WithGroup call it has seen. That costs a few allocations per record, paid
// only by grouped loggers logging inside a span.
type traceHandler struct {
	root    slog.Handler // the wrapped handler before any WithAttrs/WithGroup
	inner   slog.Handler // root with ops applied
	ops     []handlerOp
	grouped bool
}

// handlerOp is one WithAttrs (attrs) or WithGroup (group) call.
type handlerOp struct {
	group string
	attrs []slog.Attr
}

func newTraceHandler(h slog.Handler) *traceHandler {
	return &traceHandler{root: h, inner: h}
}

func (h *traceHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *traceHandler) Handle(ctx context.Context, r slog.Record) error {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return h.inner.Handle(ctx, r)
	}
	ids := []slog.Attr{
		slog.String("trace_id", sc.TraceID().String()),
		slog.String("span_id", sc.SpanID().String()),
	}
	if !h.grouped {
		// Clone so that appending cannot write into an array the caller's
		// copy of the record shares.
		r = r.Clone()
		r.AddAttrs(ids...)
		return h.inner.Handle(ctx, r)
	}
	withIDs := h.root.WithAttrs(ids)
	for _, op := range h.ops {
		if op.group != "" {
			withIDs = withIDs.WithGroup(op.group)
		} else {
			withIDs = withIDs.WithAttrs(op.attrs)
		}
	}
	return withIDs.Handle(ctx, r)
}

func (h *traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return &traceHandler{
		root:    h.root,
		inner:   h.inner.WithAttrs(attrs),
		ops:     append(slices.Clip(h.ops), handlerOp{attrs: slices.Clone(attrs)}),
		grouped: h.grouped,
	}
}

func (h *traceHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &traceHandler{
		root:    h.root,
		inner:   h.inner.WithGroup(name),
		ops:     append(slices.Clip(h.ops), handlerOp{group: name}),
		grouped: true,
	}
}
