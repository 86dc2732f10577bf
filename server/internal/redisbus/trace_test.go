package redisbus

import (
	"context"
	"github.com/parleychat/parley/internal/testenv"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/parleychat/parley/server/internal/chat"
)

// ctxRecorder keeps the context each message is received with.
type ctxRecorder struct {
	*recorder
	ctxs chan context.Context
}

func (r ctxRecorder) Receive(ctx context.Context, ev chat.Event) {
	r.ctxs <- ctx
	r.recorder.Receive(ctx, ev)
}

// A message published with a span on one replica is delivered on another
// in the same trace: chat.publish there, chat.deliver here, linked to it.
func TestAMessageCarriesItsTraceAcrossReplicas(t *testing.T) {
	t.Parallel()
	opts := redisOptions(t)
	prefix := randomPrefix()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	var lags []time.Duration
	// b's clock reads a fixed 250 ms after the message's timestamp, so
	// that its lag is known exactly.
	sentAt := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	const lag = 250 * time.Millisecond

	a, aRec := startBus(t, mustClient(t, opts), "a", Options{Prefix: prefix, Tracer: tp.Tracer("a")})
	b := New(mustClient(t, opts), "b", Options{Prefix: prefix, Tracer: tp.Tracer("b"), Logger: testLogger(t),
		Lag: func(d time.Duration) { lags = append(lags, d) },
		Now: func() time.Time { return sentAt.Add(lag) }})
	bRec := ctxRecorder{newRecorder(), make(chan context.Context, 10)}
	b.Start(bRec)
	t.Cleanup(b.Close)
	watchAndWait(t, a, aRec, "r")
	watchAndWait(t, b, bRec.recorder, "r")

	ctx, send := tp.Tracer("client").Start(context.Background(), "chat.send")
	msg := chat.Message{ID: "m1", Room: "r", Seq: 1, Body: "hi", TS: sentAt}
	a.Publish(ctx, chat.Event{Kind: chat.EventMessage, Room: "r", Message: msg})
	send.End()

	var got context.Context
	select {
	case got = <-bRec.ctxs:
	case <-time.After(waitTimeout):
		t.Fatal("the message did not arrive")
	}
	sc := trace.SpanContextFromContext(got)
	if sc.TraceID() != send.SpanContext().TraceID() {
		t.Fatalf("delivered in trace %s, want the sender's %s", sc.TraceID(), send.SpanContext().TraceID())
	}
	testenv.EventuallyWithin(t, waitTimeout, "both spans to end", func() bool { return len(spans.GetSpans()) >= 3 })
	var publish, deliver tracetest.SpanStub
	for _, s := range spans.GetSpans() {
		switch s.Name {
		case "chat.publish":
			publish = s
		case "chat.deliver":
			deliver = s
		}
	}
	if publish.Parent.SpanID() != send.SpanContext().SpanID() {
		t.Errorf("chat.publish's parent is %s, want the send span %s", publish.Parent.SpanID(), send.SpanContext().SpanID())
	}
	if deliver.Parent.SpanID() != publish.SpanContext.SpanID() {
		t.Errorf("chat.deliver's parent is %s, want chat.publish %s", deliver.Parent.SpanID(), publish.SpanContext.SpanID())
	}
	if len(deliver.Links) != 1 || deliver.Links[0].SpanContext.SpanID() != publish.SpanContext.SpanID() {
		t.Errorf("chat.deliver has links %v, want one to chat.publish", deliver.Links)
	}
	if deliver.SpanContext.SpanID() != sc.SpanID() {
		t.Error("the receiver's context is not the delivery span's")
	}
	if len(lags) != 1 || lags[0] != lag {
		t.Errorf("got lags %v, want one of %v", lags, lag)
	}
}
