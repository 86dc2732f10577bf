// Package httpserve runs the small HTTP servers of Parley's helper commands
// (the Slack stand-in, the heartbeat, the canary's metrics) the one way they
// all need: serve until the context ends, then shut down gracefully.
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

// Serve serves srv on ln until ctx ends, then shuts it down within
// shutdownGrace and returns what the shutdown returned. It returns early,
// with the error, if serving fails.
func Serve(ctx context.Context, ln net.Listener, srv *http.Server) error {
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
