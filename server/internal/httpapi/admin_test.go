package httpapi

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// adminListener is the admin listener's handler, built with cfg and a
// /metrics that answers "metrics".
func adminListener(t *testing.T, cfg Config) http.Handler {
	t.Helper()
	cfg.Metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("metrics")) })
	return New(nil, nil, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), cfg).AdminHandler()
}

// serveAs makes a request with the bearer token given, if any.
func serveAs(t *testing.T, h http.Handler, method, path, token string) response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
}

func TestAdminRoutesWantTheAdminToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		configured string // the server's admin token
		method     string
		path       string
		token      string // the request's
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{"no token configured refuses everyone", "", "GET", "/admin/faults", adminToken, 403, "forbidden", "admin endpoints are off: set PARLEY_ADMIN_TOKEN"},
		{"a missing token is refused", adminToken, "GET", "/admin/faults", "", 401, "unauthorized", "admin endpoints need the admin bearer token"},
		{"a wrong token is refused", adminToken, "GET", "/admin/faults", adminToken + "x", 401, "unauthorized", "admin endpoints need the admin bearer token"},
		{"the token is checked before the method", adminToken, "POST", "/admin/faults", "", 401, "unauthorized", "admin bearer token"},
		{"the token is checked before the path", adminToken, "GET", "/admin/nothing-here", "", 401, "unauthorized", "admin bearer token"},
		{"/admin itself needs it", "", "GET", "/admin", "", 403, "forbidden", "admin endpoints are off"},
		{"faults off answers not found", adminToken, "GET", "/admin/faults", adminToken, 404, "not_found", "fault injection is off: start the server with PARLEY_FAULTS=on"},
		{"faults off answers not found below too", adminToken, "PUT", "/admin/faults/send_errors", adminToken, 404, "not_found", "fault injection is off"},
		{"an unknown admin path", adminToken, "GET", "/admin/nothing-here", adminToken, 404, "not_found", "no such admin endpoint"},
		{"/admin itself is no endpoint", adminToken, "GET", "/admin", adminToken, 404, "not_found", "no such admin endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := serveAs(t, adminListener(t, Config{AdminToken: tt.configured}), tt.method, tt.path, tt.token)
			if got.status != tt.wantStatus {
				t.Fatalf("got status %d (%s), want %d", got.status, got.body, tt.wantStatus)
			}
			e := mustDecode[errorJSON](t, got)
			if e.Error.Code != tt.wantCode || !strings.Contains(e.Error.Message, tt.wantMsg) {
				t.Errorf("got %s %q, want %s with a message containing %q", e.Error.Code, e.Error.Message, tt.wantCode, tt.wantMsg)
			}
			wantRealm := ""
			if tt.wantStatus == http.StatusUnauthorized {
				wantRealm = `Bearer realm="parley-admin"`
			}
			if got := got.header.Get("WWW-Authenticate"); got != wantRealm {
				t.Errorf("got WWW-Authenticate %q, want %q", got, wantRealm)
			}
		})
	}
}

func TestMetricsAndPprofNeedNoToken(t *testing.T) {
	t.Parallel()
	h := adminListener(t, Config{AdminToken: adminToken})
	tests := []struct {
		method, path string
		wantStatus   int
		wantBody     string
	}{
		{"GET", "/metrics", 200, "metrics"},
		{"HEAD", "/metrics", 200, "metrics"}, // a recorder keeps the body net/http would drop
		{"GET", "/debug/pprof/", 200, "Types of profiles available"},
		{"GET", "/debug/pprof/cmdline", 200, ""},
		{"GET", "/debug/pprof", 301, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			got := serveAs(t, h, tt.method, tt.path, "")
			if got.status != tt.wantStatus || !strings.Contains(got.body, tt.wantBody) {
				t.Errorf("got %d %.80q, want %d with %q", got.status, got.body, tt.wantStatus, tt.wantBody)
			}
		})
	}
	if got := serveAs(t, h, "GET", "/debug/pprof", "").header.Get("Location"); got != "/debug/pprof/" {
		t.Errorf("/debug/pprof: got Location %q, want /debug/pprof/", got)
	}
}
