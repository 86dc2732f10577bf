package systemtest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/parleychat/parley/internal/testenv"
	"github.com/parleychat/parley/server/internal/app"
)

// `parley healthcheck` is what the compose file's health checks run: it
// passes against a ready server and fails against a missing or unready one.
func TestHealthcheckCommand(t *testing.T) {
	t.Parallel()
	s := startServer(t, envFor(t, "memory"))
	addr := strings.TrimPrefix(s.base, "http://")
	check := func(addr string) error {
		return app.Run(t.Context(), "test", []string{"healthcheck"}, func(k string) string { return map[string]string{"PARLEY_ADDR": addr}[k] }, nil, nil)
	}
	if err := check(addr); err != nil {
		t.Errorf("a ready server: got %v, want healthy", err)
	}
	if err := check(testenv.ClosedAddr(t)); err == nil {
		t.Error("nothing listening: got healthy")
	}
	unready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "draining", http.StatusServiceUnavailable)
	}))
	defer unready.Close()
	if err := check(strings.TrimPrefix(unready.URL, "http://")); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("an unready server: got %v, want an error naming 503", err)
	}
	if err := check("nonsense"); err == nil || !strings.Contains(err.Error(), "PARLEY_ADDR") {
		t.Errorf("a bad PARLEY_ADDR: got %v, want an error naming it", err)
	}
}
