package app

import (
	"context"
	"fmt"
	"time"
)

// shutdown stops the server in the one order that loses nothing:
//
//  1. Stop taking sockets and close them, each once the frame in hand is
//     answered and its acks are flushed.
//  2. Let REST requests finish, and stop both listeners.
//  3. Now that nothing can write any more, close each part before what it
//     uses: the injector (it ends injected delays the bus may be waiting
//     in), the bus (it hands the hub events), the hub, the store.
//  4. Flush telemetry last, so that the shutdown's own spans and error
//     reports go too.
//
// Every step is bounded: the first two by PARLEY_DRAIN_TIMEOUT, the last by
// telemetryFlushTimeout, and the parts close at once since nothing is using
// them. Steps whose part was never built are skipped, so shutdown also ends
// a server that failed to build or start.
func (s *server) shutdown(ctx context.Context) {
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.DrainTimeout)
	defer cancel()

	s.drainSockets(drainCtx)
	s.stopListening(drainCtx)
	s.closeParts()
	s.log.Info("stopped")
	s.flushTelemetry(ctx)
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

// stopListening lets requests in flight finish, within ctx, then waits
// for both Serve goroutines to return.
func (s *server) stopListening(ctx context.Context) {
	if s.public != nil {
		if err := s.public.Shutdown(ctx); err != nil {
			s.log.Warn("public listener did not shut down in time", "err", err)
		}
		s.public = nil
	}
	if s.admin != nil {
		if err := s.admin.Shutdown(ctx); err != nil {
			s.log.Warn("admin listener did not shut down in time", "err", err)
		}
		s.admin = nil
	}
	s.serving.Wait()
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
