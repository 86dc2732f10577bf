package driver

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Each stage's start is posted to Grafana's annotation API with the run's
// tags and the token. Grafana does not run here, so a stand-in records
// the requests; the API's shape is Grafana's documented POST
// /api/annotations.
func TestStagesAreAnnotatedInGrafana(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		got  []map[string]any
		auth []string
	)
	grafana := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a map[string]any
		if r.Method != http.MethodPost || r.URL.Path != "/api/annotations" || json.NewDecoder(r.Body).Decode(&a) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got, auth = append(got, a), append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Write([]byte(`{"id":1,"message":"Annotation added"}`))
	}))
	defer grafana.Close()
	server := httptest.NewServer(newFakeServer(nil))
	defer server.Close()

	path := filepath.Join(t.TempDir(), "two-stages.yaml")
	os.WriteFile(path, []byte(`
name: annotated
users: {count: 2}
rooms: [{name: r, count: 1, members: 2}]
stages: [{name: first, duration: 1s, rate: 0}, {name: second, duration: 1s, rate: 0}]
drain: 1s
`), 0o644)
	cfg := testConfig(server.URL, path)
	cfg.Grafana, cfg.GrafanaToken, cfg.RunID = grafana.URL, "tok", "r1"
	err := Drive(t.Context(), cfg, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || auth[0] != "Bearer tok" {
		t.Fatalf("got %d annotations with auth %v, want 2 with the token", len(got), auth)
	}
	tags, _ := got[1]["tags"].([]any)
	if len(tags) != 3 || tags[1] != "run:r1" || tags[2] != "stage:second" {
		t.Errorf("second annotation has tags %v, want run:r1 and stage:second", tags)
	}
}
