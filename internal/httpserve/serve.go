// Package httpserve runs the small HTTP servers of Parley's helper commands
// (the Slack stand-in, the heartbeat, the canary's metrics) the one way they
// all need: with timeouts, until the context ends, then shut down
// gracefully.
package httpserve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// shutdownGrace bounds the graceful shutdown: requests in flight get this
// long to finish once ctx has ended.
const shutdownGrace = 5 * time.Second

// The timeouts a helper's listener gets unless its server sets its own.
// Their answers are small (a scrape, a webhook, a status page) and their
// clients are programs: these bound what one slow or idle client may hold
// without cutting any of them.
const (
	readHeaderTimeout = 10 * time.Second // the request line and headers
	readTimeout       = 30 * time.Second // the whole request, body included
	writeTimeout      = 30 * time.Second // from the end of the headers to the last byte of the answer
	idleTimeout       = 2 * time.Minute  // a keep-alive between requests: above a scraper's interval
)

// Serve serves srv on ln until ctx ends, then shuts it down within
// shutdownGrace and returns what the shutdown returned. It returns early,
// with the error, if serving fails. Each timeout srv leaves zero, which
// would let one client hold a connection for ever, is set first.
func Serve(ctx context.Context, ln net.Listener, srv *http.Server) error {
	withTimeouts(srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// withTimeouts sets every timeout srv leaves zero.
func withTimeouts(srv *http.Server) {
	for _, t := range []struct {
		field *time.Duration
		def   time.Duration
	}{
		{&srv.ReadHeaderTimeout, readHeaderTimeout},
		{&srv.ReadTimeout, readTimeout},
		{&srv.WriteTimeout, writeTimeout},
		{&srv.IdleTimeout, idleTimeout},
	} {
		if *t.field <= 0 {
			*t.field = t.def
		}
	}
}
