package httpapi

import (
	"errors"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// messagesRoute is the route pattern of REST sends, which count in the ack
// SLI.
const messagesRoute = "/api/v1/rooms/{room}/messages"

// Handler returns every route of the public listener and its middleware.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(securityHeaders, s.observe, s.recoverPanics)

	r.Get("/healthz", s.healthz())
	r.Get("/readyz", s.readyz())
	r.Get("/ws", s.upgrade())
	if s.cfg.WebUI != nil {
		r.Get("/", s.cfg.WebUI.ServeHTTP)
		r.Get("/assets/*", s.cfg.WebUI.ServeHTTP)
	}

	r.Route("/api/v1", func(r chi.Router) {
		r.Post("/users", s.createUser())
		r.Post("/sessions", s.createSession())
		r.Group(func(r chi.Router) {
			r.Use(s.requireToken)
			r.Get("/rooms", s.listRooms())
			r.Post("/rooms", s.createRoom())
			r.Get("/rooms/{room}/messages", s.listMessages())
			r.Post(strings.TrimPrefix(messagesRoute, "/api/v1"), s.postMessage())
			r.Post("/ws-tickets", s.createTicket())
		})
	})

	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorEnvelope(codeNotFound, "no such endpoint"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, errorEnvelope(codeBadRequest, "method not allowed"))
	})
	return r
}

// contentSecurityPolicy lets a page of this server run only its own
// script and style, talk only to its own origin ('self' covers its
// WebSocket too), and be framed by no one. Nothing inline: an injected
// <script> or onerror= attribute would not run even if it reached the DOM.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// securityHeaders sets the browser security headers on every response,
// the API's included: a JSON error opened in a tab is a page too. HSTS is
// left to the TLS terminator (the Ingress), which knows the scheme.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		next.ServeHTTP(w, r)
	})
}

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
				writeJSON(w, http.StatusInternalServerError, errorEnvelope(codeInternal, genericMessage[codeInternal]))
			}
		}()
		next.ServeHTTP(w, r)
	})
}
