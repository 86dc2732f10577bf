// Package alerts holds no Go code of its own: these tests check the
// Alertmanager configuration, its templates and the hand-written rules next
// to them with the real amtool and promtool (Debian's
// prometheus-alertmanager and prometheus packages, installed by .ci/run).
package alerts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleychat/parley/internal/testenv"
)

func amtool(t *testing.T) string { return testenv.Find(t, "amtool", "prometheus-alertmanager") }

func TestAlertmanagerConfigIsValid(t *testing.T) {
	out, err := exec.Command(amtool(t), "check-config", "alertmanager.yml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
}

// Each kind of alert reaches the receiver meant for it.
func TestAlertsAreRoutedBySeverity(t *testing.T) {
	bin := amtool(t)
	tests := []struct {
		name     string
		labels   []string
		receiver string
	}{
		{"the Watchdog goes to its own channel", []string{"alertname=Watchdog", "severity=none"}, "watchdog"},
		{"a page goes to the pages channel", []string{"alertname=ParleyAckAvailabilityBudgetBurn", "severity=critical", "service=parley", "slo=ack-availability"}, "slack-pages"},
		{"a ticket goes to the tickets channel", []string{"alertname=ParleyAckAvailabilityBudgetBurn", "severity=warning", "service=parley", "slo=ack-availability"}, "slack-tickets"},
		{"an absent SLI is a ticket", []string{"alertname=ParleyDeliveryLatencySLIAbsent", "severity=warning", "service=parley"}, "slack-tickets"},
		{"an alert without severity still reaches someone", []string{"alertname=Unknown"}, "slack-tickets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"config", "routes", "test", "--config.file=alertmanager.yml", "--verify.receivers=" + tt.receiver}, tt.labels...)
			if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
				t.Fatalf("routed elsewhere than %s: %v\n%s", tt.receiver, err, out)
			}
		})
	}
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
		t.Fatalf("rendered text lacks the dashboard link or the replicas:\n%s", out)
	}
}

// Every hand-written rule file (the symptom alerts, the datastores')
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
