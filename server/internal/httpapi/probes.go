package httpapi

import (
	"context"
	"net/http"
	"time"
)

// healthz answers while the process lives.
func (s *Server) healthz() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// readyz answers 200 while the server can serve: not draining, and its store
// answers within a second.
func (s *Server) readyz() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.Draining() {
			s.metrics.ready.Set(0)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if err := s.chat.Ready(ctx); err != nil {
			s.metrics.ready.Set(0)
			s.log.WarnContext(r.Context(), "not ready: store unreachable", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "store unreachable"})
			return
		}
		s.metrics.ready.Set(1)
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}
