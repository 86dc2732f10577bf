package probe

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

func TestPathComesFromBothReplicas(t *testing.T) {
	for _, tt := range []struct{ sender, receiver, want string }{
		{"a-1", "a-1", PathSame},
		{"a-1", "b-2", PathCross},
		{"", "b-2", PathUnknown},
		{"a-1", "", PathUnknown},
	} {
		if got := pathOf(tt.sender, tt.receiver); got != tt.want {
			t.Errorf("pathOf(%q, %q) = %s, want %s", tt.sender, tt.receiver, got, tt.want)
		}
	}
}

// exposition is what a scrape of reg in OpenMetrics shows: each sample by
// its series, and the page itself (exemplars included).
func exposition(t *testing.T, reg *prometheus.Registry) (map[string]float64, string) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	for _, mf := range families {
		if _, err := expfmt.MetricFamilyToOpenMetrics(&page, mf); err != nil {
			t.Fatal(err)
		}
	}
	samples := map[string]float64{}
	for line := range strings.Lines(page.String()) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		line, _, _ = strings.Cut(strings.TrimSpace(line), " # ")
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		samples[series] = v
	}
	return samples, page.String()
}

// Every series exists from the start, and every probe is counted once with
// its failure or its latency, so probes = failures + successes.
func TestMetricsCountEachProbeOnceWithItsOutcome(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, 1000)
	start, _ := exposition(t, reg)
	for _, s := range steps {
		if v, ok := start[`parley_canary_failures_total{step="`+s+`"}`]; !ok || v != 0 {
			t.Errorf("failures of step %s at start: %v (present %v), want 0", s, v, ok)
		}
	}
	if got := start["parley_canary_last_success_timestamp_seconds"]; got != 1000 {
		t.Errorf("last success at start: %v, want the start time 1000", got)
	}

	end := time.Unix(2000, 0)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	m.record(Result{Path: PathCross, Latency: 300 * time.Millisecond, End: end, TraceID: traceID})
	m.record(Result{Path: PathUnknown, Step: StepConnect, End: end.Add(time.Second)})
	m.record(Result{Path: PathSame, Step: StepReceive, End: end.Add(2 * time.Second)})
	got, page := exposition(t, reg)

	var probes, failures, successes float64
	for _, p := range paths {
		probes += got[`parley_canary_probes_total{path="`+p+`"}`]
		successes += got[`parley_canary_latency_seconds_count{path="`+p+`"}`]
	}
	for _, s := range steps {
		failures += got[`parley_canary_failures_total{step="`+s+`"}`]
	}
	if probes != 3 || failures != 2 || successes != 1 {
		t.Errorf("got %v probes, %v failures, %v successes; want 3, 2, 1", probes, failures, successes)
	}
	if got[`parley_canary_failures_total{step="connect"}`] != 1 || got[`parley_canary_probes_total{path="unknown"}`] != 1 {
		t.Errorf("the connect failure is not counted as one unknown-path probe failing at connect:\n%s", page)
	}
	for le, want := range map[string]float64{"0.25": 0, "0.5": 1, "1.0": 1} {
		if v := got[`parley_canary_latency_seconds_bucket{path="cross_replica",le="`+le+`"}`]; v != want {
			t.Errorf("cross-replica latency bucket le=%s: %v, want %v", le, v, want)
		}
	}
	if !strings.Contains(page, `# {trace_id="`+traceID+`"} 0.3`) {
		t.Errorf("no exemplar with the probe's trace id on its bucket:\n%s", page)
	}
	if v := got["parley_canary_last_success_timestamp_seconds"]; v != 2000 {
		t.Errorf("last success %v, want 2000 (failures do not move it)", v)
	}
}

// Every scrape is one moment: while probes finish, no scrape shows more
// failures and successes than probes, nor fewer.
func TestEveryScrapeCountsEachProbeOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, 1)
	stop := make(chan struct{})
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				m.record(Result{Path: PathUnknown, Step: StepLogin, End: time.Unix(2, 0)})
			} else {
				m.record(Result{Path: PathSame, Latency: 10 * time.Millisecond, End: time.Unix(2, 0)})
			}
		}
	}()
	for range 300 {
		s, _ := exposition(t, reg)
		probes := s[`parley_canary_probes_total{path="unknown"}`] + s[`parley_canary_probes_total{path="same_replica"}`]
		finished := s[`parley_canary_failures_total{step="login"}`] + s[`parley_canary_latency_seconds_count{path="same_replica"}`]
		if probes != finished {
			close(stop)
			<-recorded
			t.Fatalf("a scrape shows %v probes but %v failures and successes", probes, finished)
		}
	}
	close(stop)
	<-recorded
}
