package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/getsentry/sentry-go"
	"go.opentelemetry.io/otel/trace"
)

const (
	// sentryQueueSize bounds the events waiting for delivery. sentry-go's
	// HTTPTransport drops an event, without blocking, when its queue is full,
	// so a dead endpoint costs lost events, never a stalled caller.
	sentryQueueSize = 100
	// sentryTimeout bounds one delivery. Deliveries are sequential, so a
	// hanging endpoint holds the queue for this long per event.
	sentryTimeout = 5 * time.Second
)

// Reporter sends errors and panics to the Sentry-protocol endpoint named by
// SENTRY_DSN. Its methods return at once (delivery happens in the background)
// and do nothing on a nil *Reporter, which is what Setup returns when
// SENTRY_DSN is unset.
type Reporter struct {
	client *sentry.Client
	// stopDelivery aborts deliveries still in flight at shutdown, so that a
	// hanging endpoint cannot keep the transport's goroutine alive after it.
	stopDelivery context.CancelFunc
	closeIdle    func()
	once         sync.Once
	flushed      bool
}

// parseSentryDSN returns SENTRY_DSN, or an error naming it when it is not a
// DSN. The error leaves the value out: it holds the project's key.
func parseSentryDSN(getenv func(string) string) (string, error) {
	dsn := strings.TrimSpace(getenv("SENTRY_DSN"))
	if dsn == "" {
		return "", nil
	}
	// sentry's own parse error would quote the whole URL, key included.
	if _, err := url.Parse(dsn); err != nil {
		return "", errors.New("SENTRY_DSN: not a URL")
	}
	if _, err := sentry.NewDsn(dsn); err != nil {
		var perr *sentry.DsnParseError
		if errors.As(err, &perr) {
			return "", fmt.Errorf("SENTRY_DSN: %s (want scheme://key@host/project)", perr.Message)
		}
		return "", errors.New("SENTRY_DSN: not a Sentry DSN (want scheme://key@host/project)")
	}
	return dsn, nil
}

// newReporter returns nil when dsn is empty. Otherwise the Reporter owns its
// own sentry.Client: nothing goes through sentry-go's global hub.
func newReporter(dsn, release, environment string, transport sentry.Transport) (*Reporter, error) {
	if dsn == "" {
		return nil, nil
	}
	r := &Reporter{stopDelivery: func() {}, closeIdle: func() {}}
	opts := sentry.ClientOptions{
		Dsn:              dsn,
		Release:          release,
		Environment:      environment,
		AttachStacktrace: true,
		Transport:        transport,
	}
	if transport == nil {
		// The HTTPTransport is chosen explicitly, rather than sentry-go's
		// default, because its queue size and timeout can be set.
		stop, cancel := context.WithCancel(context.Background())
		base := &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: sentryTimeout}).DialContext,
			TLSHandshakeTimeout: sentryTimeout,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		}
		ht := sentry.NewHTTPTransport()
		ht.BufferSize = sentryQueueSize
		ht.Timeout = sentryTimeout
		opts.Transport = ht
		opts.HTTPTransport = abortOnStop{next: base, stop: stop}
		r.stopDelivery = cancel
		r.closeIdle = base.CloseIdleConnections
	}
	client, err := sentry.NewClient(opts)
	if err != nil {
		r.stopDelivery()
		return nil, fmt.Errorf("SENTRY_DSN: %w", err)
	}
	r.client = client
	return r, nil
}

// Capture reports err with tags, plus the trace_id of the span in ctx. It
// ignores a nil err.
func (r *Reporter) Capture(ctx context.Context, err error, tags map[string]string) {
	if r == nil || err == nil {
		return
	}
	r.send(ctx, r.client.EventFromException(err, sentry.LevelError), tags)
}

// CapturePanic reports a value recovered from a panic with tags, plus the
// trace_id of the span in ctx. Call it from the deferred function that
// recovered, so that the stack trace shows where the panic happened.
func (r *Reporter) CapturePanic(ctx context.Context, recovered any, tags map[string]string) {
	if r == nil || recovered == nil {
		return
	}
	var event *sentry.Event
	switch v := recovered.(type) {
	case error:
		event = r.client.EventFromException(v, sentry.LevelFatal)
	case string:
		event = r.client.EventFromMessage(v, sentry.LevelFatal)
	default:
		event = r.client.EventFromMessage(fmt.Sprintf("%#v", v), sentry.LevelFatal)
	}
	r.send(ctx, event, tags)
}

func (r *Reporter) send(ctx context.Context, event *sentry.Event, tags map[string]string) {
	for k, v := range tags {
		event.Tags[k] = v
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		traceID := sc.TraceID().String()
		event.Tags["trace_id"] = traceID
		event.Contexts["trace"] = sentry.Context{
			"trace_id": traceID,
			"span_id":  sc.SpanID().String(),
		}
	}
	r.client.CaptureEvent(event, &sentry.EventHint{Context: ctx}, nil)
}

// Flush waits until the queue has drained or ctx is done, and reports
// whether it drained. A drained queue means every event was attempted, not
// that the endpoint accepted it.
func (r *Reporter) Flush(ctx context.Context) bool {
	if r == nil {
		return true
	}
	return r.client.FlushWithContext(ctx)
}

// shutdown flushes, then stops the client and aborts what is still in
// flight. Only the first call does the work.
func (r *Reporter) shutdown(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.once.Do(func() {
		r.flushed = r.Flush(ctx)
		r.stopDelivery()
		r.client.Close()
		r.closeIdle()
	})
	if !r.flushed {
		return errors.New("flush Sentry events: queue not drained before the deadline; the rest were dropped")
	}
	return nil
}

// abortOnStop ties every request to stop as well as to its own context.
// sentry-go sends with context.Background, so without this a request to a
// hanging endpoint would only end at the client timeout.
type abortOnStop struct {
	next http.RoundTripper
	stop context.Context
}

func (a abortOnStop) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	unhook := context.AfterFunc(a.stop, cancel)
	release := func() {
		unhook()
		cancel()
	}
	resp, err := a.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		release()
		return nil, err
	}
	// The context must outlive RoundTrip until the body is read.
	resp.Body = &releaseOnClose{ReadCloser: resp.Body, release: release}
	return resp, nil
}

type releaseOnClose struct {
	io.ReadCloser
	release func()
}

func (b *releaseOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}
