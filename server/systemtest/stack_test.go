package systemtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/parleychat/parley/internal/testenv"
)

// timeScale shrinks the alerting path's clocks for the end-to-end test: the
// SLO rules come from `slogen -scale 60` (an hour's window becomes a
// minute), and Prometheus's intervals and Alertmanager's grouping timers
// are divided alike. Everything else is the shipped configuration.
const timeScale = 60

// The whole path with the real programs: two replicas on PostgreSQL and
// Redis under chat traffic, Debian's Prometheus scraping them with
// alerts/prometheus.yml and the shipped rules, Debian's Alertmanager with
// alerts/alertmanager.yml and its Slack template, alerts/slackrecv as
// Slack (one webhook per channel, as Slack binds them) and alerts/heartbeat
// as the dead man's switch. Switching send errors on must page in
// #parley-pages through the pages webhook with the dashboard and runbook
// links, and open the fault ticket in #parley-tickets through the tickets
// webhook, neither in the other's; switching them off must resolve the
// page. Stopping Alertmanager must make the heartbeat page within its
// period. Every dashboard query must return data from this Prometheus.
func TestAlertsReachSlack(t *testing.T) {
	t.Parallel()
	const token = "stack-test-admin-token"
	c, l := startObservedCluster(t, token)
	st := startAlertingStack(t, c)
	slack, prom := st.slack, st.prom

	// The dead man's switch hears the Watchdog first: the path works
	// before anything is broken. It goes to the heartbeat, not to Slack.
	start := time.Now()
	hb := waitForHeartbeat(t, st.heartbeat, "the first Watchdog", func(s heartbeatStatus) bool { return s.Heartbeats > 0 })
	toWatchdog := time.Since(start)
	waitForQuery(t, prom, "enough sends for the SLI to judge", `slo:sli_total:rate1h{slo="ack-availability"} > 0.05`)
	// While all is well, every SLO shows a zero error ratio and a full
	// budget, not an empty panel.
	// The firing-alerts panels are empty while all is well: they are
	// checked while the page fires instead.
	queries, firingPanels := splitFiringPanels(perSLO(t, dashboardQueries(t)))
	if len(firingPanels) == 0 {
		t.Fatal("found no firing-alerts panel on the boards")
	}
	waitForData(t, prom, onBoard(queries, "parley-slo.json"))

	c.setFault(token, "send_errors", `{"rate":1}`)
	faultOn := time.Now()
	// A REST send fails too, with a 503: the API's error panels get data.
	if got := c.any().call("POST", "/api/v1/rooms/"+l.rooms[0]+"/messages", l.token, map[string]string{"body": "during the fault", "client_id": "stack-test-rest"}, nil); got != http.StatusServiceUnavailable {
		t.Errorf("REST send during send_errors: got %d, want 503", got)
	}
	const alert = "ParleyAckAvailabilityBudgetBurn"
	page := waitForSlack(t, slack, "the page in #parley-pages", func(m slackMessage) bool {
		return m.in(pagesHook) && strings.HasPrefix(m.title(), "[FIRING") && strings.Contains(m.title(), alert)
	})
	toFire := time.Since(faultOn)
	waitForData(t, prom, firingPanels)
	a := page.Attachments[0]
	if want := "http://localhost:3000/d/parley-slo?var-slo=ack-availability"; a.TitleLink != want {
		t.Errorf("page links the dashboard %q, want %q", a.TitleLink, want)
	}
	for _, want := range []string{
		"Runbook: https://github.com/parleychat/parley/blob/main/alerts/runbooks/" + alert + ".md",
		"Dashboard: http://localhost:3000/d/parley-slo?var-slo=ack-availability",
		"error budget is burning",
	} {
		if !strings.Contains(a.Text, want) {
			t.Errorf("page text lacks %q:\n%s", want, a.Text)
		}
	}
	if a.Color != "danger" || !strings.Contains(a.Title, "(critical)") {
		t.Errorf("page has color %q and title %q, want danger and (critical)", a.Color, a.Title)
	}
	// The fault left on is a ticket (warning): the tickets webhook.
	waitForSlack(t, slack, "the fault ticket in #parley-tickets", func(m slackMessage) bool {
		return m.in(ticketsHook) && strings.HasPrefix(m.title(), "[FIRING") && strings.Contains(m.title(), "ParleyFaultActive (warning)")
	})

	c.setFault(token, "send_errors", "")
	faultOff := time.Now()
	resolved := waitForSlack(t, slack, "the resolved page", func(m slackMessage) bool {
		return m.in(pagesHook) && strings.HasPrefix(m.title(), "[RESOLVED]") && strings.Contains(m.title(), alert)
	})
	toResolve := time.Since(faultOff)
	if got := resolved.Attachments[0].Color; got != "good" {
		t.Errorf("resolved message has color %q, want good", got)
	}

	// The heartbeat heard the Watchdog throughout, and raised no alarm.
	if now := waitForHeartbeat(t, st.heartbeat, "the Watchdog still coming", func(s heartbeatStatus) bool { return s.Heartbeats > hb.Heartbeats }); now.Alarms != hb.Alarms || now.Alarm {
		t.Errorf("the heartbeat raised %d alarms while Alertmanager ran (status %+v)", now.Alarms-hb.Alarms, now)
	}
	// Alertmanager stops: the Watchdog stops, and the heartbeat pages
	// through the pages webhook within its period.
	// (The heartbeat may have paged at start-up too, if the first
	// Watchdog took longer than its period: only a new alarm counts.)
	heartbeatAlarm := func(m slackMessage) bool {
		return strings.HasPrefix(m.title(), "[FIRING") && strings.Contains(m.title(), "WatchdogMissing")
	}
	alarmsBefore := len(slackMessages(t, slack, heartbeatAlarm))
	st.stopAlertmanager()
	amStopped := time.Now()
	var alarms []slackMessage
	if !testenv.Poll(stackWait, func() bool {
		alarms = slackMessages(t, slack, heartbeatAlarm)
		return len(alarms) > alarmsBefore
	}) {
		t.Fatalf("the heartbeat raised no alarm in %v after Alertmanager stopped", stackWait)
	}
	toAlarm := time.Since(amStopped)
	alarm := alarms[0] // newest first
	if !alarm.in(pagesHook) {
		t.Errorf("the heartbeat's alarm came through hook %s into %s, want the pages webhook", alarm.Hook, alarm.Channel)
	}
	if limit := st.heartbeatPeriod + 10*time.Second; toAlarm > limit {
		t.Errorf("the heartbeat paged %v after Alertmanager stopped, want within its period %v and a little", toAlarm, st.heartbeatPeriod)
	}
	if !strings.Contains(alarm.Attachments[0].Text, "Runbook: https://github.com/parleychat/parley/blob/main/alerts/runbooks/WatchdogMissing.md") {
		t.Errorf("the alarm does not link its runbook:\n%s", alarm.Attachments[0].Text)
	}
	if n := len(alarms); n != alarmsBefore+1 {
		t.Errorf("%d heartbeat alarms after the stop, want one", n-alarmsBefore)
	}

	// Each webhook posted to its own channel only: no page reached the
	// tickets' webhook, no ticket the pages', nothing went elsewhere.
	for _, m := range slackMessages(t, slack, func(slackMessage) bool { return true }) {
		switch {
		case m.in(pagesHook) && strings.Contains(m.title(), "(warning)"):
			t.Errorf("a ticket reached the pages webhook: %s", m.title())
		case m.in(ticketsHook) && strings.Contains(m.title(), "(critical)"):
			t.Errorf("a page reached the tickets webhook: %s", m.title())
		case !m.in(pagesHook) && !m.in(ticketsHook):
			t.Errorf("a message reached hook %s (%s): %s", m.Hook, m.Channel, m.title())
		}
	}
	t.Logf("clocks scaled 1/%d: the Watchdog reached the heartbeat %v after start; paged %v after the fault went on, resolved %v after it went off; the heartbeat paged %v after Alertmanager stopped (period %v)",
		timeScale, toWatchdog.Round(time.Millisecond), toFire.Round(time.Millisecond), toResolve.Round(time.Millisecond), toAlarm.Round(time.Millisecond), st.heartbeatPeriod)

	// The clients hang up, so that the disconnect panels have data too.
	l.end()
	waitForData(t, prom, queries)
	// Exemplars on the delivery latency link its buckets to traces.
	var ex []struct {
		Exemplars []struct{ Labels map[string]string } `json:"exemplars"`
	}
	promAPI(t, prom, "/api/v1/query_exemplars?"+url.Values{"query": {"parley_delivery_latency_seconds_bucket"}, "start": {fmt.Sprint(faultOn.Add(-time.Minute).Unix())}, "end": {fmt.Sprint(time.Now().Unix())}}.Encode(), &ex)
	if len(ex) == 0 || len(ex[0].Exemplars) == 0 || len(ex[0].Exemplars[0].Labels["trace_id"]) != 32 {
		t.Errorf("got exemplars %+v, want delivery latency buckets with trace ids", ex)
	}
}

// alertingStack is the Slack receiver, the heartbeat receiver,
// Alertmanager and Prometheus, watching a cluster, each as
// "http://host:port".
type alertingStack struct {
	slack, heartbeat, am, prom string
	targets                    string        // Prometheus's file_sd directory
	heartbeatPeriod            time.Duration // the heartbeat's -expect-every
	stopAlertmanager           func()
}

// The Slack webhooks of the test, one per channel as Slack binds them:
// the key of the slack-webhook secret (alertmanager.yml's api_url_file
// names) -> the hook, and the hook -> its channel.
const (
	pagesHook   = "parley-pages"
	ticketsHook = "parley-tickets"
)

var (
	webhookOfKey = map[string]string{"pages": pagesHook, "tickets": ticketsHook}
	hookChannel  = map[string]string{pagesHook: "#parley-pages", ticketsHook: "#parley-tickets"}
)

// startAlertingStack starts the real programs around c: Prometheus scrapes
// every live replica and alerts to Alertmanager, which posts pages and
// tickets to slackrecv, each through its own webhook, and the Watchdog to
// the heartbeat, which pages through the pages webhook when it stops.
func startAlertingStack(t *testing.T, c *cluster) alertingStack {
	t.Helper()
	prometheus := testenv.Find(t, "prometheus", "prometheus")
	alertmanager := alertmanagerBinary(t)
	var st alertingStack
	args := []string{"-addr", "127.0.0.1:0"}
	for hook, channel := range hookChannel {
		args = append(args, "-hook", hook+"="+channel)
	}
	st.slack = "http://" + startDaemon(t, "slackrecv", exec.Command(testenv.GoBuild(t, "github.com/parleychat/parley/alerts/slackrecv"), args...), slackrecvListening)
	// The webhooks, as a deployment mounts its secret: one file per key.
	secrets := t.TempDir()
	for key, hook := range webhookOfKey {
		writeFile(t, filepath.Join(secrets, key), st.slack+"/hooks/"+hook)
	}
	// The heartbeat's period is its shipped one (5m), scaled like the
	// Watchdog's repeat interval.
	st.heartbeatPeriod = scaledDuration(t, "5m")
	st.heartbeat = "http://" + startDaemon(t, "heartbeat", exec.Command(testenv.GoBuild(t, "github.com/parleychat/parley/alerts/heartbeat"),
		"-addr", "127.0.0.1:0", "-expect-every", st.heartbeatPeriod.String(), "-retry-every", "1s",
		"-webhook-file", filepath.Join(secrets, "pages")), slackrecvListening)
	am, stop := startAlertmanager(t, alertmanager, secrets, st.heartbeat)
	st.am, st.stopAlertmanager = "http://"+am, stop
	var replicas []string
	for _, p := range c.live {
		replicas = append(replicas, strings.TrimPrefix(p.admin, "http://"))
	}
	addr, targets := startPrometheus(t, prometheus, replicas, st.am)
	st.prom, st.targets = "http://"+addr, targets
	scrapeExporters(t, targets)
	scrapeWithCanary(t, targets, c.any().base, "1s")
	return st
}

// alertmanagerBinary finds Alertmanager: Debian names it
// prometheus-alertmanager, upstream alertmanager.
func alertmanagerBinary(t *testing.T) string {
	t.Helper()
	if path, err := exec.LookPath("alertmanager"); err == nil {
		return path
	}
	return testenv.Find(t, "prometheus-alertmanager", "prometheus-alertmanager")
}

// What the programs log once they listen, with the address they got.
var (
	promListening      = regexp.MustCompile(`msg="Listening on" address=(\S+)`)
	slackrecvListening = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)
)

// startDaemon starts cmd, waits for a line of its output that listening
// matches, and returns the address in it. The test's end stops it.
func startDaemon(t *testing.T, name string, cmd *exec.Cmd, listening *regexp.Regexp) string {
	t.Helper()
	addr, _ := startStoppableDaemon(t, name, cmd, listening)
	return addr
}

// startStoppableDaemon is startDaemon that also returns a function to stop
// the program before the test ends (SIGTERM, then SIGKILL after 10s); the
// test's end stops it if that has not.
func startStoppableDaemon(t *testing.T, name string, cmd *exec.Cmd, listening *regexp.Regexp) (string, func()) {
	t.Helper()
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		w.Close()
		t.Fatalf("%s: %v", name, err)
	}
	var (
		mu   sync.Mutex
		logs strings.Builder
	)
	addr := make(chan string, 1)
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, r)
	}()
	// exited is closed once the process has ended, after exitErr is set,
	// so that both the start and the cleanup can wait for it.
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); w.Close(); close(exited) }()
	output := func() string { mu.Lock(); defer mu.Unlock(); return logs.String() }
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-exited
				t.Errorf("%s did not stop in 10s after SIGTERM", name)
			}
			<-read
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, output())
		}
	})
	select {
	case a := <-addr:
		return a, stop
	case <-exited:
		t.Fatalf("%s exited at start: %v\n%s", name, exitErr, output())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not listen in 30s\n%s", name, output())
	}
	return "", stop
}

// startAlertmanager runs Alertmanager with the shipped configuration and
// templates. Three things differ, all in a copy: each Slack receiver's
// webhook file is the one of the same name in secrets (the shipped paths
// are where deployments mount their secret), the heartbeat's webhook is
// the one at heartbeat (same path), and the grouping timers run timeScale
// times faster. It returns the address and a function that stops it.
func startAlertmanager(t *testing.T, bin, secrets, heartbeat string) (string, func()) {
	t.Helper()
	dir := t.TempDir()
	copyFiles(t, filepath.Join(alertsDir, "templates"), filepath.Join(dir, "templates"), "*.tmpl")

	cfg := readYAML(t, filepath.Join(alertsDir, "alertmanager.yml"))
	receivers := lookupYAML(cfg, "receivers")
	if receivers == nil {
		t.Fatal("the shipped configuration has no receivers")
	}
	for _, r := range receivers.Content {
		for _, c := range configsOf(lookupYAML(r, "slack_configs")) {
			file := lookupYAML(c, "api_url_file")
			if file == nil {
				t.Fatalf("receiver %s: a Slack config without api_url_file", lookupYAML(r, "name").Value)
			}
			file.Value = filepath.Join(secrets, path.Base(file.Value))
			if _, err := os.Stat(file.Value); err != nil {
				t.Fatalf("receiver %s reads a webhook the test has none for: %v", lookupYAML(r, "name").Value, err)
			}
		}
		for _, c := range configsOf(lookupYAML(r, "webhook_configs")) {
			u := lookupYAML(c, "url")
			shipped, err := url.Parse(u.Value)
			if err != nil {
				t.Fatal(err)
			}
			u.Value = heartbeat + shipped.Path
		}
	}
	var scaleRoute func(route *yaml.Node)
	scaleRoute = func(route *yaml.Node) {
		for _, timer := range []string{"group_wait", "group_interval", "repeat_interval"} {
			if v := lookupYAML(route, timer); v != nil {
				v.Value = scaleDuration(t, v.Value)
			}
		}
		if routes := lookupYAML(route, "routes"); routes != nil {
			for _, r := range routes.Content {
				scaleRoute(r)
			}
		}
	}
	scaleRoute(lookupYAML(cfg, "route"))
	writeYAML(t, filepath.Join(dir, "alertmanager.yml"), cfg)

	return startStoppableDaemon(t, "alertmanager", exec.Command(bin,
		"--config.file="+filepath.Join(dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:0",
		"--cluster.listen-address=", // no gossip: one instance
	), promListening)
}

// configsOf returns the entries of a receiver's list of configs, or none.
func configsOf(list *yaml.Node) []*yaml.Node {
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil
	}
	return list.Content
}

// startPrometheus runs Prometheus with alerts/prometheus.yml, the shipped
// symptom rules and a time-scaled copy of the SLO rules, scraping the
// replicas (admin host:port) and sending alerts to am. It returns its
// address and the directory of its file_sd targets.
func startPrometheus(t *testing.T, bin string, replicas []string, am string) (addr, targets string) {
	t.Helper()
	dir := t.TempDir()
	copyFiles(t, filepath.Join(alertsDir, "rules"), filepath.Join(dir, "rules"), "*.rules.yml")
	slogen := exec.Command("go", "run", "../../alerts/slogen", "-spec", filepath.Join(alertsDir, "slos.yaml"),
		"-out", filepath.Join(dir, "generated"), "-scale", fmt.Sprint(timeScale))
	if out, err := slogen.CombinedOutput(); err != nil {
		t.Fatalf("slogen -scale: %v\n%s", err, out)
	}

	cfg := readYAML(t, filepath.Join(alertsDir, "prometheus.yml"))
	for _, interval := range []string{"scrape_interval", "evaluation_interval"} {
		v := lookupYAML(lookupYAML(cfg, "global"), interval)
		v.Value = scaleDuration(t, v.Value)
	}
	writeYAML(t, filepath.Join(dir, "prometheus.yml"), cfg)

	writeTargets(t, filepath.Join(dir, "targets", "parley.yml"), replicas...)
	writeTargets(t, filepath.Join(dir, "targets", "alertmanager.yml"), strings.TrimPrefix(am, "http://"))

	addr = startDaemon(t, "prometheus", exec.Command(bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:0",
		"--enable-feature=exemplar-storage",
		// Alerts evaluated before the Alertmanager is discovered are
		// dropped and sent again after this delay (default 1m), scaled too.
		"--rules.alert.resend-delay="+scaleDuration(t, "1m"),
	), promListening)
	writeTargets(t, filepath.Join(dir, "targets", "prometheus.yml"), addr)
	// It answers 503 until its storage is open.
	var answer any
	ready := testenv.Poll(stackWait, func() bool {
		resp, err := stackGet("http://" + addr + "/-/ready")
		if err != nil {
			answer = err
			return false
		}
		resp.Body.Close()
		answer = resp.Status
		return resp.StatusCode == http.StatusOK
	})
	if !ready {
		t.Fatalf("prometheus not ready in %v: %v", stackWait, answer)
	}
	return addr, filepath.Join(dir, "targets")
}

// scaleDuration divides a Prometheus duration by timeScale, to no less
// than a second unless it is zero.
func scaleDuration(t *testing.T, s string) string {
	t.Helper()
	d, err := model.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	if d == 0 {
		return s
	}
	return max(time.Duration(d)/timeScale, time.Second).String()
}

// scaledDuration is scaleDuration as a time.Duration.
func scaledDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(scaleDuration(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func writeTargets(t *testing.T, path string, targets ...string) {
	t.Helper()
	raw, err := yaml.Marshal([]map[string][]string{{"targets": targets}})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(raw))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyFiles copies the files in from that match pattern into to.
func copyFiles(t *testing.T, from, to, pattern string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(from, pattern))
	if len(files) == 0 {
		t.Fatalf("no %s in %s", pattern, from)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(to, filepath.Base(f)), string(raw))
	}
}

// readYAML parses a file into a node tree, which keeps every key the test
// does not touch as it was.
func readYAML(t *testing.T, path string) *yaml.Node {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc.Content[0]
}

func writeYAML(t *testing.T, path string, node *yaml.Node) {
	t.Helper()
	raw, err := yaml.Marshal(node)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(raw))
}

// lookupYAML returns the value of key in a mapping node, or nil.
func lookupYAML(node *yaml.Node, key string) *yaml.Node {
	if node == nil || node.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == key {
			return node.Content[i+1]
		}
	}
	return nil
}

// slackMessage is what the Slack receiver kept of one webhook post: the
// hook it came through and that hook's channel.
type slackMessage struct {
	Hook        string `json:"hook"`
	Channel     string `json:"channel"`
	Attachments []struct {
		Color     string `json:"color"`
		Title     string `json:"title"`
		TitleLink string `json:"title_link"`
		Text      string `json:"text"`
	} `json:"attachments"`
}

// in says whether the message came through hook, into its channel.
func (m slackMessage) in(hook string) bool {
	return m.Hook == hook && m.Channel == hookChannel[hook]
}

func (m slackMessage) title() string {
	if len(m.Attachments) == 0 {
		return ""
	}
	return m.Attachments[0].Title
}

// stackWait bounds each wait on the alerting path: with the clocks scaled,
// every step takes seconds.
const stackWait = 90 * time.Second

// stackGet asks Prometheus or the Slack receiver, each request bounded.
func stackGet(url string) (*http.Response, error) {
	client := http.Client{Timeout: 10 * time.Second}
	return client.Get(url)
}

// slackMessages returns the Slack receiver's messages that match, newest
// first.
func slackMessages(t *testing.T, slack string, match func(slackMessage) bool) []slackMessage {
	t.Helper()
	var inbox struct{ Messages []slackMessage }
	resp, err := stackGet(slack + "/messages")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&inbox)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("slackrecv /messages: %v", err)
	}
	var out []slackMessage
	for _, m := range inbox.Messages {
		if match(m) {
			out = append(out, m)
		}
	}
	return out
}

// heartbeatStatus is what the heartbeat receiver's GET / says.
type heartbeatStatus struct {
	Heartbeats, Alarms int
	Alarm              bool
}

// waitForHeartbeat polls the heartbeat receiver until its status matches.
func waitForHeartbeat(t *testing.T, heartbeat, what string, match func(heartbeatStatus) bool) heartbeatStatus {
	t.Helper()
	var s heartbeatStatus
	if testenv.Poll(stackWait, func() bool {
		resp, err := stackGet(heartbeat + "/")
		if err != nil {
			t.Fatal(err)
		}
		s = heartbeatStatus{}
		err = json.NewDecoder(resp.Body).Decode(&s)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("heartbeat GET /: %v", err)
		}
		return match(s)
	}) {
		return s
	}
	t.Fatalf("the heartbeat receiver did not show %s in %v: %+v", what, stackWait, s)
	return s
}

// waitForSlack polls the Slack receiver until a message matches.
func waitForSlack(t *testing.T, slack, what string, match func(slackMessage) bool) slackMessage {
	t.Helper()
	var seen []slackMessage
	var found slackMessage
	arrived := testenv.Poll(stackWait, func() bool {
		seen = slackMessages(t, slack, func(slackMessage) bool { return true })
		i := slices.IndexFunc(seen, match)
		if i >= 0 {
			found = seen[i]
		}
		return i >= 0
	})
	if arrived {
		return found
	}
	var titles []string
	for _, m := range seen {
		titles = append(titles, m.Hook+" "+m.Channel+" "+m.title())
	}
	t.Fatalf("no Slack message for %s in %v; got:\n%s", what, stackWait, strings.Join(titles, "\n"))
	return slackMessage{}
}

// promAPI GETs a Prometheus API path and decodes its data into out.
func promAPI(t *testing.T, prom, path string, out any) {
	t.Helper()
	resp, err := stackGet(prom + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if body.Status != "success" {
		t.Fatalf("%s: %s", path, body.Error)
	}
	if err := json.Unmarshal(body.Data, out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// promSample is one sample of an instant query's answer: [time, "value"].
type promSample struct {
	Value [2]any `json:"value"`
}

func (s promSample) number() bool { return s.Value[1] != "NaN" }

// perSLO returns the queries with one copy per SLO of each that uses the
// slo variable, so that every SLO's row of the SLO board must have data,
// not merely one of them.
func perSLO(t *testing.T, queries []promQuery) []promQuery {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(alertsDir, "slos.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var spec struct{ SLOs []struct{ Name string } }
	if err := yaml.Unmarshal(raw, &spec); err != nil || len(spec.SLOs) == 0 {
		t.Fatalf("slos.yaml: %v, %d SLOs", err, len(spec.SLOs))
	}
	var out []promQuery
	for _, q := range queries {
		if !strings.Contains(q.raw, "$slo") {
			out = append(out, q)
			continue
		}
		for _, slo := range spec.SLOs {
			raw := strings.ReplaceAll(q.raw, "$slo", slo.Name)
			out = append(out, promQuery{where: q.where + " slo=" + slo.Name, expr: fillVariables(raw), raw: raw})
		}
	}
	return out
}

// splitFiringPanels separates the panels that list firing alerts, which
// have no data exactly when all is well, from the rest.
func splitFiringPanels(queries []promQuery) (rest, firing []promQuery) {
	for _, q := range queries {
		if strings.Contains(q.raw, "ALERTS{") {
			firing = append(firing, q)
		} else {
			rest = append(rest, q)
		}
	}
	return rest, firing
}

// onBoard returns the queries of one dashboard file.
func onBoard(queries []promQuery, file string) []promQuery {
	var out []promQuery
	for _, q := range queries {
		if strings.HasPrefix(q.where, file+":") {
			out = append(out, q)
		}
	}
	return out
}

// waitForQuery evaluates expr until it returns a sample.
func waitForQuery(t *testing.T, prom, what, expr string) {
	t.Helper()
	waitForData(t, prom, []promQuery{{where: what, expr: expr}})
}

// waitForData evaluates every query until each has returned a sample, and
// names every one that has not within stackWait. NaN (a ratio of no
// events, a quantile of an empty histogram) is no data.
func waitForData(t *testing.T, prom string, queries []promQuery) {
	t.Helper()
	// Each round asks again only what has not answered yet.
	answered := testenv.Poll(stackWait, func() bool {
		var empty []promQuery
		for _, q := range queries {
			var data struct{ Result []promSample }
			promAPI(t, prom, "/api/v1/query?"+url.Values{"query": {q.expr}}.Encode(), &data)
			if !slices.ContainsFunc(data.Result, promSample.number) {
				empty = append(empty, q)
			}
		}
		queries = empty
		return len(queries) == 0
	})
	if !answered {
		for _, q := range queries {
			t.Errorf("%s: no data in %v from %s", q.where, stackWait, q.expr)
		}
		t.FailNow()
	}
}
