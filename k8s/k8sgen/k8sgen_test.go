package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// repoRoot is the repository's root, from this package's directory.
const repoRoot = "../.."

// The committed files are what k8sgen writes from the committed alerts/ and
// dashboards/.
func TestGeneratedFilesAreUpToDate(t *testing.T) {
	t.Parallel()
	want, err := generate(os.DirFS(repoRoot))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(repoRoot, filepath.FromSlash(outDir))
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		got, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if w, ok := want[e.Name()]; !ok {
			t.Errorf("%s: not generated any more", e.Name())
		} else if !bytes.Equal(got, w) {
			t.Errorf("%s: stale", e.Name())
		}
	}
	for name := range want {
		if !slices.Contains(names, name) {
			t.Errorf("%s: missing", name)
		}
	}
	if t.Failed() {
		t.Log("run go run ./k8s/k8sgen from the repository's root, and commit the result")
	}
}

// fixture is a small repository with one of each input.
func fixture() fstest.MapFS {
	return fstest.MapFS{
		"alerts/rules/a.rules.yml": {Data: []byte(`groups:
  - name: a
    rules:
      - alert: A
        expr: up{job="parley"} == 0
        for: 2m
        labels: {severity: critical}
        annotations:
          summary: "{{ $labels.instance }} is down"
`)},
		"alerts/generated/b.rules.yml": {Data: []byte(`groups:
  - name: b
    interval: 5m
    rules:
      - record: b:sum
        expr: sum(x)
`)},
		// No final newline, a trailing space, a tab and a non-ASCII
		// character: the copy must keep every byte.
		"dashboards/board.json": {Data: []byte("{\n  \"title\": \"Überblick\", \n\t\"uid\": \"b\"\n}")},
		"alerts/alertmanager.yml": {Data: []byte(`# comment
global:
  resolve_timeout: 5m

templates:
  - templates/*.tmpl   # relative to this file

route: {receiver: r}
receivers: [{name: r}]
`)},
		"alerts/templates/slack.tmpl": {Data: []byte(`{{ define "x" }}x{{ end }}`)},
	}
}

func TestGenerateCopiesEveryInputUnchanged(t *testing.T) {
	t.Parallel()
	files, err := generate(fixture())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	want := []string{"alertmanager-config.yaml", "dashboard-board.yaml", "kustomization.yaml", "prometheusrule.yaml"}
	if !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}

	var rule monitoringv1.PrometheusRule
	mustDecode(t, files["prometheusrule.yaml"], &rule)
	groups := rule.Spec.Groups
	if len(groups) != 2 || groups[0].Name != "a" || groups[1].Name != "b" {
		t.Fatalf("groups %+v, want a (rules/) then b (generated/)", groups)
	}
	a := groups[0].Rules[0]
	if a.Expr.String() != `up{job="parley"} == 0` || a.For == nil || *a.For != "2m" || a.Annotations["summary"] != "{{ $labels.instance }} is down" {
		t.Errorf("rule A changed: %+v", a)
	}
	if groups[1].Interval == nil || *groups[1].Interval != "5m" {
		t.Errorf("group b's interval changed: %+v", groups[1])
	}

	var cm corev1.ConfigMap
	mustDecode(t, files["dashboard-board.yaml"], &cm)
	if got, want := cm.Data["board.json"], string(fixture()["dashboards/board.json"].Data); got != want {
		t.Errorf("dashboard\n got %q\nwant %q", got, want)
	}
	if cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("labels %v: the Grafana sidecar looks for grafana_dashboard: \"1\"", cm.Labels)
	}

	var secret corev1.Secret
	mustDecode(t, files["alertmanager-config.yaml"], &secret)
	if got := secret.StringData["slack.tmpl"]; got != `{{ define "x" }}x{{ end }}` {
		t.Errorf("template %q", got)
	}
	if !strings.Contains(secret.StringData["alertmanager.yaml"], "  - /etc/alertmanager/config/*.tmpl   # relative to this file\n") {
		t.Errorf("alertmanager.yaml:\n%s", secret.StringData["alertmanager.yaml"])
	}
	for name, data := range files {
		if !bytes.HasPrefix(data, []byte("# Code generated ")) || !bytes.Contains(data[:bytes.IndexByte(data, '\n')], []byte("DO NOT EDIT.")) {
			t.Errorf("%s: no generated-code header", name)
		}
	}
}

func mustDecode(t *testing.T, data []byte, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
}

func TestRewriteTemplatesChangesOnlyRelativeEntries(t *testing.T) {
	t.Parallel()
	in := `# templates: not this line
templates:
  - templates/*.tmpl
  - "more/extra.tmpl"
  - /abs/*.tmpl
route: {receiver: r} # templates/*.tmpl
`
	want := `# templates: not this line
templates:
  - /etc/alertmanager/config/*.tmpl
  - "/etc/alertmanager/config/extra.tmpl"
  - /abs/*.tmpl
route: {receiver: r} # templates/*.tmpl
`
	got, patterns, err := rewriteTemplates([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if w := []string{"/etc/alertmanager/config/*.tmpl", "/etc/alertmanager/config/extra.tmpl", "/abs/*.tmpl"}; !slices.Equal(patterns, w) {
		t.Errorf("patterns %v, want %v", patterns, w)
	}
}

func TestGenerateRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		edit  func(fstest.MapFS)
		error string
	}{
		{"a rule field a PrometheusRule cannot carry", func(fs fstest.MapFS) {
			fs["alerts/rules/a.rules.yml"] = &fstest.MapFile{Data: []byte("groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        severity: critical\n")}
		}, `unknown field "severity"`},
		{"a rule file without groups", func(fs fstest.MapFS) {
			fs["alerts/generated/b.rules.yml"] = &fstest.MapFile{Data: []byte("groups: []\n")}
		}, "no rule groups"},
		{"no dashboards", func(fs fstest.MapFS) {
			delete(fs, "dashboards/board.json")
		}, "dashboards/*.json: no files"},
		{"a dashboard that is not JSON", func(fs fstest.MapFS) {
			fs["dashboards/board.json"] = &fstest.MapFile{Data: []byte("{")}
		}, "not valid JSON"},
		{"an Alertmanager configuration without templates", func(fs fstest.MapFS) {
			fs["alerts/alertmanager.yml"] = &fstest.MapFile{Data: []byte("route: {receiver: r}\n")}
		}, "no templates list"},
		{"a template no entry loads", func(fs fstest.MapFS) {
			fs["alerts/templates/other.txt.tmpl"] = &fstest.MapFile{Data: []byte("x")}
			fs["alerts/alertmanager.yml"] = &fstest.MapFile{Data: []byte("templates: [templates/slack.tmpl]\n")}
		}, "no entry of templates"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := fixture()
			tc.edit(fs)
			_, err := generate(fs)
			if err == nil || !strings.Contains(err.Error(), tc.error) {
				t.Errorf("error %v, want one saying %q", err, tc.error)
			}
		})
	}
}

// write leaves the directory holding exactly the generated files, and
// does not touch those that did not change.
func TestWriteReplacesTheDirectorysFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, data := range map[string]string{"stale.yaml": "old", "same.yaml": "same", "changed.yaml": "before"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	same, err := os.Stat(filepath.Join(dir, "same.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"same.yaml": []byte("same"), "changed.yaml": []byte("after"), "new.yaml": []byte("new")}
	if err := write(dir, files); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"changed.yaml", "new.yaml", "same.yaml"}; !slices.Equal(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
	for name, want := range files {
		if got, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(got, want) {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if after, err := os.Stat(filepath.Join(dir, "same.yaml")); err != nil || !after.ModTime().Equal(same.ModTime()) {
		t.Error("rewrote a file that had not changed")
	}
}

func TestRunRefusesArguments(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	if err := run(t.Context(), []string{"extra"}, env(nil), io.Discard, &stderr); err == nil || !strings.Contains(err.Error(), `unexpected arguments ["extra"]`) {
		t.Errorf("got %v, want a stray argument refused", err)
	}
	if err := run(t.Context(), []string{"-h"}, env(nil), io.Discard, &stderr); !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr.String(), "-root") {
		t.Errorf("-h: got %v and %q, want flag.ErrHelp and the flags", err, stderr.String())
	}
}

// env is an environment of the variables in m alone, for run's getenv.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}
