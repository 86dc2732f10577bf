package app

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley/telemetry"
)

// adminHandler serves the admin listener, which is never routed through the
// public ingress: /metrics and pprof for the scraper and people on the
// cluster's network, and /admin/* only with PARLEY_ADMIN_TOKEN. faults is
// the fault injector's handler, nil when PARLEY_FAULTS is off.
func adminHandler(reg *prometheus.Registry, token string, faults http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", telemetry.MetricsHandler(reg))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	if faults == nil {
		faults = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			adminError(w, http.StatusNotFound, "not_found", "fault injection is off: start the server with PARLEY_FAULTS=on")
		})
	}
	mux.Handle("/admin/faults", faults)
	mux.Handle("/admin/faults/", faults)
	mux.HandleFunc("/admin/", func(w http.ResponseWriter, _ *http.Request) {
		adminError(w, http.StatusNotFound, "not_found", "no such admin endpoint")
	})
	return requireAdminToken(token, mux)
}

// requireAdminToken guards /admin/*: without a configured token it refuses
// everyone, and otherwise wants it as a bearer token.
func requireAdminToken(token string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/admin/") && r.URL.Path != "/admin" {
			next.ServeHTTP(w, r)
			return
		}
		if token == "" {
			adminError(w, http.StatusForbidden, "forbidden", "admin endpoints are off: set PARLEY_ADMIN_TOKEN")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="parley-admin"`)
			adminError(w, http.StatusUnauthorized, "unauthorized", "admin endpoints need the admin bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func adminError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = code, msg
	_ = json.NewEncoder(w).Encode(body) // a failed write means the caller left
}
