package k8s

import (
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	yamlv3 "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
)

// What the manifests share with the rest of the repository.
const (
	alertsDir     = "../alerts"
	dashboardsDir = "../dashboards"
)

// ruleFiles are the rule files Prometheus loads (alerts/prometheus.yml), in
// the order the PrometheusRule holds their groups.
func ruleFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"rules/*.rules.yml", "generated/*.rules.yml"} {
		matches, err := filepath.Glob(filepath.Join(alertsDir, pattern))
		if err != nil || len(matches) == 0 {
			t.Fatalf("%s: no rule files (%v)", pattern, err)
		}
		slices.Sort(matches)
		files = append(files, matches...)
	}
	return files
}

// The PrometheusRule carries exactly the groups of the rule files, read by
// Prometheus's own parser: every name, expression, duration, label and
// annotation as written.
func TestPrometheusRuleHoldsTheRuleFilesGroups(t *testing.T) {
	t.Parallel()
	var want []rulefmt.RuleGroup
	for _, f := range ruleFiles(t) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		groups, errs := rulefmt.Parse(raw, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
		if len(errs) > 0 {
			t.Fatalf("%s: %v", f, errs)
		}
		want = append(want, groups.Groups...)
	}
	for _, dir := range withServer {
		t.Run(dir, func(t *testing.T) {
			rules := all[*monitoringv1.PrometheusRule](rendered(t, dir))
			if len(rules) != 1 {
				t.Fatalf("%d PrometheusRules, want 1", len(rules))
			}
			got := rules[0].Spec.Groups
			if len(got) != len(want) {
				t.Fatalf("%d groups, the rule files have %d: run go run ./k8s/k8sgen", len(got), len(want))
			}
			for i, w := range want {
				g := got[i]
				if g.Name != w.Name {
					t.Errorf("group %d is %s, want %s", i, g.Name, w.Name)
					continue
				}
				if d := durationOf(t, g.Interval); d != w.Interval {
					t.Errorf("%s: interval %v, want %v", w.Name, d, w.Interval)
				}
				if (g.QueryOffset == nil) != (w.QueryOffset == nil) || (w.QueryOffset != nil && durationOf(t, g.QueryOffset) != *w.QueryOffset) {
					t.Errorf("%s: query_offset differs", w.Name)
				}
				limit := 0
				if g.Limit != nil {
					limit = *g.Limit
				}
				if limit != w.Limit {
					t.Errorf("%s: limit %d, want %d", w.Name, limit, w.Limit)
				}
				if !maps.Equal(g.Labels, w.Labels) {
					t.Errorf("%s: labels %v, want %v", w.Name, g.Labels, w.Labels)
				}
				if len(g.Rules) != len(w.Rules) {
					t.Errorf("%s: %d rules, want %d", w.Name, len(g.Rules), len(w.Rules))
					continue
				}
				for j, wr := range w.Rules {
					gr := g.Rules[j]
					name := w.Name + "/" + wr.Alert + wr.Record
					if gr.Alert != wr.Alert || gr.Record != wr.Record {
						t.Errorf("%s: rule %d is %s%s", name, j, gr.Alert, gr.Record)
					}
					if gr.Expr.String() != wr.Expr {
						t.Errorf("%s: expr\n got %q\nwant %q", name, gr.Expr.String(), wr.Expr)
					}
					if d := durationOf(t, gr.For); d != wr.For {
						t.Errorf("%s: for %v, want %v", name, d, wr.For)
					}
					var keep *monitoringv1.Duration
					if gr.KeepFiringFor != nil {
						d := monitoringv1.Duration(*gr.KeepFiringFor)
						keep = &d
					}
					if d := durationOf(t, keep); d != wr.KeepFiringFor {
						t.Errorf("%s: keep_firing_for %v, want %v", name, d, wr.KeepFiringFor)
					}
					if !maps.Equal(gr.Labels, wr.Labels) {
						t.Errorf("%s: labels\n got %v\nwant %v", name, gr.Labels, wr.Labels)
					}
					if !maps.Equal(gr.Annotations, wr.Annotations) {
						t.Errorf("%s: annotations\n got %v\nwant %v", name, gr.Annotations, wr.Annotations)
					}
				}
			}
		})
	}
}

func durationOf(t *testing.T, d *monitoringv1.Duration) model.Duration {
	t.Helper()
	if d == nil || *d == "" {
		return 0
	}
	v, err := model.ParseDuration(string(*d))
	if err != nil {
		t.Fatalf("duration %q: %v", *d, err)
	}
	return v
}

// Each dashboard is one ConfigMap for the Grafana sidecar, holding the file
// unchanged.
func TestDashboardConfigMapsHoldTheDashboardsByteForByte(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards (%v)", err)
	}
	for _, dir := range withServer {
		t.Run(dir, func(t *testing.T) {
			held := map[string]string{}
			for _, cm := range all[*corev1.ConfigMap](rendered(t, dir)) {
				if cm.Labels["grafana_dashboard"] != "1" {
					continue
				}
				if len(cm.Data) != 1 || len(cm.BinaryData) != 0 {
					t.Errorf("ConfigMap %s holds %d entries, want one dashboard", cm.Name, len(cm.Data)+len(cm.BinaryData))
				}
				for key, data := range cm.Data {
					if _, dup := held[key]; dup {
						t.Errorf("%s is in two ConfigMaps", key)
					}
					held[key] = data
				}
			}
			for _, f := range files {
				want, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				key := filepath.Base(f)
				got, ok := held[key]
				switch {
				case !ok:
					t.Errorf("%s: no ConfigMap holds it: run go run ./k8s/k8sgen", key)
				case got != string(want):
					t.Errorf("%s: the ConfigMap's copy differs from the file: run go run ./k8s/k8sgen", key)
				}
				delete(held, key)
			}
			for key := range held {
				t.Errorf("%s: a dashboard ConfigMap for a file dashboards/ no longer has", key)
			}
		})
	}
}

// The Alertmanager resource runs alerts/alertmanager.yml with its Slack
// template, and reads each Slack receiver's webhook from its own key of the
// Secret slack-webhook that the overlays generate.
func TestAlertmanagerRunsTheSharedConfiguration(t *testing.T) {
	t.Parallel()
	original, err := os.ReadFile(filepath.Join(alertsDir, "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := yamlv3.Unmarshal(original, &want); err != nil {
		t.Fatal(err)
	}
	const secretsDir, configDir, webhookSecret = "/etc/alertmanager/secrets", "/etc/alertmanager/config", "slack-webhook"
	var webhookKeys []string
	for _, r := range want["receivers"].([]any) {
		slack, _ := r.(map[string]any)["slack_configs"].([]any)
		for _, c := range slack {
			urlFile, _ := c.(map[string]any)["api_url_file"].(string)
			if path.Dir(urlFile) != path.Join(secretsDir, webhookSecret) {
				t.Fatalf("api_url_file %q is not a key of the Secret %s as the operator mounts it", urlFile, webhookSecret)
			}
			webhookKeys = append(webhookKeys, path.Base(urlFile))
		}
	}
	if len(webhookKeys) < 2 {
		t.Fatalf("webhook keys %v, want one per Slack receiver (pages and tickets)", webhookKeys)
	}
	// Alertmanager resolves relative templates against its configuration
	// file's directory; under the operator the templates sit in the
	// configuration Secret's mount instead, so the copy points there.
	var patterns []any
	for _, p := range want["templates"].([]any) {
		if s := p.(string); !path.IsAbs(s) {
			p = path.Join(configDir, path.Base(s))
		}
		patterns = append(patterns, p)
	}
	want["templates"] = patterns
	templates, err := filepath.Glob(filepath.Join(alertsDir, "templates", "*.tmpl"))
	if err != nil || len(templates) == 0 {
		t.Fatalf("no templates (%v)", err)
	}

	for _, dir := range withServer {
		t.Run(dir, func(t *testing.T) {
			m := rendered(t, dir)
			ams := all[*monitoringv1.Alertmanager](m)
			if len(ams) != 1 {
				t.Fatalf("%d Alertmanagers, want 1", len(ams))
			}
			am := ams[0]
			if !slices.Contains(am.Spec.Secrets, webhookSecret) {
				t.Errorf("spec.secrets %v leaves out %s: the operator would not mount the webhook", am.Spec.Secrets, webhookSecret)
			}
			if am.Spec.AlertmanagerConfigSelector != nil {
				t.Error("alertmanagerConfigSelector is set: AlertmanagerConfig resources would add routes beside alertmanager.yml's")
			}
			name := am.Spec.ConfigSecret
			if name == "" {
				name = "alertmanager-" + am.Name
			}
			secret := named[*corev1.Secret](t, m, name)
			data := secretData(secret)
			var got map[string]any
			if err := yamlv3.Unmarshal([]byte(data["alertmanager.yaml"]), &got); err != nil {
				t.Fatalf("alertmanager.yaml: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Error("alertmanager.yaml differs from alerts/alertmanager.yml beyond its templates' directory: run go run ./k8s/k8sgen")
			}
			for _, f := range templates {
				tmpl, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				key := filepath.Base(f)
				if data[key] != string(tmpl) {
					t.Errorf("%s: missing or different from alerts/templates: run go run ./k8s/k8sgen", key)
				}
				if !slices.ContainsFunc(patterns, func(p any) bool {
					ok, _ := path.Match(p.(string), path.Join(configDir, key))
					return ok
				}) {
					t.Errorf("%s: no templates entry loads it", key)
				}
			}
			if dir == base {
				return
			}
			webhook := secretData(named[*corev1.Secret](t, m, webhookSecret))
			seen := map[string]string{}
			for _, key := range webhookKeys {
				url := webhook[key]
				if url == "" {
					t.Errorf("Secret %s has no %s", webhookSecret, key)
				}
				// One webhook posts to one channel: two receivers on
				// one URL would land in one channel.
				if other, dup := seen[url]; dup && url != "" {
					t.Errorf("Secret %s: %s and %s are the same webhook", webhookSecret, other, key)
				}
				seen[url] = key
			}
		})
	}
}

func secretData(s *corev1.Secret) map[string]string {
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	for k, v := range s.StringData {
		out[k] = v
	}
	return out
}

// The overlays read their secrets from gitignored files, and each has an
// example beside it (which the tests render with).
func TestOverlaySecretsStayOutOfGit(t *testing.T) {
	t.Parallel()
	ignore, err := os.ReadFile(".gitignore")
	if err != nil {
		t.Fatal(err)
	}
	ignored := strings.Split(string(ignore), "\n")
	for _, dir := range overlays {
		var k struct {
			SecretGenerator []struct {
				Name string   `yaml:"name"`
				Envs []string `yaml:"envs"`
			} `yaml:"secretGenerator"`
		}
		data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := yamlv3.Unmarshal(data, &k); err != nil {
			t.Fatal(err)
		}
		if len(k.SecretGenerator) == 0 {
			t.Errorf("%s: no secretGenerator", dir)
		}
		for _, g := range k.SecretGenerator {
			if len(g.Envs) == 0 {
				t.Errorf("%s: Secret %s is not read from a file", dir, g.Name)
			}
			for _, env := range g.Envs {
				if _, err := os.Stat(filepath.Join(dir, env+".example")); err != nil {
					t.Errorf("%s: %s has no example beside it", dir, env)
				}
				pattern := "/overlays/*/" + env
				if !slices.Contains(ignored, pattern) {
					t.Errorf("%s: %s is not gitignored (want %s in k8s/.gitignore)", dir, env, pattern)
				}
			}
		}
	}
}
