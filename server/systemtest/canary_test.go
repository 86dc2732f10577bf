package systemtest

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/internal/testenv"
)

// The synthetic canary (canary/) against two real replicas on PostgreSQL and
// Redis behind a real load balancer, Debian's nginx with the settings of
// compose/nginx/nginx.conf: the canary's probes cross replicas and stay on
// one, both labelled; killing a replica shows in its failures; and with
// every replica gone, a real Prometheus running canary.rules.yml (its
// durations divided by timeScale) fires ParleyCanaryFailing.
func TestCanaryThroughALoadBalancer(t *testing.T) {
	t.Parallel()
	nginx := testenv.Find(t, "nginx", "nginx")
	prometheus := testenv.Find(t, "prometheus", "prometheus")
	c := newCluster(t, 2)
	lb := startNginx(t, nginx, c.live[0].base, c.live[1].base)

	// Through the load balancer, upgrades and joined frames name the
	// replica that serves the socket: each of the two, with its own id.
	// Nothing else names it (the pod's host name is in it).
	if got := unsignedReplica(t, lb+"/healthz"); got != "" {
		t.Errorf("GET /healthz through the load balancer names replica %q, want no X-Parley-Replica", got)
	}
	token := (&testServer{t: t, base: lb, http: newHTTPClient()}).mustSignUp("replica-namer").Token
	ids := map[string]bool{}
	for _, p := range c.live {
		ids[replicaOf(t, p.base, token)] = true
	}
	if len(ids) != 2 || ids[""] {
		t.Fatalf("the replicas name themselves %v, want two ids", ids)
	}
	seen := map[string]bool{}
	testenv.Eventually(t, "the load balancer to reach both replicas", func() bool {
		seen[replicaOf(t, lb, token)] = true
		return len(seen) == 2
	})
	for id := range seen {
		if !ids[id] {
			t.Errorf("through the load balancer: X-Parley-Replica %q, which no replica says it is (%v)", id, ids)
		}
	}
	checkJoinedNamesTheReplica(t, lb, ids)

	canary := exec.Command(testenv.GoBuild(t, "github.com/parleychat/parley/canary"),
		"-target", lb, "-metrics-addr", "127.0.0.1:0",
		"-interval", "200ms", "-timeout", "3s", "-redial", "2s")
	canary.Env = append(os.Environ(), "CANARY_PASSWORD=canary-system-test")
	metrics := "http://" + startDaemon(t, "canary", canary, jsonListening) + "/metrics"

	var got map[string]float64
	testenv.EventuallyWithin(t, 90*time.Second, "successful probes on both paths", func() bool {
		got = testenv.Samples(t, metrics)
		return got[`parley_canary_latency_seconds_count{path="same_replica"}`] > 0 &&
			got[`parley_canary_latency_seconds_count{path="cross_replica"}`] > 0
	})
	checkCanaryCounts(t, got)
	if n := got[`parley_canary_logins_total{result="ok"}`]; n != 1 {
		t.Errorf("the canary signed in %v times, want once (its token lives 24 h)", n)
	}
	t.Logf("healthy: %s", canaryFigures(got))

	// The replica to kill serves one of the canary's connections at least,
	// so the kill is something the canary lives through.
	victim := 0
	if c.live[1].metric("parley_ws_connections") > c.live[0].metric("parley_ws_connections") {
		victim = 1
	}
	failed := canaryFailures(got)
	c.live[victim].kill()
	testenv.EventuallyWithin(t, 30*time.Second, "the kill to show in the canary's failures", func() bool {
		got = testenv.Samples(t, metrics)
		return canaryFailures(got) > failed
	})
	t.Logf("after killing one replica: %s", canaryFigures(got))
	// The survivor serves on.
	before := got[`parley_canary_latency_seconds_count{path="same_replica"}`]
	testenv.EventuallyWithin(t, 30*time.Second, "probes to succeed again on the surviving replica", func() bool {
		got = testenv.Samples(t, metrics)
		return got[`parley_canary_latency_seconds_count{path="same_replica"}`] > before
	})
	checkCanaryCounts(t, got)

	prom := startCanaryPrometheus(t, prometheus, strings.TrimSuffix(strings.TrimPrefix(metrics, "http://"), "/metrics"))
	waitForQuery(t, prom, "Prometheus to scrape the canary", `parley_canary_last_success_timestamp_seconds{job="canary"}`)
	if firing(t, prom, "ParleyCanaryFailing") || firing(t, prom, "ParleyCanaryDown") {
		t.Fatal("a canary alert fires while the canary succeeds")
	}
	c.live[1-victim].kill()
	start := time.Now()
	if !testenv.Poll(stackWait, func() bool { return firing(t, prom, "ParleyCanaryFailing") }) {
		t.Fatalf("ParleyCanaryFailing did not fire within %v of the last replica's death: %s", stackWait, canaryFigures(testenv.Samples(t, metrics)))
	}
	got = testenv.Samples(t, metrics)
	t.Logf("no replica left: ParleyCanaryFailing fired after %v (rules' durations divided by %d); %s", time.Since(start).Round(time.Millisecond), timeScale, canaryFigures(got))
	if got[`parley_canary_failures_total{step="login"}`]+got[`parley_canary_failures_total{step="connect"}`] == 0 {
		t.Errorf("with no replica, no probe failed at login or connect: %s", canaryFigures(got))
	}
	checkCanaryCounts(t, got)
}

// replicaOf opens a WebSocket at base with token and returns the
// X-Parley-Replica of its upgrade.
func replicaOf(t *testing.T, base, token string) string {
	t.Helper()
	srv := &testServer{t: t, base: base}
	conn, resp, err := dialer().Dial(srv.wsURL(), http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("dial %s: %v", base, err)
	}
	conn.Close()
	return resp.Header.Get("X-Parley-Replica")
}

// unsignedReplica returns the X-Parley-Replica of a GET of url.
func unsignedReplica(t *testing.T, url string) string {
	t.Helper()
	resp, err := stackGet(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("X-Parley-Replica")
}

// checkJoinedNamesTheReplica connects through the load balancer and checks
// that the upgrade's header and the joined frame name the same replica.
func checkJoinedNamesTheReplica(t *testing.T, lb string, ids map[string]bool) {
	t.Helper()
	srv := &testServer{t: t, base: lb, http: newHTTPClient()}
	owner := srv.mustSignUp("replica-checker")
	room := srv.mustCreateRoom(owner.Token, "replicas")
	conn, resp, err := dialer().Dial(srv.wsURL(), http.Header{"Authorization": {"Bearer " + owner.Token}})
	if err != nil {
		t.Fatalf("dial through the load balancer: %v", err)
	}
	defer conn.Close()
	header := resp.Header.Get("X-Parley-Replica")
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := conn.WriteJSON(map[string]string{"type": "join", "room": room.ID}); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(writeTimeout))
	var joined struct{ Type, Replica string }
	for joined.Type != "joined" {
		if err := conn.ReadJSON(&joined); err != nil {
			t.Fatalf("reading the joined frame: %v", err)
		}
	}
	if !ids[header] || joined.Replica != header {
		t.Errorf("upgrade X-Parley-Replica %q, joined frame replica %q; want the same id, one of %v", header, joined.Replica, ids)
	}
	conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
}

// jsonListening is the line the canary (like slackrecv) logs once its
// metrics listener is open.
var jsonListening = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

// nginxConfig is compose/nginx/nginx.conf's load balancing on loopback,
// with every path nginx writes inside the test's directory.
const nginxConfig = `worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %[1]s/client_body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      close;
  }
  upstream parley {
    server %[2]s max_fails=1 fail_timeout=5s;
    server %[3]s max_fails=1 fail_timeout=5s;
  }
  server {
    listen %[4]s;
    location / {
      proxy_pass http://parley;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $http_host;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
      proxy_next_upstream error timeout http_502 http_503;
    }
  }
}
`

// startNginx runs nginx in front of the two replicas' public listeners
// (http://host:port) until the test ends, and returns its URL.
func startNginx(t *testing.T, bin, a, b string) string {
	t.Helper()
	dir := t.TempDir()
	addr := testenv.ClosedAddr(t) // nginx cannot report a port of its choosing
	conf := filepath.Join(dir, "nginx.conf")
	writeFile(t, conf, fmt.Sprintf(nginxConfig, dir, strings.TrimPrefix(a, "http://"), strings.TrimPrefix(b, "http://"), addr))
	cmd := exec.Command(bin, "-e", "stderr", "-p", dir, "-c", conf)
	tap := newLogTap()
	cmd.Stdout, cmd.Stderr = tap, tap
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT) // nginx's graceful stop
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("nginx did not stop in 10s after SIGQUIT")
		}
		if t.Failed() {
			t.Logf("nginx output:\n%s", tap.String())
		}
	})
	lb := "http://" + addr
	ready := testenv.Poll(30*time.Second, func() bool {
		select {
		case err := <-exited:
			t.Fatalf("nginx exited at start: %v\n%s", err, tap.String())
		default:
		}
		resp, err := stackGet(lb + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !ready {
		t.Fatalf("nginx did not answer at %s in 30s\n%s", lb, tap.String())
	}
	return lb
}

// startCanaryPrometheus runs Prometheus scraping the canary at addr every
// second, with a copy of canary.rules.yml whose durations are divided by
// timeScale: the `for` of each alert, and the windows of its range
// selectors and offsets (ParleyCanaryFailing's 5 minutes without a
// success). It returns Prometheus's URL.
func startCanaryPrometheus(t *testing.T, bin, addr string) string {
	t.Helper()
	dir := t.TempDir()
	rules := readYAML(t, filepath.Join(alertsDir, "rules", "canary.rules.yml"))
	scaled := 0
	for _, group := range lookupYAML(rules, "groups").Content {
		for _, rule := range lookupYAML(group, "rules").Content {
			if v := lookupYAML(rule, "for"); v != nil {
				v.Value = scaleDuration(t, v.Value)
			}
			expr := lookupYAML(rule, "expr")
			expr.Value = scaledWindow.ReplaceAllStringFunc(expr.Value, func(w string) string {
				scaled++
				if d, ok := strings.CutPrefix(w, "offset "); ok {
					return "offset " + scaleDuration(t, d)
				}
				return "[" + scaleDuration(t, strings.Trim(w, "[]")) + "]"
			})
		}
	}
	if scaled == 0 {
		t.Fatal("found no window in canary.rules.yml to scale")
	}
	writeYAML(t, filepath.Join(dir, "canary.rules.yml"), rules)
	writeFile(t, filepath.Join(dir, "prometheus.yml"), fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
  external_labels: {grafana_url: "http://grafana.test"}
rule_files: [canary.rules.yml]
scrape_configs:
  - job_name: canary
    static_configs:
      - targets: [%q]
`, addr))
	listen := startDaemon(t, "prometheus", exec.Command(bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:0",
	), promListening)
	prom := "http://" + listen
	// It answers 503 until its storage is open.
	ready := testenv.Poll(stackWait, func() bool {
		resp, err := stackGet(prom + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !ready {
		t.Fatalf("prometheus not ready in %v", stackWait)
	}
	return prom
}

// scaledWindow matches a range selector's window, such as [5m], or an offset.
var scaledWindow = regexp.MustCompile(`\[\d+[smhdwy]\]|offset \d+[smhdwy]`)

// firing reports whether Prometheus has the alert firing.
func firing(t *testing.T, prom, alert string) bool {
	t.Helper()
	var data struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	promAPI(t, prom, "/api/v1/alerts", &data)
	for _, a := range data.Alerts {
		if a.Labels["alertname"] == alert && a.State == "firing" {
			return true
		}
	}
	return false
}

var (
	canaryPaths = []string{"same_replica", "cross_replica", "unknown"}
	canarySteps = []string{"login", "connect", "join", "send", "ack", "receive"}
)

func canaryFailures(samples map[string]float64) float64 {
	var n float64
	for _, s := range canarySteps {
		n += samples[`parley_canary_failures_total{step="`+s+`"}`]
	}
	return n
}

// checkCanaryCounts checks that one scrape adds up: every probe is a
// failure or a success, never both, never neither.
func checkCanaryCounts(t *testing.T, samples map[string]float64) {
	t.Helper()
	var probes, successes float64
	for _, p := range canaryPaths {
		probes += samples[`parley_canary_probes_total{path="`+p+`"}`]
		successes += samples[`parley_canary_latency_seconds_count{path="`+p+`"}`]
	}
	if failures := canaryFailures(samples); probes != failures+successes {
		t.Errorf("probes %v != failures %v + successes %v", probes, failures, successes)
	}
}

// canaryFigures summarises a scrape for the test's log.
func canaryFigures(samples map[string]float64) string {
	var b strings.Builder
	for _, p := range canaryPaths {
		fmt.Fprintf(&b, "%s: %v probes, %v ok; ", p, samples[`parley_canary_probes_total{path="`+p+`"}`], samples[`parley_canary_latency_seconds_count{path="`+p+`"}`])
	}
	b.WriteString("failures")
	for _, s := range canarySteps {
		fmt.Fprintf(&b, " %s=%v", s, samples[`parley_canary_failures_total{step="`+s+`"}`])
	}
	fmt.Fprintf(&b, "; logins ok=%v failed=%v", samples[`parley_canary_logins_total{result="ok"}`], samples[`parley_canary_logins_total{result="failed"}`])
	return b.String()
}
