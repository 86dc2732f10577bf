package httpapi

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
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
