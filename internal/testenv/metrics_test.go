package testenv

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestSamplesReadsEachSeries(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `# HELP x_total Things.
# TYPE x_total counter
x_total{step="join"} 3
x_total{step="send"} 0
h_bucket{le="1.0"} 7 # {trace_id="abc"} 0.2 1.7e9
g 2.5 1700000000000
`)
	}))
	defer srv.Close()
	got := Samples(t, srv.URL)
	want := map[string]float64{`x_total{step="join"}`: 3, `x_total{step="send"}`: 0, `h_bucket{le="1.0"}`: 7, "g": 2.5}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
