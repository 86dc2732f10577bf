package alerts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/parleychat/parley/internal/testenv"
)

// symptomTicketHeldBy states, for every ticket of the hand-written rule
// files, the pages that hold it back: a symptom page holds back the
// tickets of its own component, nothing else. A new ticket must be added
// here, which is the moment to decide.
var symptomTicketHeldBy = map[string][]string{
	"ParleyReadinessFlapping (warning)":          {"ParleyNoReplicaUp (critical)"},
	"ParleySlowConsumerClosesSpiking (warning)":  {"ParleyNoReplicaUp (critical)"},
	"ParleyStoreErrors (warning)":                {"ParleyPostgresDown (critical)"},
	"ParleyDBPoolExhausted (warning)":            {"ParleyPostgresDown (critical)"},
	"ParleyPostgresConnectionsNearMax (warning)": {"ParleyPostgresDown (critical)"},
	"ParleyPostgresExporterMissing (warning)":    {"ParleyPostgresDown (critical)"},
	"ParleyBackfillsSpiking (warning)":           {"ParleyRedisDown (critical)"},
	"ParleyBrokerErrors (warning)":               {"ParleyRedisDown (critical)"},
	"ParleyRedisMemoryNearMax (warning)":         {"ParleyRedisDown (critical)"},
	"ParleyRedisExporterMissing (warning)":       {"ParleyRedisDown (critical)"},
	"ParleyCanaryDown (warning)":                 {"ParleyCanaryFailing (critical)"},
	// A fault left on is the diagnosis of whatever pages: never held back.
	"ParleyFaultActive (warning)": nil,
}

// ruleAlert is one alert of a rule file, as Alertmanager would receive it:
// its name and the labels the rule sets (those of its expression, such as
// instance, play no part in the inhibit rules).
type ruleAlert struct {
	key       string // "alertname (severity)"
	generated bool   // from alerts/generated (the SLO rules)
	labels    map[string]string
}

func ruleAlerts(t *testing.T) []ruleAlert {
	t.Helper()
	rules, _ := filepath.Glob("rules/*.rules.yml")
	generated, _ := filepath.Glob("generated/*.rules.yml")
	var out []ruleAlert
	for _, f := range append(rules, generated...) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var file struct {
			Groups []struct {
				Rules []struct {
					Alert  string            `yaml:"alert"`
					Labels map[string]string `yaml:"labels"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(raw, &file); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range file.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				labels := map[string]string{"alertname": r.Alert}
				for k, v := range r.Labels {
					labels[k] = v
				}
				out = append(out, ruleAlert{
					key:       fmt.Sprintf("%s (%s)", r.Alert, r.Labels["severity"]),
					generated: strings.HasPrefix(f, "generated"),
					labels:    labels,
				})
			}
		}
	}
	if len(out) < 10 {
		t.Fatalf("found %d alerts in the rule files", len(out))
	}
	return out
}

// Every alert of the hand-written rule files names its component, which
// the second inhibit rule pairs on: without one, a page of that alert
// would hold nothing back and its ticket would never be held.
func TestSymptomAlertsNameTheirComponent(t *testing.T) {
	for _, a := range ruleAlerts(t) {
		if !a.generated && a.labels["component"] == "" {
			t.Errorf("%s has no component label", a.key)
		}
	}
}

// Which alerts hold back which, asked of the real Alertmanager (amtool
// cannot test inhibition): Debian's Alertmanager runs alertmanager.yml and
// gets every alert of every rule file but the pages, firing. Then each
// page in turn fires alone and is resolved again, and Alertmanager says
// which alerts it holds back (it names only one source per alert, so the
// pages are tried one at a time). Every SLO page holds back that SLO's
// tickets and nothing else; every symptom page the tickets that
// symptomTicketHeldBy gives it; no page is held back.
func TestInhibitionHoldsBackOnlyRelatedTickets(t *testing.T) {
	alerts := ruleAlerts(t)
	holds := map[string][]string{} // page -> the tickets it holds back
	var pages, rest []ruleAlert
	for _, a := range alerts {
		switch {
		case a.labels["severity"] == "critical":
			pages = append(pages, a)
			if _, ok := holds[a.key]; !ok {
				holds[a.key] = nil
			}
			continue
		case a.labels["severity"] != "warning":
		case a.generated:
			// The SLO's page: the generated rules name the SLO in the
			// alert, and the page is critical.
			for _, p := range alerts {
				if p.generated && p.labels["severity"] == "critical" && p.labels["slo"] == a.labels["slo"] {
					holds[p.key] = append(holds[p.key], a.key)
				}
			}
		default:
			held, ok := symptomTicketHeldBy[a.key]
			if !ok {
				t.Fatalf("%s is not in symptomTicketHeldBy: state which pages hold it back", a.key)
			}
			for _, p := range held {
				holds[p] = append(holds[p], a.key)
			}
		}
		rest = append(rest, a)
	}
	if len(pages) < 5 {
		t.Fatalf("found %d pages in the rule files", len(pages))
	}

	am := startAlertmanager(t)
	postAlerts(t, am, append(rest, sentinelTarget), time.Time{})
	testenv.Eventually(t, "the tickets in Alertmanager", func() bool { return len(inhibitions(t, am)) == len(rest)+1 })
	for _, p := range pages {
		// Alertmanager's inhibitor takes alerts in the order they came:
		// once the sentinel, posted after the page, holds back its
		// target, the page has been taken in too and the answer is final.
		postAlerts(t, am, []ruleAlert{p, sentinelSource}, time.Time{})
		testenv.Eventually(t, "the sentinel after "+p.key, func() bool { return len(inhibitions(t, am)[sentinelTarget.key]) > 0 })
		var got []string
		for key, by := range inhibitions(t, am) {
			if len(by) > 0 && key != sentinelTarget.key {
				got = append(got, key)
			}
		}
		if want := sorted(holds[p.key]); !slices.Equal(sorted(got), want) {
			t.Errorf("%s holds back %v, want %v", p.key, sorted(got), want)
		}
		postAlerts(t, am, []ruleAlert{p, sentinelSource}, time.Now().Add(-time.Second))
		testenv.Eventually(t, p.key+" resolved", func() bool { return len(inhibitions(t, am)[sentinelTarget.key]) == 0 })
		for key, by := range inhibitions(t, am) {
			if len(by) > 0 {
				t.Fatalf("%s is still held back by %v after %s resolved", key, by, p.key)
			}
		}
	}
}

// The sentinel pair marks how far Alertmanager's inhibitor has got: the
// test's copy of alertmanager.yml adds an inhibit rule from the one to the
// other, and no shipped rule matches either (they are not critical).
var (
	sentinelSource = ruleAlert{key: "InhibitionTestSource (none)", labels: map[string]string{"alertname": "InhibitionTestSource", "severity": "none"}}
	sentinelTarget = ruleAlert{key: "InhibitionTestTarget (none)", labels: map[string]string{"alertname": "InhibitionTestTarget", "severity": "none"}}
)

// postAlerts sends alerts to Alertmanager as Prometheus does, firing (a
// zero ends) or resolved at ends.
func postAlerts(t *testing.T, am string, alerts []ruleAlert, ends time.Time) {
	t.Helper()
	var post []map[string]any
	for _, a := range alerts {
		alert := map[string]any{"labels": a.labels}
		if !ends.IsZero() {
			alert["endsAt"] = ends.UTC().Format(time.RFC3339Nano)
		}
		post = append(post, alert)
	}
	body, err := json.Marshal(post)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(am+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("posting alerts: %s", resp.Status)
	}
}

// inhibitions reads Alertmanager's alerts: each alert's key and the keys
// of the alerts that inhibit it, sorted.
func inhibitions(t *testing.T, am string) map[string][]string {
	t.Helper()
	resp, err := http.Get(am + "/api/v2/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []struct {
		Fingerprint string            `json:"fingerprint"`
		Labels      map[string]string `json:"labels"`
		Status      struct {
			InhibitedBy []string `json:"inhibitedBy"`
		} `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	keyOf := map[string]string{}
	for _, a := range list {
		keyOf[a.Fingerprint] = fmt.Sprintf("%s (%s)", a.Labels["alertname"], a.Labels["severity"])
	}
	out := map[string][]string{}
	for _, a := range list {
		var by []string
		for _, fp := range a.Status.InhibitedBy {
			by = append(by, keyOf[fp])
		}
		out[keyOf[a.Fingerprint]] = sorted(by)
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// startAlertmanager runs Debian's Alertmanager on a copy of
// alertmanager.yml whose webhooks (the Slack files, the heartbeat's URL)
// point at a closed loopback port, so that nothing leaves the machine,
// with the sentinel's inhibit rule added, and returns its URL once it is
// ready. The test's end stops it.
func startAlertmanager(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("alertmanager")
	if err != nil {
		bin = testenv.Find(t, "prometheus-alertmanager", "prometheus-alertmanager")
	}
	raw, err := os.ReadFile("alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	nowhere := "http://" + testenv.ClosedAddr(t)
	templates, err := filepath.Abs("templates")
	if err != nil {
		t.Fatal(err)
	}
	cfg["templates"] = []any{filepath.Join(templates, "*.tmpl")}
	inhibit, _ := cfg["inhibit_rules"].([]any)
	cfg["inhibit_rules"] = append(inhibit, map[string]any{
		"source_matchers": []string{`alertname="` + sentinelSource.labels["alertname"] + `"`},
		"target_matchers": []string{`alertname="` + sentinelTarget.labels["alertname"] + `"`},
	})
	receivers, _ := cfg["receivers"].([]any)
	for _, r := range receivers {
		r, _ := r.(map[string]any)
		slack, _ := r["slack_configs"].([]any)
		for _, c := range slack {
			c, _ := c.(map[string]any)
			file := filepath.Join(dir, filepath.Base(fmt.Sprint(c["api_url_file"])))
			if err := os.WriteFile(file, []byte(nowhere+"/hooks/"+filepath.Base(file)), 0o600); err != nil {
				t.Fatal(err)
			}
			c["api_url_file"] = file
		}
		hooks, _ := r["webhook_configs"].([]any)
		for _, c := range hooks {
			c, _ := c.(map[string]any)
			c["url"] = nowhere + "/watchdog"
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(config, out, 0o600); err != nil {
		t.Fatal(err)
	}

	addr := testenv.ClosedAddr(t)
	var logs bytes.Buffer
	var mu sync.Mutex
	cmd := exec.Command(bin, "--config.file="+config, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=")
	cmd.Stdout, cmd.Stderr = lockedWriter{&mu, &logs}, lockedWriter{&mu, &logs}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	output := func() string { mu.Lock(); defer mu.Unlock(); return logs.String() }
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("alertmanager output:\n%s", output())
		}
	})
	url := "http://" + addr
	client := &http.Client{Timeout: time.Second}
	testenv.Eventually(t, "Alertmanager ready", func() bool {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("alertmanager exited at start: %v\n%s", err, output())
		default:
		}
		resp, err := client.Get(url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return url
}

// lockedWriter lets the process's two output streams share one buffer.
type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
