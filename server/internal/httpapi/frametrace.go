package httpapi

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// startFrame starts the span of a frame: chat.join, chat.send, ... Each frame
// starts a trace of its own, linked to the upgrade, unless a send names its
// client's span as the parent; a socket's frames in one trace would make a
// trace as long as the socket.
func (c *conn) startFrame(f clientFrame) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("parley.frame", f.Type)),
	}
	if c.upgrade.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: c.upgrade}))
	}
	ctx := c.ctx
	if f.Trace != "" {
		ctx = c.s.tel.Propagator.Extract(ctx, propagation.MapCarrier{"traceparent": f.Trace})
	}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		opts = append(opts, trace.WithNewRoot())
	}
	return c.s.tel.Tracer.Start(ctx, "chat."+f.Type, opts...)
}
