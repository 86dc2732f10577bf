package httpapi

import (
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/go-chi/chi/v5"
)

// messagesRoute is the route pattern of REST sends, which count in the ack
// SLI.
const messagesRoute = "/api/v1/rooms/{room}/messages"

// Handler returns every route of the public listener and its middleware.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(securityHeaders, s.observe, s.recoverPanics, s.limitConnsPerAddr())

	r.Get("/healthz", s.healthz())
	r.Get("/readyz", s.readyz())
	r.Get("/ws", s.upgrade())
	if s.cfg.WebUI != nil {
		r.Get("/", s.cfg.WebUI.ServeHTTP)
		r.Get("/assets/*", s.cfg.WebUI.ServeHTTP)
	}

	r.Route("/api/v1", func(r chi.Router) {
		lim := s.limits
		r.With(s.limit(limitSignup, lim.signupPerAddr, nil)).Post("/users", s.createUser())
		r.With(s.limit(limitLogin, lim.loginPerAddr, nil)).Post("/sessions", s.createSession())
		r.Group(func(r chi.Router) {
			r.Use(s.requireToken)
			r.Get("/rooms", s.listRooms())
			r.With(s.limit(limitRoomsCreate, lim.roomsPerAddr, lim.roomsPerUser)).Post("/rooms", s.createRoom())
			r.With(s.limit(limitHistory, lim.historyPerAddr, lim.historyPerUser)).Get("/rooms/{room}/messages", s.listMessages())
			r.Post(strings.TrimPrefix(messagesRoute, "/api/v1"), s.postMessage())
			r.Post("/ws-tickets", s.createTicket())

			// Accounts and sessions that end (account.go).
			r.Delete("/sessions/current", s.deleteSession())
			// Both take the password: they count as logins, per address and
			// in the account's backoff (see guardPassword).
			r.With(s.limit(limitLogin, lim.loginPerAddr, nil)).Put("/users/me/password", s.changePassword())
			r.With(s.limit(limitLogin, lim.loginPerAddr, nil)).Delete("/users/me", s.deleteAccount())
		})
	})

	r.NotFound(s.notFound("no such endpoint"))
	r.MethodNotAllowed(s.methodNotAllowed)
	return r
}

// AdminHandler returns every route of the admin listener and its
// middleware. The listener is never routed through the public ingress:
// /metrics and pprof are for the scraper and people on the cluster's
// network, and /admin/* needs the admin token as well. Its GET routes take
// HEAD too. Requests are not counted or traced: scrapes would drown the
// API's own series.
func (s *Server) AdminHandler() http.Handler {
	r := chi.NewRouter()
	r.Use(s.requireAdminToken) // for /admin and below only

	if s.cfg.Metrics != nil {
		r.Get("/metrics", s.cfg.Metrics.ServeHTTP)
		r.Head("/metrics", s.cfg.Metrics.ServeHTTP)
	}

	r.Handle("/debug/pprof", http.RedirectHandler("/debug/pprof/", http.StatusMovedPermanently))
	r.HandleFunc("/debug/pprof/*", pprof.Index)
	r.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	r.HandleFunc("/debug/pprof/profile", pprof.Profile)
	r.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	r.HandleFunc("/debug/pprof/trace", pprof.Trace)

	if s.cfg.Faults == nil {
		r.Handle("/admin/faults", s.faultsOff())
		r.Handle("/admin/faults/*", s.faultsOff())
	} else {
		r.Get("/admin/faults", s.listFaults())
		r.Head("/admin/faults", s.listFaults())
		r.Delete("/admin/faults", s.clearFaults())
		r.Get("/admin/faults/{name}", s.getFault())
		r.Head("/admin/faults/{name}", s.getFault())
		r.Put("/admin/faults/{name}", s.setFault())
		r.Delete("/admin/faults/{name}", s.clearFault())
	}

	r.NotFound(s.adminNotFound())
	r.MethodNotAllowed(s.methodNotAllowed)
	return r
}
