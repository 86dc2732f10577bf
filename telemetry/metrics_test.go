package telemetry_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/parleychat/parley/telemetry"
)

func TestBuildInfoIsExposed(t *testing.T) {
	t.Parallel()
	tel := mustSetup(t, telemetry.Config{Version: "1.2.3"})

	families, err := tel.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, mf := range families {
		if mf.GetName() != "parley_build_info" {
			continue
		}
		found = true
		m := mf.GetMetric()[0]
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		if got := m.GetGauge().GetValue(); got != 1 {
			t.Errorf("got value %v, want 1", got)
		}
		if labels["version"] != "1.2.3" || labels["goversion"] != runtime.Version() {
			t.Errorf("got labels %v, want version 1.2.3 and goversion %s", labels, runtime.Version())
		}
	}
	if !found {
		t.Fatal("got no parley_build_info in the registry")
	}

	srv := httptest.NewServer(telemetry.MetricsHandler(tel.Registry))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	srv.Client().CloseIdleConnections()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("got Content-Type %q, want OpenMetrics", ct)
	}
	if !regexp.MustCompile(`(?m)^parley_build_info\{[^}]*version="1\.2\.3"[^}]*\} 1(\.0)?$`).Match(body) {
		t.Errorf("got no parley_build_info line with version 1.2.3 and value 1 in:\n%s", body)
	}
}
