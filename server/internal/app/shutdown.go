package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// shutdown stops the server in the one order that loses nothing:
//
//  1. Stop checking the sockets' sessions, then stop taking sockets and
//     close them, each once the frame in hand is answered and its acks are
//     flushed.
//  2. Let REST requests finish, and stop both listeners.
//  3. Now that nothing can write any more, close each part before what it
//     uses: the injector (it ends injected delays the bus may be waiting
//     in), the bus (it hands the hub events), the hub, the store.
//  4. Flush telemetry last, so that the shutdown's own spans and error
//     reports go too.
//
// Every step is bounded: the first two by PARLEY_DRAIN_TIMEOUT (requests
// still running then are cut off, which cancels their store calls), the
// parts by their Close, which ends their own goroutines once nothing calls
// them, and telemetry by telemetryFlushTimeout. Steps whose part was never
// built are skipped, so shutdown also ends a server that failed to build or
// start, and a second shutdown does nothing.
func (s *server) shutdown(ctx context.Context) {
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.DrainTimeout)
	defer cancel()

	s.stopSessionChecks()
	s.drainSockets(drainCtx)
	s.stopListening(drainCtx)
	s.closeParts()
	s.log.Info("stopped")
	s.flushTelemetry(ctx)
}

// stopSessionChecks ends the session checks and waits for the one in hand,
// which a store call bounds (httpapi's sessionCheckTimeout).
func (s *server) stopSessionChecks() {
	if s.stopChecks == nil {
		return
	}
	s.stopChecks()
	s.checking.Wait()
	s.stopChecks = nil
}

func (s *server) drainSockets(ctx context.Context) {
	if s.api == nil {
		return
	}
	if err := s.api.Drain(ctx); err != nil {
		s.log.Warn("drain timed out; closed remaining sockets", "err", err)
	}
	s.api = nil
}

// stopListening lets requests in flight finish within ctx, cuts off those
// that do not, and waits for both Serve goroutines to return.
func (s *server) stopListening(ctx context.Context) {
	if s.public != nil {
		stopListener(ctx, s.log, "public", s.public)
		s.public = nil
	}
	if s.admin != nil {
		stopListener(ctx, s.log, "admin", s.admin)
		s.admin = nil
	}
	s.serving.Wait()
}

func stopListener(ctx context.Context, log *slog.Logger, name string, srv *http.Server) {
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn(name+" listener did not shut down in time", "err", err)
		// Closing the connections cancels the contexts of the requests
		// still running, so that they let go of the store before it closes.
		srv.Close()
	}
}

// closeParts closes each part before the part it uses.
func (s *server) closeParts() {
	if s.inj != nil {
		s.inj.Close()
		s.inj = nil
	}
	if s.bus != nil {
		s.closeBus()
		s.bus = nil
	}
	if s.hub != nil {
		s.hub.Close()
		s.hub = nil
	}
	if s.store != nil {
		s.closeStore()
		s.store = nil
	}
}

// telemetryFlushTimeout bounds sending the last spans and error reports at
// exit, so that a dead collector or DSN cannot hold the process.
const telemetryFlushTimeout = 5 * time.Second

func (s *server) flushTelemetry(ctx context.Context) {
	if s.tel == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), telemetryFlushTimeout)
	defer cancel()
	if err := s.tel.Shutdown(ctx); err != nil {
		fmt.Fprintln(s.stderr, "parley: flushing telemetry:", err)
	}
	s.tel = nil
}
