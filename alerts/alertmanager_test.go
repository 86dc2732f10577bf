// Package alerts holds no Go code of its own: these tests check the
// Alertmanager configuration, its templates and the hand-written rules next
// to them with the real amtool and promtool (Debian's
// prometheus-alertmanager and prometheus packages, installed by .ci/run).
package alerts

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/parleychat/parley/internal/testenv"
)

func amtool(t *testing.T) string { return testenv.Find(t, "amtool", "prometheus-alertmanager") }

func TestAlertmanagerConfigIsValid(t *testing.T) {
	out, err := exec.Command(amtool(t), "check-config", "alertmanager.yml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
}

// Each kind of alert reaches the receiver meant for it, and that one
// alone: --verify.receivers compares the whole list of receivers.
func TestAlertsAreRoutedBySeverity(t *testing.T) {
	bin := amtool(t)
	tests := []struct {
		name     string
		labels   []string
		receiver string
	}{
		{"the Watchdog goes to the heartbeat receiver, not to Slack", []string{"alertname=Watchdog", "severity=none", "service=parley"}, "heartbeat"},
		{"a page goes to the pages webhook only", []string{"alertname=ParleyAckAvailabilityBudgetBurn", "severity=critical", "service=parley", "slo=ack-availability"}, "slack-pages"},
		{"a symptom page goes to the pages webhook only", []string{"alertname=ParleyNoReplicaUp", "severity=critical", "service=parley"}, "slack-pages"},
		{"a ticket goes to the tickets webhook only", []string{"alertname=ParleyAckAvailabilityBudgetBurn", "severity=warning", "service=parley", "slo=ack-availability"}, "slack-tickets"},
		{"a fault left on is a ticket", []string{"alertname=ParleyFaultActive", "severity=warning", "service=parley", "fault=send_errors"}, "slack-tickets"},
		{"an absent SLI is a ticket", []string{"alertname=ParleyDeliveryLatencySLIAbsent", "severity=warning", "service=parley"}, "slack-tickets"},
		{"Alertmanager failing to deliver goes through both webhooks, whichever is broken", []string{"alertname=ParleyNotificationsFailing", "severity=critical", "service=parley", "component=alerting", "integration=slack"}, "slack-pages,slack-tickets"},
		{"a datastore target gone is a ticket", []string{"alertname=ParleyPostgresExporterMissing", "severity=warning", "service=parley", "component=postgres", "job=postgres"}, "slack-tickets"},
		{"a crash-looping canary pages", []string{"alertname=ParleyCanaryFailing", "severity=critical", "service=parley", "component=canary", "job=canary"}, "slack-pages"},
		{"an alert without severity still reaches someone", []string{"alertname=Unknown"}, "slack-tickets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"config", "routes", "test", "--config.file=alertmanager.yml", "--verify.receivers=" + tt.receiver}, tt.labels...)
			if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
				t.Fatalf("routed elsewhere than %s alone: %v\n%s", tt.receiver, err, out)
			}
		})
	}
}

// amConfig is the part of alertmanager.yml the tests below read.
type amConfig struct {
	Global *struct {
		SlackAPIURL     string `yaml:"slack_api_url"`
		SlackAPIURLFile string `yaml:"slack_api_url_file"`
	} `yaml:"global"`
	Route struct {
		Routes []struct {
			Receiver       string `yaml:"receiver"`
			GroupInterval  string `yaml:"group_interval"`
			RepeatInterval string `yaml:"repeat_interval"`
		} `yaml:"routes"`
	} `yaml:"route"`
	Receivers []struct {
		Name         string `yaml:"name"`
		SlackConfigs []struct {
			APIURL     string `yaml:"api_url"`
			APIURLFile string `yaml:"api_url_file"`
			Channel    string `yaml:"channel"`
		} `yaml:"slack_configs"`
		WebhookConfigs []struct {
			URL string `yaml:"url"`
		} `yaml:"webhook_configs"`
	} `yaml:"receivers"`
}

func readAMConfig(t *testing.T) amConfig {
	t.Helper()
	raw, err := os.ReadFile("alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c amConfig
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// A Slack incoming webhook posts only to the channel it was created for,
// so each Slack receiver reads its own webhook from its own file, and no
// receiver leans on a shared global webhook or a channel override.
func TestEachSlackReceiverHasItsOwnWebhook(t *testing.T) {
	c := readAMConfig(t)
	if c.Global != nil && (c.Global.SlackAPIURL != "" || c.Global.SlackAPIURLFile != "") {
		t.Error("a global Slack webhook: every receiver without its own would post to that one channel")
	}
	files := map[string]string{}
	want := map[string]string{"slack-pages": "pages", "slack-tickets": "tickets"}
	for _, r := range c.Receivers {
		for _, sc := range r.SlackConfigs {
			switch {
			case sc.APIURL != "":
				t.Errorf("%s: the webhook URL, a secret, is inline", r.Name)
			case sc.APIURLFile == "":
				t.Errorf("%s: no api_url_file", r.Name)
			case sc.Channel != "":
				t.Errorf("%s: channel %q, which a webhook ignores: it posts to its own channel", r.Name, sc.Channel)
			}
			if other, dup := files[sc.APIURLFile]; dup {
				t.Errorf("%s and %s read the same webhook %s: they would post to one channel", other, r.Name, sc.APIURLFile)
			}
			files[sc.APIURLFile] = r.Name
			if key, ok := want[r.Name]; ok && filepath.Base(sc.APIURLFile) != key {
				t.Errorf("%s reads %s, want the key %s of the slack-webhook secret", r.Name, sc.APIURLFile, key)
			}
		}
	}
	if len(files) != len(want) {
		t.Errorf("Slack webhooks %v, want one for each of %v", files, want)
	}
}

// The Watchdog reaches the heartbeat receiver well within the period the
// receiver waits before it raises the alarm (alerts/heartbeat's default
// -expect-every, and what compose and Kubernetes run it with).
func TestTheWatchdogRepeatsWellWithinTheHeartbeatsPeriod(t *testing.T) {
	const expectEvery = 5 * time.Minute
	c := readAMConfig(t)
	for _, r := range c.Route.Routes {
		if r.Receiver != "heartbeat" {
			continue
		}
		group, err1 := time.ParseDuration(r.GroupInterval)
		repeat, err2 := time.ParseDuration(r.RepeatInterval)
		if err1 != nil || err2 != nil {
			t.Fatalf("the Watchdog route's intervals: %v %v", err1, err2)
		}
		// A repeat goes out at the first group_interval tick after
		// repeat_interval: at worst their sum apart.
		if worst := group + repeat; worst*3 > expectEvery {
			t.Errorf("the Watchdog may come only every %v; the heartbeat raises the alarm after %v: want at least three chances", worst, expectEvery)
		}
		for _, rc := range c.Receivers {
			if rc.Name == "heartbeat" && (len(rc.SlackConfigs) > 0 || len(rc.WebhookConfigs) != 1 || !strings.HasSuffix(rc.WebhookConfigs[0].URL, "/watchdog")) {
				t.Errorf("the heartbeat receiver is %+v, want one webhook to a heartbeat's /watchdog", rc)
			}
		}
		return
	}
	t.Fatal("no route to the heartbeat receiver")
}

// The Slack templates parse and render with Alertmanager's own template
// engine (on amtool's example data).
func TestSlackTemplatesRender(t *testing.T) {
	out, err := exec.Command(amtool(t), "template", "render", "--template.glob=templates/*.tmpl",
		`--template.text={{ template "parley.slack.title" . }}|{{ template "parley.slack.text" . }}|{{ template "parley.slack.color" . }}`).CombinedOutput()
	if err != nil {
		t.Fatalf("amtool template render: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Dashboard:") || !strings.Contains(string(out), "replica `") {
		t.Fatalf("rendered text lacks the dashboard line or the replicas:\n%s", out)
	}
}

// The Slack title link is Grafana, found from the grafana_url that every
// alert carries (Prometheus's external label), never Alertmanager's own
// address; without grafana_url there is no link rather than a wrong one.
func TestTheSlackLinkIsBuiltFromGrafanaURL(t *testing.T) {
	bin := amtool(t)
	const grafana = "https://grafana.parley.example"
	tests := []struct {
		name        string
		labels      map[string]string
		annotations map[string]string
		want        string
	}{
		{"the rule's full dashboard URL", map[string]string{"grafana_url": grafana},
			map[string]string{"dashboard_url": grafana + "/d/parley-slo?var-slo=ack-availability"}, grafana + "/d/parley-slo?var-slo=ack-availability"},
		{"a dashboard path joined to grafana_url", map[string]string{"grafana_url": grafana},
			map[string]string{"dashboard_url": "/d/parley-overview"}, grafana + "/d/parley-overview"},
		{"Grafana's home when the alert names no board", map[string]string{"grafana_url": grafana}, nil, grafana},
		{"no link without grafana_url", nil, map[string]string{"dashboard_url": "/d/parley-overview"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			labels := map[string]string{"alertname": "ParleyNoReplicaUp", "severity": "critical"}
			maps.Copy(labels, tt.labels)
			data := map[string]any{
				"receiver": "slack-pages", "status": "firing", "externalURL": "http://alertmanager.parley.example:9093",
				"alerts":       []map[string]any{{"status": "firing", "labels": labels, "annotations": tt.annotations}},
				"groupLabels":  map[string]string{"alertname": "ParleyNoReplicaUp"},
				"commonLabels": labels, "commonAnnotations": tt.annotations,
			}
			raw, err := json.Marshal(data)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "data.json")
			if err := os.WriteFile(file, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(bin, "template", "render", "--template.glob=templates/*.tmpl", "--template.data="+file,
				`--template.text=<{{ template "parley.slack.dashboard" . }}>{{ template "parley.slack.text" . }}`).CombinedOutput()
			if err != nil {
				t.Fatalf("amtool template render: %v\n%s", err, out)
			}
			link, text, _ := strings.Cut(strings.TrimPrefix(string(out), "<"), ">")
			if link != tt.want {
				t.Errorf("title link %q, want %q", link, tt.want)
			}
			wantLine := "Dashboard: " + tt.want
			if tt.want == "" {
				wantLine = "Dashboard: none (Prometheus sets no grafana_url external label)"
			}
			if !strings.Contains(text, wantLine) {
				t.Errorf("text lacks %q:\n%s", wantLine, text)
			}
			if strings.Contains(string(out), "alertmanager.parley.example") {
				t.Errorf("links to Alertmanager's own address:\n%s", out)
			}
		})
	}
}

// Every hand-written rule file (the symptom alerts, the datastores', the canary's)
// passes promtool and the unit tests beside it (x.rules.yml has
// x.test.yml), and every alert in it links to a runbook that exists.
func TestSymptomRulesPassPromtoolAndHaveRunbooks(t *testing.T) {
	promtool := testenv.Find(t, "promtool", "prometheus")
	files, _ := filepath.Glob("rules/*.rules.yml")
	if len(files) == 0 {
		t.Fatal("found no rule files in rules/")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
				t.Fatalf("promtool check rules: %v\n%s", err, out)
			}
			cmd := exec.Command(promtool, "test", "rules", strings.TrimSuffix(filepath.Base(file), ".rules.yml")+".test.yml")
			cmd.Dir = "rules"
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("promtool test rules: %v\n%s", err, out)
			}
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			alerts := 0
			for line := range strings.SplitSeq(string(raw), "\n") {
				if name, ok := strings.CutPrefix(strings.TrimSpace(line), "- alert: "); ok {
					alerts++
					if _, err := os.Stat("runbooks/" + name + ".md"); err != nil {
						t.Errorf("alert %s has no runbook: %v", name, err)
					}
					if !strings.Contains(string(raw), "runbooks/"+name+".md") {
						t.Errorf("alert %s does not link its runbook", name)
					}
				}
			}
			if alerts == 0 {
				t.Fatalf("found no alerts in %s", file)
			}
		})
	}
}

// The shared Prometheus configuration is valid and loads every shipped rule
// file through its relative rule_files globs: the symptom rules and each
// SLO's generated rules.
func TestPrometheusConfigLoadsEveryRuleFile(t *testing.T) {
	out, err := exec.Command(testenv.Find(t, "promtool", "prometheus"), "check", "config", "prometheus.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	rules, _ := filepath.Glob("rules/*.rules.yml")
	generated, _ := filepath.Glob("generated/*.rules.yml")
	for _, f := range append(rules, generated...) {
		if !strings.Contains(string(out), "Checking "+f) {
			t.Errorf("prometheus.yml does not load %s:\n%s", f, out)
		}
	}
}

// Every alert of every rule file Prometheus loads links a runbook that
// exists, and the heartbeat's own alarm has one too (alerts/heartbeat
// checks that it links it).
func TestEveryAlertHasARunbook(t *testing.T) {
	rules, _ := filepath.Glob("rules/*.rules.yml")
	generated, _ := filepath.Glob("generated/*.rules.yml")
	alerts := []string{"WatchdogMissing"}
	for _, f := range append(rules, generated...) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(string(raw), "\n") {
			if name, ok := strings.CutPrefix(strings.TrimSpace(line), "- alert: "); ok {
				alerts = append(alerts, name)
				if !strings.Contains(string(raw), "runbooks/"+name+".md") {
					t.Errorf("%s: alert %s does not link its runbook", f, name)
				}
			}
		}
	}
	if len(alerts) < 2 {
		t.Fatal("found no alerts in the rule files")
	}
	for _, name := range alerts {
		if _, err := os.Stat("runbooks/" + name + ".md"); err != nil {
			t.Errorf("alert %s has no runbook: %v", name, err)
		}
	}
}
