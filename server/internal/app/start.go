package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
)

// start subscribes the bus, opens both listeners and starts the checks that
// close the sockets of sessions ended on other replicas. Both addresses are
// bound before either serves, so a port in use leaves nothing half open.
func (s *server) start() error {
	if s.bus != nil {
		s.bus.Start(s.busReceiver)
	}
	public, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen public on %s: %w", s.cfg.Addr, err)
	}
	admin, err := net.Listen("tcp", s.cfg.AdminAddr)
	if err != nil {
		public.Close()
		return fmt.Errorf("listen admin on %s: %w", s.cfg.AdminAddr, err)
	}
	s.serve("public", s.public, public)
	s.serve("admin", s.admin, admin)
	checks, stop := context.WithCancel(context.Background())
	s.stopChecks = stop
	api := s.api
	s.checking.Go(func() { api.CheckSessions(checks) })
	return nil
}

// serve serves srv on ln until shutdown stops it.
func (s *server) serve(name string, srv *http.Server, ln net.Listener) {
	s.log.Info("listening", "listener", name, "addr", ln.Addr().String())
	s.serving.Go(func() { s.failed <- srv.Serve(ln) })
}

// wait returns when ctx ends, or with the error of a listener that failed.
func (s *server) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		s.log.Info("draining", "timeout", s.cfg.DrainTimeout.String())
		return nil
	case err := <-s.failed:
		s.log.Error("listener failed; shutting down", "err", err)
		return err
	}
}
