package testenv

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Samples reads a /metrics page in the text or OpenMetrics format and
// returns each sample's value by its series as written (name and labels,
// say `x_total{step="join"}`). Comments and exemplars are left out.
func Samples(t testing.TB, url string) map[string]float64 {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		series, rest, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(series, "#") {
			continue
		}
		value, _, _ := strings.Cut(rest, " ") // a timestamp or exemplar may follow
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			samples[series] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return samples
}
