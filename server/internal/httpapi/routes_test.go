package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

// Both listeners answer a path or a method they do not take with the same
// envelope, and a 405 names the methods the path takes.
func TestUnroutedRequestsGetTheEnvelopeOnBothListeners(t *testing.T) {
	t.Parallel()
	public := mustBuildServer(t, Config{}).Handler()
	admin := adminListener(t, Config{AdminToken: adminToken})
	tests := []struct {
		name         string
		h            http.Handler
		method, path string
		wantStatus   int
		wantCode     string
		wantMsg      string
		wantAllow    string
	}{
		{"public: unknown path", public, "GET", "/wp-admin", 404, "not_found", "no such endpoint", ""},
		{"public: wrong method", public, "PUT", "/api/v1/rooms", 405, "bad_request", "PUT is not allowed here; use GET, POST", "GET, POST"},
		{"public: wrong method on a probe", public, "POST", "/healthz", 405, "bad_request", "POST is not allowed here; use GET", "GET"},
		{"admin: unknown path", admin, "GET", "/wp-admin", 404, "not_found", "no such endpoint", ""},
		{"admin: wrong method", admin, "POST", "/metrics", 405, "bad_request", "POST is not allowed here; use GET, HEAD", "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := serveAs(t, tt.h, tt.method, tt.path, adminToken)
			if got.status != tt.wantStatus {
				t.Fatalf("got status %d (%s), want %d", got.status, got.body, tt.wantStatus)
			}
			if ct := got.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("got Content-Type %q, want application/json", ct)
			}
			e := mustDecode[errorJSON](t, got)
			if e.Error.Code != tt.wantCode || e.Error.Message != tt.wantMsg {
				t.Errorf("got %s %q, want %s %q", e.Error.Code, e.Error.Message, tt.wantCode, tt.wantMsg)
			}
			if allow := got.header.Get("Allow"); allow != tt.wantAllow {
				t.Errorf("got Allow %q, want %q", allow, tt.wantAllow)
			}
		})
	}
}
