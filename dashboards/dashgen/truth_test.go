package main

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/parleychat/parley/internal/testenv"
)

// The tests of this file check that the boards tell the truth at 3 a.m.:
// colours that mean something, ratios that read 0 when all is well and
// nothing when nothing happened, firing alerts without the Watchdog and
// with their runbooks, and the canary's row. Where the truth depends on
// PromQL, the real Prometheus (promtool) evaluates the panel's own query.

// Where the rest of the repository is, seen from dashboards/dashgen.
const (
	alertsDir  = "../../alerts"
	k8sDir     = "../../k8s"
	composeDir = "../../compose"
)

// A stat's colour is a claim: thresholds with at least two colours where a
// limit stands behind them, or the neutral text colour and no threshold
// that could turn it green.
func TestStatColoursMeanSomething(t *testing.T) {
	t.Parallel()
	stats := 0
	for _, d := range mustLoadBoards(t) {
		for _, p := range d.allPanels() {
			if p.Type != "stat" && p.Type != "bargauge" {
				continue
			}
			stats++
			defaults := p.defaults()
			colour, _ := defaults["color"].(obj)
			colours := map[string]bool{}
			for _, s := range defaults["thresholds"].(obj)["steps"].([]any) {
				colours[s.(obj)["color"].(string)] = true
			}
			switch colour["mode"] {
			case "thresholds":
				if len(colours) < 2 {
					t.Errorf("%s: %q is coloured by thresholds of one colour %v: it can never change colour", d.UID, p.Title, colours)
				}
			case "fixed":
				if colour["fixedColor"] != neutralColour || len(colours) != 1 || !colours[neutralColour] {
					t.Errorf("%s: %q has the fixed colour %v and thresholds %v, want the neutral %q alone", d.UID, p.Title, colour["fixedColor"], colours, neutralColour)
				}
			default:
				t.Errorf("%s: %q has colour mode %v, want thresholds or fixed", d.UID, p.Title, colour["mode"])
			}
		}
	}
	if stats == 0 {
		t.Fatal("found no stat panels")
	}
}

// The stats whose count has no limit behind it stay neutral, and the
// replica counts are red at 0, amber below replicaFloor and 0 rather than
// "No data" when Prometheus knows no replica.
func TestCountsAreColouredOnlyAgainstALimit(t *testing.T) {
	t.Parallel()
	neutral := map[string][]string{
		"parley-overview": {"WebSocket connections", "Sends/s"},
		"parley-loadtest": {"Connections", "Sends/s", "Deliveries/s"},
	}
	replicas := 0
	for _, d := range mustLoadBoards(t) {
		for _, title := range neutral[d.UID] {
			for _, p := range mustPanelsTitled(t, d, title) {
				if c, _ := p.defaults()["color"].(obj); c["mode"] != "fixed" {
					t.Errorf("%s: %q is coloured %v, want the neutral colour: no limit stands behind it", d.UID, title, c)
				}
			}
		}
		for _, p := range d.allPanels() {
			if p.Type != "stat" || p.Title != "Replicas up" {
				continue
			}
			replicas++
			want := []step{{"red", nil}, {"orange", at(1)}, {"green", at(replicaFloor)}}
			if got := stepsOf(p); !slices.EqualFunc(got, want, sameStep) {
				t.Errorf("%s: %q has thresholds %v, want red, amber from 1, green from %d", d.UID, p.Title, got, replicaFloor)
			}
			if expr := p.Targets[0].Expr; !strings.HasSuffix(expr, " or vector(0)") {
				t.Errorf("%s: %q queries %s, want 0 when no replica is known", d.UID, p.Title, expr)
			}
		}
	}
	if replicas != 2 {
		t.Fatalf("found %d Replicas up stats, want the Overview's and the load test's", replicas)
	}
}

// replicaFloor is the fewest replicas any deployment runs: the replicas
// compose starts, and the HPA's minReplicas in k8s/base and every overlay
// that changes it. Raising them all is a reason to raise the floor, and
// lowering one a reason to lower it.
func TestReplicaFloorIsTheDeploymentsMinimum(t *testing.T) {
	t.Parallel()
	var compose struct{ Services map[string]any }
	mustReadYAML(t, filepath.Join(composeDir, "compose.yaml"), &compose)
	replica := regexp.MustCompile(`^parley-\d+$`)
	counts := map[string]int{}
	for name := range compose.Services {
		if replica.MatchString(name) {
			counts["compose"]++
		}
	}
	var hpa struct {
		Spec struct {
			MinReplicas int `yaml:"minReplicas"`
		}
	}
	mustReadYAML(t, filepath.Join(k8sDir, "base", "hpa.yaml"), &hpa)
	counts["k8s/base"] = hpa.Spec.MinReplicas
	overlays, _ := filepath.Glob(filepath.Join(k8sDir, "overlays", "*", "kustomization.yaml"))
	for _, file := range overlays {
		var k struct {
			Patches []struct {
				Target struct{ Kind string }
				Patch  string
			}
		}
		mustReadYAML(t, file, &k)
		for _, p := range k.Patches {
			if p.Target.Kind != "HorizontalPodAutoscaler" {
				continue
			}
			var ops []struct {
				Op, Path string
				Value    any
			}
			if err := yaml.Unmarshal([]byte(p.Patch), &ops); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			for _, op := range ops {
				if op.Path == "/spec/minReplicas" {
					n, ok := op.Value.(int)
					if !ok {
						t.Fatalf("%s: minReplicas %v is not a number", file, op.Value)
					}
					counts[filepath.Base(filepath.Dir(file))] = n
				}
			}
		}
	}
	if counts["compose"] == 0 || counts["k8s/base"] == 0 || len(counts) < 3 {
		t.Fatalf("found replica counts %v, want compose's, k8s/base's and the overlays'", counts)
	}
	lowest := slices.Min(slices.Collect(maps.Values(counts)))
	if lowest != replicaFloor {
		t.Errorf("the deployments run at least %d replicas (%v), but replicaFloor is %d", lowest, counts, replicaFloor)
	}
}

// Every table of firing alerts leaves out the Watchdog, says so when
// nothing fires, and links each alert's name to its runbook; the Overview
// and the SLO board both have one. Prometheus runs the table's query
// against firing alerts to prove the matchers do what they say.
func TestFiringAlertTablesLeaveOutTheWatchdog(t *testing.T) {
	t.Parallel()
	var boards []string
	for _, d := range mustLoadBoards(t) {
		for _, p := range d.allPanels() {
			firing := slices.ContainsFunc(p.Targets, func(tg Target) bool {
				return strings.Contains(tg.Expr, "ALERTS{") && strings.Contains(tg.Expr, `alertstate="firing"`)
			})
			if !firing {
				continue
			}
			boards = append(boards, d.UID)
			if len(p.Targets) != 1 || p.Targets[0].Expr != firingAlertsQuery {
				t.Errorf("%s: %q queries %v, want %s", d.UID, p.Title, p.Targets, firingAlertsQuery)
			}
			if got := p.defaults()["noValue"]; got != "No alerts firing" {
				t.Errorf("%s: %q says %v when no alert fires, want No alerts firing", d.UID, p.Title, got)
			}
			if got := overrideLinks(p, "alertname"); !slices.Contains(got, runbookBase+"${__value.raw}.md") {
				t.Errorf("%s: %q links alert names to %v, want their runbooks", d.UID, p.Title, got)
			}
		}
	}
	if !slices.Equal(boards, []string{"parley-overview", "parley-slo"}) {
		t.Errorf("found firing-alert tables on %v, want the Overview and the SLO board", boards)
	}

	rules := `groups:
  - name: g
    rules:
      - {alert: Watchdog, expr: vector(1), labels: {severity: none, service: parley}}
      - {alert: ParleyPaged, expr: vector(1), labels: {severity: critical, service: parley}}
      - {alert: ParleyPending, expr: vector(1), for: 1h, labels: {severity: warning, service: parley}}
      - {alert: SomeoneElses, expr: vector(1), labels: {severity: critical, service: other}}
`
	promtoolTest(t, rules, nil, []exprTest{{
		expr: firingAlertsQuery, at: "5m",
		want: []sample{{`ALERTS{alertname="ParleyPaged", alertstate="firing", severity="critical", service="parley"}`, 1}},
	}})
}

// The table's runbook link holds for every shipped alert: it carries
// service="parley" (or the table would not show it), its runbook_url is
// runbookBase + its name + ".md", and that runbook exists.
func TestEveryAlertShowsAndLinksItsRunbook(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(filepath.Join(alertsDir, "rules", "*.rules.yml"))
	generated, _ := filepath.Glob(filepath.Join(alertsDir, "generated", "*.rules.yml"))
	alerts := 0
	for _, file := range append(files, generated...) {
		var f struct {
			Groups []struct {
				Rules []struct {
					Alert       string
					Labels      map[string]string
					Annotations map[string]string
				}
			}
		}
		mustReadYAML(t, file, &f)
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				alerts++
				where := filepath.Base(file) + ": " + r.Alert
				if r.Labels["service"] != "parley" {
					t.Errorf("%s has service %q, want parley: the firing-alerts tables show only service=\"parley\"", where, r.Labels["service"])
				}
				if got, want := r.Annotations["runbook_url"], runbookBase+r.Alert+".md"; got != want {
					t.Errorf("%s: runbook_url %s, want %s, where the tables link it", where, got, want)
				}
				if _, err := os.Stat(filepath.Join(alertsDir, "runbooks", r.Alert+".md")); err != nil {
					t.Errorf("%s: %v", where, err)
				}
			}
		}
	}
	if alerts < 10 {
		t.Fatalf("found %d alerts under %s, want the symptom and SLO alerts", alerts, alertsDir)
	}
}

// The error ratios read 0 for traffic without errors, even before the
// first error made the error series, and nothing for no traffic (0 of 0 is
// no success), which the panel then names instead of "No data".
// Prometheus evaluates each panel's own query.
func TestErrorRatiosReadZeroWhenHealthyAndNothingWithoutTraffic(t *testing.T) {
	t.Parallel()
	boards := map[string]loadedBoard{}
	for _, d := range mustLoadBoards(t) {
		boards[d.UID] = d
	}
	// Per route: /healthy has traffic and no 5xx series, /failing 10%
	// server errors, /quiet had traffic before and none now.
	routeSeries := []string{
		`parley_http_requests_total{route="/healthy", method="GET", code="2xx", instance="a"} 0+60x10`,
		`parley_http_requests_total{route="/failing", method="GET", code="2xx", instance="a"} 0+54x10`,
		`parley_http_requests_total{route="/failing", method="GET", code="5xx", instance="a"} 0+6x10`,
		`parley_http_requests_total{route="/quiet", method="GET", code="2xx", instance="a"} 5+0x10`,
	}
	perRoute := mustPanelsTitled(t, boards["parley-overview"], "Server error ratio by route")
	var tests []exprTest
	for _, p := range perRoute {
		tests = append(tests, exprTest{expr: filled(p.Targets[0].Expr), at: "10m", want: []sample{
			{`{route="/healthy"}`, 0}, {`{route="/failing"}`, 0.1},
		}})
	}
	promtoolTest(t, "", routeSeries, tests)

	// Sends: the failed series exists at zero (the server creates it),
	// acked sends flow, then stop.
	sendSeries := []string{
		`parley_sends_total{outcome="acked", reason="", transport="ws", instance="a"} 0+60x10 600+0x10`,
		`parley_sends_total{outcome="failed", reason="unavailable", transport="ws", instance="a"} 0+0x20`,
	}
	tests = nil
	ratios := append(mustPanelsTitled(t, boards["parley-overview"], "Ack error ratio"),
		mustPanelsTitled(t, boards["parley-loadtest"], "Ack error ratio")...)
	for _, p := range ratios {
		expr := filled(p.Targets[0].Expr)
		tests = append(tests, exprTest{expr: expr, at: "10m", want: []sample{{"{}", 0}}}, exprTest{expr: expr, at: "20m"})
	}
	promtoolTest(t, "", sendSeries, tests)

	for _, p := range append(perRoute, ratios...) {
		if p.Type != "stat" && p.Title != "Server error ratio by route" {
			continue // the load test's graph: the panels beside it show there is no load
		}
		if got, _ := p.defaults()["noValue"].(string); got == "" {
			t.Errorf("%q shows Grafana's No data without traffic, want a noValue that says why", p.Title)
		}
	}
}

// The canary's queries sit in the Overview's canary row, which shows what
// the issue asks of it, and take no instance filter: the canary is not a
// replica.
func TestCanaryRow(t *testing.T) {
	t.Parallel()
	found := map[string]bool{}
	for _, d := range mustLoadBoards(t) {
		row := ""
		for _, p := range d.allPanels() {
			if p.Type == "row" {
				row = p.Title
				continue
			}
			for _, tg := range p.prometheusTargets() {
				if !strings.Contains(tg.Expr, "parley_canary_") {
					continue
				}
				if d.UID != "parley-overview" || row != canaryRow {
					t.Errorf("%s: %q queries the canary outside the Overview's row %q", d.UID, p.Title, canaryRow)
				}
				if strings.Contains(tg.Expr, "instance") {
					t.Errorf("%s: %q filters the canary by replica: %s", d.UID, p.Title, tg.Expr)
				}
				exemplars := tg.Exemplar != nil && *tg.Exemplar
				switch {
				case p.Type == "stat" && strings.Contains(tg.Expr, "parley_canary_probes_total"):
					found["success ratio"] = true
				case p.Type == "stat" && strings.Contains(tg.Expr, "time() - max(parley_canary_last_success_timestamp_seconds)"):
					found["time since the last success"] = true
				case strings.Contains(tg.Expr, "by (le, path) (rate(parley_canary_latency_seconds_bucket") && exemplars:
					found["latency by path with exemplars"] = true
				case strings.Contains(tg.Expr, "sum by (step) (rate(parley_canary_failures_total"):
					found["failures by step"] = true
				}
			}
		}
	}
	for _, want := range []string{"success ratio", "time since the last success", "latency by path with exemplars", "failures by step"} {
		if !found[want] {
			t.Errorf("the canary row lacks its %s", want)
		}
	}
}

// The SLO board shows every SLO the rules have, new ones included: its
// variable reads the slo label's values, and no query names an SLO.
func TestSLOBoardShowsEverySLO(t *testing.T) {
	t.Parallel()
	fixed := regexp.MustCompile(`slo=~?"[^$]`)
	for _, d := range mustLoadBoards(t) {
		if d.UID != "parley-slo" {
			continue
		}
		vars := d.variables()
		if len(vars) != 1 || vars[0]["definition"] != "label_values(slo:objective:ratio, slo)" || vars[0]["type"] != "query" {
			t.Errorf("the SLO variable is %v, want a query of label_values(slo:objective:ratio, slo)", vars)
		}
		for _, p := range d.allPanels() {
			for _, tg := range p.Targets {
				if fixed.MatchString(tg.Expr) {
					t.Errorf("%q names an SLO: %s", p.Title, tg.Expr)
				}
			}
		}
		return
	}
	t.Fatal("no parley-slo board")
}

// exprTest is one PromQL expression evaluated at a time, with the samples
// it must give (none: an empty result).
type exprTest struct {
	expr, at string
	want     []sample
}

type sample struct {
	labels string
	value  float64
}

// promtoolTest runs promtool's rule unit tests: rules (a rule file's
// content, or "" for none) evaluated every minute over series given as
// "selector values", and each exprTest's expression checked at its time.
func promtoolTest(t *testing.T, rules string, series []string, tests []exprTest) {
	t.Helper()
	promtool := testenv.Find(t, "promtool", "prometheus")
	dir := t.TempDir()
	type inputSeries struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	}
	type expSample struct {
		Labels string  `yaml:"labels"`
		Value  float64 `yaml:"value"`
	}
	type exprCase struct {
		Expr       string      `yaml:"expr"`
		EvalTime   string      `yaml:"eval_time"`
		ExpSamples []expSample `yaml:"exp_samples"`
	}
	type unitTest struct {
		Interval    string        `yaml:"interval"`
		InputSeries []inputSeries `yaml:"input_series"`
		Exprs       []exprCase    `yaml:"promql_expr_test"`
	}
	file := struct {
		RuleFiles          []string   `yaml:"rule_files"`
		EvaluationInterval string     `yaml:"evaluation_interval"`
		Tests              []unitTest `yaml:"tests"`
	}{RuleFiles: []string{}, EvaluationInterval: "1m"}
	if rules != "" {
		mustWrite(t, filepath.Join(dir, "rules.yml"), rules)
		file.RuleFiles = []string{"rules.yml"}
	}
	test := unitTest{Interval: "1m", InputSeries: []inputSeries{}}
	for _, s := range series {
		selector, values, ok := strings.Cut(s, "} ")
		if !ok {
			t.Fatalf("series %q: want a selector, a space and values", s)
		}
		test.InputSeries = append(test.InputSeries, inputSeries{selector + "}", values})
	}
	for _, e := range tests {
		c := exprCase{Expr: e.expr, EvalTime: e.at, ExpSamples: []expSample{}}
		for _, s := range e.want {
			c.ExpSamples = append(c.ExpSamples, expSample{s.labels, s.value})
		}
		test.Exprs = append(test.Exprs, c)
	}
	file.Tests = []unitTest{test}
	raw, err := yaml.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "test.yml"), string(raw))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "test", "rules", "test.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s\n%s", err, out, raw)
	}
}

// filled stands in for Grafana: the boards use variables only as
// label=~"$var" matchers and [$__rate_interval] windows (the conventions
// test checks), which become any value and a window of five scrapes.
func filled(expr string) string {
	expr = strings.ReplaceAll(expr, "[$__rate_interval]", "[5m]")
	return regexp.MustCompile(`=~"\$\w+"`).ReplaceAllString(expr, `=~".+"`)
}

// mustPanelsTitled returns the board's panels with that title, at least
// one.
func mustPanelsTitled(t *testing.T, d loadedBoard, title string) []*Panel {
	t.Helper()
	var ps []*Panel
	for _, p := range d.allPanels() {
		if p.Title == title && p.Type != "row" {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		t.Fatalf("%s: no panel %q", d.UID, title)
	}
	return ps
}

// stepsOf reads a panel's threshold steps back.
func stepsOf(p *Panel) []step {
	var steps []step
	for _, s := range p.defaults()["thresholds"].(obj)["steps"].([]any) {
		s := s.(obj)
		st := step{color: s["color"].(string)}
		if v, ok := s["value"].(float64); ok {
			st.value = &v
		}
		steps = append(steps, st)
	}
	return steps
}

func sameStep(a, b step) bool {
	return a.color == b.color && (a.value == nil) == (b.value == nil) && (a.value == nil || *a.value == *b.value)
}

func (s step) String() string {
	if s.value == nil {
		return s.color
	}
	return s.color + "@" + strconv.FormatFloat(*s.value, 'g', -1, 64)
}

// overrideLinks returns the data link URLs a panel's overrides put on the
// named field.
func overrideLinks(p *Panel, field string) []string {
	var urls []string
	overrides, _ := p.FieldConfig["overrides"].([]any)
	for _, o := range overrides {
		o := o.(obj)
		if m := o["matcher"].(obj); m["id"] != "byName" || m["options"] != field {
			continue
		}
		for _, prop := range o["properties"].([]any) {
			prop := prop.(obj)
			if prop["id"] != "links" {
				continue
			}
			for _, l := range prop["value"].([]any) {
				urls = append(urls, l.(obj)["url"].(string))
			}
		}
	}
	return urls
}

func mustReadYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
