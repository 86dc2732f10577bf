package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/go-chi/chi/v5/middleware"
)

// recoverPanics turns a handler's panic into a 500 for that request alone.
// WebSocket connections recover their own panics: after the upgrade no HTTP
// response can be written.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v)
				}
				s.metrics.panics.WithLabelValues("http").Inc()
				logPanic(s.log, r.Context(), "http "+r.Method+" "+r.URL.Path, v, debug.Stack())
				s.tel.Reporter.CapturePanic(r.Context(), v, map[string]string{"route": routeOf(r), "method": methodLabel(r.Method)})
				if r.Method == http.MethodPost && routeOf(r) == messagesRoute {
					s.recordRefusal("rest", codeInternal)
				}
				// A handler that panicked after writing its header has
				// answered already; a second header would only be logged
				// as superfluous.
				if ww, ok := w.(middleware.WrapResponseWriter); ok && ww.Status() != 0 {
					return
				}
				writeEnvelope(w, http.StatusInternalServerError, codeInternal, genericMessage[codeInternal])
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// logPanic records a recovered panic; the stack goes to the log, never to
// the client.
func logPanic(log *slog.Logger, ctx context.Context, where string, v any, stack []byte) {
	log.ErrorContext(ctx, "panic recovered", "where", where, "panic", fmt.Sprint(v), "stack", string(stack))
}
