package systemtest

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/parleychat/parley/internal/testenv"
)

// The load generator's smoke scenario against two replicas on PostgreSQL
// and Redis, its users spread over both as a load balancer would: every
// threshold holds (nothing lost, duplicated, reordered or refused), and the
// JSON and HTML reports are written. The generator is a black box that
// speaks only the public protocol, so this is also a contract test.
func TestLoadtestSmokeScenario(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	bin := testenv.GoBuild(t, "github.com/parleychat/parley/loadtest")
	dir := t.TempDir()
	result, page := filepath.Join(dir, "result.json"), filepath.Join(dir, "report.html")
	cmd := exec.Command(bin,
		"-target", c.live[0].base+","+c.live[1].base,
		"-scenario", "../../loadtest/scenarios/smoke.yaml",
		"-json", result, "-html", page, "-quiet")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("loadtest: %v\n%s", err, out)
	}
	t.Logf("loadtest:\n%s", out)

	raw, err := os.ReadFile(result)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Pass   bool
		Counts struct {
			Sent, Acked, Expected, Delivered, Lost, Duplicates, Reordered int64
		}
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if !r.Pass || r.Counts.Sent == 0 || r.Counts.Acked != r.Counts.Sent || r.Counts.Delivered != r.Counts.Expected || r.Counts.Lost+r.Counts.Duplicates+r.Counts.Reordered != 0 {
		t.Errorf("got %+v, want a pass with every send acked and every delivery made", r)
	}
	// Both replicas carried the run: the room with everyone spans them.
	for _, p := range c.live {
		if got := p.metricLabelled("parley_sends_total", `outcome="acked",reason="",transport="ws"`); got == 0 {
			t.Errorf("replica %s acked no sends", p.base)
		}
	}
	html, err := os.ReadFile(page)
	if err != nil || !strings.Contains(string(html), "smoke") {
		t.Errorf("HTML report: %v, %d bytes", err, len(html))
	}
}

// checkScenario is a steady load long enough for a platform check: 10
// users in two rooms, 20 messages a second for the given time.
func checkScenario(t *testing.T, duration string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "check.yaml")
	writeFile(t, path, `
name: check
users: {count: 10}
rooms: [{name: r, count: 2, members: 5}]
stages: [{name: steady, duration: `+duration+`, rate: 20}]
drain: 2s
`)
	return path
}

// runLoadtest runs the generator with args and returns its result file,
// decoded, and its output.
func runLoadtest(t *testing.T, args ...string) (result map[string]any, out string, err error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "result.json")
	raw, err := exec.Command(testenv.GoBuild(t, "github.com/parleychat/parley/loadtest"), append(args, "-json", file, "-quiet")...).CombinedOutput()
	body, readErr := os.ReadFile(file)
	if readErr == nil {
		if jerr := json.Unmarshal(body, &result); jerr != nil {
			t.Fatalf("result.json: %v", jerr)
		}
	}
	return result, string(raw), err
}

// The slo-alert check against the real alerting stack (time-scaled as in
// TestAlertsReachSlack): under the generator's own load it switches
// send_errors on at both replicas, sees the page in Alertmanager and in
// Slack, switches it off and sees both resolve.
func TestLoadtestSLOAlertCheck(t *testing.T) {
	t.Parallel()
	const token = "loadtest-check-admin-token"
	c := newClusterWith(t, 2, map[string]string{"PARLEY_FAULTS": "on", "PARLEY_ADMIN_TOKEN": token})
	st := startAlertingStack(t, c)
	result, out, err := runLoadtest(t,
		"-target", c.live[0].base+","+c.live[1].base, "-scenario", checkScenario(t, "40s"),
		"-check", "slo-alert", "-admin", c.live[0].admin+","+c.live[1].admin, "-admin-token", token,
		"-alertmanager", st.am, "-slack", st.slack, "-fault-after", "10s", "-check-timeout", "60s")
	// The run's own thresholds: none; the check is the verdict. Sends fail
	// while the fault is on, which is the point.
	if err != nil {
		t.Fatalf("loadtest: %v\n%s", err, out)
	}
	checks, _ := result["checks"].([]any)
	if len(checks) != 1 {
		t.Fatalf("got checks %v, want the slo-alert verdict\n%s", result["checks"], out)
	}
	v := checks[0].(map[string]any)
	if v["pass"] != true {
		t.Fatalf("slo-alert failed: %v\n%s", v, out)
	}
	for _, f := range c.live {
		if got := f.metricLabelled("parley_fault_active", `fault="send_errors"`); got != 0 {
			t.Errorf("the fault is still on at %s", f.admin)
		}
	}
	t.Logf("slo-alert: %v", v["detail"])
}

// The autoscale check against a Prometheus whose targets the test changes,
// as an autoscaler would add a replica: at first it scrapes one replica,
// and once the check has read that count a second one, which the check
// must see as a rise. No Kubernetes runs here; the check reads only
// Prometheus.
func TestLoadtestAutoscaleCheck(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	st := startAlertingStack(t, c)
	one := strings.TrimPrefix(c.live[0].admin, "http://")
	writeTargets(t, filepath.Join(st.targets, "parley.yml"), one)
	waitForQuery(t, st.prom, "one replica scraped", `count(up{job="parley"} == 1) == 1`)

	// The check's first query is the count it starts from: the replica is
	// added once that has been answered, not a guessed time into the load.
	prom, err := url.Parse(st.prom)
	if err != nil {
		t.Fatal(err)
	}
	asked := make(chan struct{})
	var firstQuery sync.Once
	forward := httputil.NewSingleHostReverseProxy(prom)
	transport := &http.Transport{}
	forward.Transport = transport
	watched := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		forward.ServeHTTP(w, r)
		firstQuery.Do(func() { close(asked) })
	}))
	t.Cleanup(func() { watched.Close(); transport.CloseIdleConnections() })
	finished, scaled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(scaled)
		select {
		case <-asked:
		case <-finished: // the run ended without asking: its verdict says why
			return
		}
		both := []string{one, strings.TrimPrefix(c.live[1].admin, "http://")}
		raw, _ := yaml.Marshal([]map[string][]string{{"targets": both}})
		// Written aside and renamed, so Prometheus never reads half a file.
		tmp := filepath.Join(st.targets, "parley.yml.tmp")
		if os.WriteFile(tmp, raw, 0o644) == nil {
			os.Rename(tmp, filepath.Join(st.targets, "parley.yml"))
		}
	}()
	result, out, err := runLoadtest(t,
		"-target", c.live[0].base, "-scenario", checkScenario(t, "25s"),
		"-check", "autoscale", "-prometheus", watched.URL, "-check-timeout", "40s")
	close(finished)
	<-scaled
	if err != nil {
		t.Fatalf("loadtest: %v\n%s", err, out)
	}
	checks, _ := result["checks"].([]any)
	if len(checks) != 1 || checks[0].(map[string]any)["pass"] != true {
		t.Fatalf("got checks %v, want autoscale to pass\n%s", result["checks"], out)
	}
	t.Logf("autoscale: %v", checks[0].(map[string]any)["detail"])
}

// Half the users lose their connections mid-run and come back with since,
// resending what was unanswered: still nothing lost, duplicated or
// reordered, through two replicas.
func TestLoadtestReconnectStorm(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	path := filepath.Join(t.TempDir(), "storm.yaml")
	writeFile(t, path, `
name: storm
users: {count: 10}
rooms: [{name: r, count: 2, members: 5}, {name: all, count: 1, members: 10}]
stages:
  - {name: before, duration: 4s, rate: 30}
  - {name: storm, duration: 4s, rate: 30, reconnect: 0.5}
  - {name: after, duration: 4s, rate: 30}
drain: 5s
thresholds: ["lost == 0", "duplicates == 0", "reordered == 0", "unanswered == 0"]
`)
	result, out, err := runLoadtest(t, "-target", c.live[0].base+","+c.live[1].base, "-scenario", path)
	if err != nil {
		t.Fatalf("loadtest: %v\n%s", err, out)
	}
	counts, _ := result["counts"].(map[string]any)
	if counts["sent"] != float64(360) || counts["delivered"] != counts["expected"] {
		t.Fatalf("got counts %v, want 360 sends and every delivery\n%s", counts, out)
	}
	t.Logf("after the storm: %v delivered, %v of them replayed", counts["delivered"], counts["replayed"])
}

// Staging mode: an https target behind a TLS-terminating proxy (as an
// Ingress would be) whose certificate a private CA signed, users from a
// token file because staging may close sign-ups. Without -ca-file the
// generator refuses the certificate; with it the run passes, WebSockets
// included.
func TestLoadtestStagingOverTLS(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	backend, err := url.Parse(c.live[0].base)
	if err != nil {
		t.Fatal(err)
	}
	ingress := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(backend)) // ReverseProxy passes WebSocket upgrades
	t.Cleanup(ingress.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	writeFile(t, ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ingress.Certificate().Raw})))

	var tokens strings.Builder
	for i := range 6 {
		fmt.Fprintln(&tokens, c.live[0].mustSignUp(fmt.Sprintf("staging-user-%d", i)).Token)
	}
	writeFile(t, filepath.Join(dir, "tokens.txt"), tokens.String())
	scenario := filepath.Join(dir, "staging.yaml")
	writeFile(t, scenario, `
name: staging
users: {count: 6, token_file: tokens.txt}
rooms: [{name: r, count: 2, members: 3}]
stages: [{name: steady, duration: 3s, rate: 20}]
drain: 3s
thresholds: ["lost == 0", "ack_error_rate == 0%"]
`)

	_, out, err := runLoadtest(t, "-target", ingress.URL, "-scenario", scenario)
	if err == nil || !strings.Contains(out, "certificate") {
		t.Errorf("without -ca-file: got %v, want a certificate error\n%s", err, out)
	}
	result, out, err := runLoadtest(t, "-target", ingress.URL, "-scenario", scenario, "-ca-file", ca)
	if err != nil {
		t.Fatalf("loadtest over TLS: %v\n%s", err, out)
	}
	counts, _ := result["counts"].(map[string]any)
	if counts["sent"] != float64(60) || counts["delivered"] != counts["expected"] || counts["delivered"] != float64(180) {
		t.Fatalf("got counts %v, want 60 sends and 180 deliveries\n%s", counts, out)
	}
}
