package telemetry_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/parleychat/parley/telemetry"
)

func TestLoggerWritesJSONAtItsLevel(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := telemetry.NewLogger(&buf, slog.LevelWarn)
	log.Info("hidden")
	log.Warn("shown", "k", 1)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("got %q, want one JSON record: %v", buf.String(), err)
	}
	if rec["msg"] != "shown" || rec["level"] != "WARN" || rec["k"] != 1.0 {
		t.Fatalf("got %v, want the warn record only", rec)
	}
}

func TestMetricsHandlerServesRuntimeMetricsInBothFormats(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(telemetry.MetricsHandler(telemetry.NewRegistry()))
	defer srv.Close()
	tests := []struct {
		accept, wantType string
	}{
		{"", "text/plain"},
		{"application/openmetrics-text; version=1.0.0", "application/openmetrics-text"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if tt.accept != "" {
			req.Header.Set("Accept", tt.accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.wantType) {
			t.Errorf("Accept %q: got Content-Type %q, want %s", tt.accept, ct, tt.wantType)
		}
		for _, series := range []string{"go_goroutines", "process_cpu_seconds_total"} {
			if !bytes.Contains(body, []byte(series)) {
				t.Errorf("Accept %q: got no %s series", tt.accept, series)
			}
		}
	}
	http.DefaultClient.CloseIdleConnections()
}
