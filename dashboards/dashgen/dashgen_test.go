package main

import (
	"encoding/json"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const dashboardsDir = ".."

// The committed boards are what the generator writes: an edit to boards.go
// without `make dashboards`, or a hand edit of the JSON, fails here.
func TestDashboardsAreFresh(t *testing.T) {
	t.Parallel()
	files, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := stale(dashboardsDir, files); err != nil {
		t.Fatal(err)
	}
}

func TestStaleFilesAreNamed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string][]byte{"a.json": []byte("{}\n"), "b.json": []byte("{}\n")}
	mustWrite(t, filepath.Join(dir, "a.json"), "{}\n")
	mustWrite(t, filepath.Join(dir, "b.json"), "{\"edited\": true}\n")
	mustWrite(t, filepath.Join(dir, "old.json"), "{}\n")
	mustWrite(t, filepath.Join(dir, "README.md"), "not a dashboard\n")
	err := stale(dir, files)
	if err == nil {
		t.Fatal("got no error, want b.json and old.json named")
	}
	msg := err.Error()
	if !strings.Contains(msg, "b.json") || !strings.Contains(msg, "old.json (no longer generated)") ||
		strings.Contains(msg, "a.json") || strings.Contains(msg, "README.md") {
		t.Fatalf("got %q, want b.json and old.json named, and neither a.json nor README.md", msg)
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	t.Parallel()
	first, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	second, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range first {
		if string(second[name]) != string(content) {
			t.Errorf("%s differs between two runs", name)
		}
	}
}

func TestBoardsHaveTheFixedUIDs(t *testing.T) {
	t.Parallel()
	var got []string
	for _, d := range mustLoadBoards(t) {
		got = append(got, d.UID)
	}
	want := []string{"parley-loadtest", "parley-overview", "parley-realtime", "parley-slo", "parley-store-runtime"}
	if !slices.Equal(got, want) {
		t.Fatalf("got uids %v, want %v", got, want)
	}
}

func TestPanelIDsAreUnique(t *testing.T) {
	t.Parallel()
	for _, d := range mustLoadBoards(t) {
		seen := map[int]string{}
		for _, p := range d.allPanels() {
			if p.ID <= 0 {
				t.Errorf("%s: panel %q has id %d, want a positive id", d.UID, p.Title, p.ID)
			}
			if other, ok := seen[p.ID]; ok {
				t.Errorf("%s: panels %q and %q share id %d", d.UID, other, p.Title, p.ID)
			}
			seen[p.ID] = p.Title
		}
	}
}

// Panels sit inside the 24-column grid and never cover each other. The
// panels of a collapsed row are checked among themselves: Grafana pushes
// the rest of the board down when the row opens.
func TestPanelsDoNotOverlap(t *testing.T) {
	t.Parallel()
	for _, d := range mustLoadBoards(t) {
		layers := [][]*Panel{d.Panels}
		for _, p := range d.Panels {
			if p.Type == "row" && len(p.Panels) > 0 {
				layers = append(layers, p.Panels)
				for _, c := range p.Panels {
					if c.GridPos.Y <= p.GridPos.Y {
						t.Errorf("%s: %q sits above its row %q", d.UID, c.Title, p.Title)
					}
				}
			}
		}
		for _, layer := range layers {
			for i, a := range layer {
				g := a.GridPos
				if g.X < 0 || g.Y < 0 || g.W <= 0 || g.H <= 0 || g.X+g.W > gridWidth {
					t.Errorf("%s: %q has gridPos %+v, outside the grid", d.UID, a.Title, g)
				}
				for _, b := range layer[i+1:] {
					if overlap(a.GridPos, b.GridPos) {
						t.Errorf("%s: %q %+v overlaps %q %+v", d.UID, a.Title, a.GridPos, b.Title, b.GridPos)
					}
				}
			}
		}
	}
}

func overlap(a, b GridPos) bool {
	return a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H
}

func TestTargetsUseTheProvisionedDatasources(t *testing.T) {
	t.Parallel()
	known := map[string]string{"prometheus": "prometheus", "loki": "loki", "tempo": "tempo"}
	for _, d := range mustLoadBoards(t) {
		for _, p := range d.allPanels() {
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: %q has no query", d.UID, p.Title)
			}
			for _, tg := range p.Targets {
				ds := tg.Datasource
				if known[ds.UID] != ds.Type {
					t.Errorf("%s: %q queries data source %+v, want one of the provisioned uids with its type", d.UID, p.Title, ds)
				}
				if p.Datasource == nil || *p.Datasource != ds {
					t.Errorf("%s: %q has data source %v but a query on %+v", d.UID, p.Title, p.Datasource, ds)
				}
				switch ds.UID {
				case "prometheus", "loki":
					if strings.TrimSpace(tg.Expr) == "" {
						t.Errorf("%s: %q query %s has no expr", d.UID, p.Title, tg.RefID)
					}
				case "tempo":
					if tg.QueryType != "traceql" || tg.Query == "" {
						t.Errorf("%s: %q: got Tempo query %+v, want a TraceQL query", d.UID, p.Title, tg)
					}
				}
			}
		}
	}
}

var (
	rangeWindow = regexp.MustCompile(`\[([^\]]*)\]`)
	variableUse = regexp.MustCompile(`\$\{?(\w+)`)
	matcherUse  = regexp.MustCompile(`=~"\$(\w+)"`)
)

// Rate windows follow the zoom through $__rate_interval, and variables
// appear only as whole regex matchers, which a contract test can replace
// with .+ to get valid PromQL.
func TestPrometheusQueriesFollowTheConventions(t *testing.T) {
	t.Parallel()
	for _, d := range mustLoadBoards(t) {
		defined := map[string]bool{}
		for _, v := range d.variables() {
			defined[v["name"].(string)] = true
		}
		for _, p := range d.allPanels() {
			for _, tg := range p.prometheusTargets() {
				for _, m := range rangeWindow.FindAllStringSubmatch(tg.Expr, -1) {
					if m[1] != "$__rate_interval" {
						t.Errorf("%s: %q: window [%s] in %s, want [$__rate_interval]", d.UID, p.Title, m[1], tg.Expr)
					}
				}
				rest := strings.ReplaceAll(tg.Expr, "[$__rate_interval]", "")
				for _, m := range matcherUse.FindAllStringSubmatch(rest, -1) {
					if !defined[m[1]] {
						t.Errorf("%s: %q uses $%s, which the board does not define", d.UID, p.Title, m[1])
					}
				}
				rest = matcherUse.ReplaceAllString(rest, "")
				if m := variableUse.FindString(rest); m != "" {
					t.Errorf("%s: %q uses %s outside a label=~\"$var\" matcher: %s", d.UID, p.Title, m, tg.Expr)
				}
			}
		}
	}
}

var selector = regexp.MustCompile(`\b(up|parley_\w+|go_\w+|process_\w+)(\{[^}]*\})?`)

// On the boards with an instance variable, every selector of a replica's
// series is filtered by it, and the runtime series that other jobs export
// too are also filtered by job.
func TestServerSeriesAreFilteredByInstance(t *testing.T) {
	t.Parallel()
	for _, d := range mustLoadBoards(t) {
		if !slices.ContainsFunc(d.variables(), func(v obj) bool { return v["name"] == "instance" }) {
			continue
		}
		for _, p := range d.serverPanels() {
			for _, tg := range p.prometheusTargets() {
				for _, m := range selector.FindAllStringSubmatch(tg.Expr, -1) {
					name, matchers := m[1], m[2]
					if strings.HasPrefix(name, "parley_canary_") {
						continue // the canary's, not a replica's (TestCanaryRow)
					}
					if !strings.Contains(matchers, `instance=~"$instance"`) {
						t.Errorf("%s: %q: %s%s is not filtered by instance", d.UID, p.Title, name, matchers)
					}
					if !strings.HasPrefix(name, "parley_") && !strings.Contains(matchers, `job="parley"`) {
						t.Errorf("%s: %q: %s%s is not filtered by job", d.UID, p.Title, name, matchers)
					}
				}
			}
		}
	}
}

func TestInstanceVariable(t *testing.T) {
	t.Parallel()
	want := []string{"parley-loadtest", "parley-overview", "parley-realtime", "parley-store-runtime"}
	var got []string
	for _, d := range mustLoadBoards(t) {
		for _, v := range d.variables() {
			if v["name"] != "instance" {
				continue
			}
			got = append(got, d.UID)
			if v["multi"] != true || v["includeAll"] != true || v["allValue"] != ".+" {
				t.Errorf("%s: instance variable is %v, want multi, with All as .+", d.UID, v)
			}
			if v["definition"] != `label_values(up{job="parley"}, instance)` {
				t.Errorf("%s: instance variable reads %v", d.UID, v["definition"])
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got the instance variable on %v, want %v", got, want)
	}
}

// The load generator's queries cannot pass a contract test against a
// server, so they must all sit in the one collapsed row that such tests
// skip, and that row must hold nothing else.
func TestLoadGeneratorQueriesAreMarked(t *testing.T) {
	t.Parallel()
	rows := 0
	for _, d := range mustLoadBoards(t) {
		for _, p := range d.Panels {
			if p.Type != "row" || p.Title != loadGeneratorRow {
				continue
			}
			rows++
			if p.Collapsed == nil || !*p.Collapsed || len(p.Panels) == 0 {
				t.Errorf("%s: row %q must be collapsed and hold its panels", d.UID, p.Title)
			}
			for _, c := range p.Panels {
				for _, tg := range c.prometheusTargets() {
					if !strings.Contains(tg.Expr, "parley_loadtest_") {
						t.Errorf("%s: %q in row %q queries no load generator metric: %s", d.UID, c.Title, p.Title, tg.Expr)
					}
				}
			}
		}
		for _, p := range d.serverPanels() {
			for _, tg := range p.Targets {
				if strings.Contains(tg.Expr, "parley_loadtest_") {
					t.Errorf("%s: %q queries a load generator metric outside row %q", d.UID, p.Title, loadGeneratorRow)
				}
			}
		}
	}
	if rows != 1 {
		t.Fatalf("got %d %q rows, want exactly 1", rows, loadGeneratorRow)
	}
}

// A heatmap of Prometheus buckets must not be bucketed again, and its
// exemplars must be asked for, or the link from a slow cell to its trace
// is lost.
func TestHeatmapsShowPrometheusBucketsWithExemplars(t *testing.T) {
	t.Parallel()
	heatmaps := 0
	for _, d := range mustLoadBoards(t) {
		for _, p := range d.allPanels() {
			if p.Type != "heatmap" {
				continue
			}
			heatmaps++
			if p.Options["calculate"] != false {
				t.Errorf("%s: %q: got calculate %v, want false", d.UID, p.Title, p.Options["calculate"])
			}
			for _, tg := range p.Targets {
				if tg.Format != "heatmap" || tg.Exemplar == nil || !*tg.Exemplar || !strings.Contains(tg.Expr, "_bucket") {
					t.Errorf("%s: %q: got query %+v, want buckets in format heatmap with exemplars", d.UID, p.Title, tg)
				}
			}
		}
	}
	if heatmaps == 0 {
		t.Fatal("found no heatmap")
	}
}

func TestEveryBoardLinksToTheOthers(t *testing.T) {
	t.Parallel()
	for _, d := range mustLoadBoards(t) {
		if !slices.Contains(d.Tags, tag) {
			t.Errorf("%s: tags %v lack %q", d.UID, d.Tags, tag)
		}
		if !slices.ContainsFunc(d.Links, func(l DashboardLink) bool {
			return l.Type == "dashboards" && slices.Equal(l.Tags, []string{tag})
		}) {
			t.Errorf("%s: no header link to the boards tagged %q", d.UID, tag)
		}
	}
}

// Explore links decode to a pane on the right data source, with the
// ${...} references left for Grafana to fill in.
func TestExploreLinksDecode(t *testing.T) {
	t.Parallel()
	link := exploreLogs(`{service="parley", instance="${__field.labels.instance}"}`)
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	if u.Path != "/explore" || u.Query().Get("schemaVersion") != "1" {
		t.Fatalf("got %s, want /explore?schemaVersion=1&...", link)
	}
	var panes map[string]struct {
		Datasource string
		Queries    []map[string]any
		Range      map[string]string
	}
	if err := json.Unmarshal([]byte(u.Query().Get("panes")), &panes); err != nil {
		t.Fatalf("panes: %v", err)
	}
	pane := panes["parley"]
	if pane.Datasource != "loki" || len(pane.Queries) != 1 ||
		pane.Queries[0]["expr"] != `{service="parley", instance="${__field.labels.instance}"}` ||
		pane.Range["from"] != "${__from}" || pane.Range["to"] != "${__to}" {
		t.Fatalf("got panes %+v, want one Loki query over the dashboard's range", panes)
	}
}

// Every data source the boards use is provisioned with that uid, and the
// provisioned links between them (exemplars and log lines to traces,
// traces to logs and metrics) point at provisioned uids.
func TestProvisionedDatasources(t *testing.T) {
	t.Parallel()
	var file struct {
		Datasources []struct {
			Name, Type, UID, URL string
			IsDefault            bool           `yaml:"isDefault"`
			JSONData             map[string]any `yaml:"jsonData"`
		}
	}
	raw, err := os.ReadFile(filepath.Join(dashboardsDir, "provisioning", "datasources", "datasources.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	defaults := 0
	for _, ds := range file.Datasources {
		types[ds.UID] = ds.Type
		if ds.IsDefault {
			defaults++
			if ds.UID != "prometheus" {
				t.Errorf("got %s as the default data source, want prometheus", ds.UID)
			}
		}
	}
	if defaults != 1 {
		t.Errorf("got %d default data sources, want 1", defaults)
	}
	for _, d := range mustLoadBoards(t) {
		for _, p := range d.allPanels() {
			for _, tg := range p.Targets {
				if types[tg.Datasource.UID] != tg.Datasource.Type {
					t.Errorf("%s: %q uses %+v, which is not provisioned", d.UID, p.Title, tg.Datasource)
				}
			}
		}
	}
	for path, want := range map[string]string{
		"prometheus.exemplarTraceIdDestinations.0.datasourceUid": "tempo",
		"prometheus.exemplarTraceIdDestinations.0.name":          "trace_id",
		"loki.derivedFields.0.datasourceUid":                     "tempo",
		"loki.derivedFields.0.url":                               "${__value.raw}",
		"tempo.tracesToLogsV2.datasourceUid":                     "loki",
		"tempo.tracesToMetrics.datasourceUid":                    "prometheus",
		"tempo.serviceMap.datasourceUid":                         "prometheus",
		"tempo.lokiSearch.datasourceUid":                         "loki",
	} {
		uid, rest, _ := strings.Cut(path, ".")
		var node any
		for _, ds := range file.Datasources {
			if ds.UID == uid {
				node = ds.JSONData
			}
		}
		for key := range strings.SplitSeq(rest, ".") {
			switch n := node.(type) {
			case map[string]any:
				node = n[key]
			case []any:
				if key != "0" || len(n) == 0 {
					node = nil
				} else {
					node = n[0]
				}
			}
		}
		// Grafana expands $VAR and ${VAR} in provisioning files, so a
		// literal ${__value.raw} is written $${__value.raw}.
		if got, _ := node.(string); strings.ReplaceAll(got, "$$", "$") != want {
			t.Errorf("%s: got %v, want %s", path, node, want)
		}
	}
}

// mustLoadBoards decodes what the generator writes, so the tests check the
// JSON Grafana reads rather than the Go that produced it. Boards come in
// file name order.
func mustLoadBoards(t *testing.T) []loadedBoard {
	t.Helper()
	files, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	var boards []loadedBoard
	for _, name := range names {
		var d loadedBoard
		if err := json.Unmarshal(files[name], &d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d.UID+".json" != name {
			t.Fatalf("%s holds board %q", name, d.UID)
		}
		boards = append(boards, d)
	}
	return boards
}

type loadedBoard struct{ Dashboard }

// allPanels returns every panel and row, including those inside collapsed
// rows.
func (d loadedBoard) allPanels() []*Panel {
	var all []*Panel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	return all
}

// serverPanels returns every panel except the load generator's.
func (d loadedBoard) serverPanels() []*Panel {
	var server []*Panel
	for _, p := range d.Panels {
		server = append(server, p)
		if p.Title != loadGeneratorRow {
			server = append(server, p.Panels...)
		}
	}
	return server
}

func (d loadedBoard) variables() []obj {
	var vars []obj
	for _, v := range d.Templating["list"].([]any) {
		vars = append(vars, v.(obj))
	}
	return vars
}

func (p *Panel) prometheusTargets() []Target {
	var ts []Target
	for _, t := range p.Targets {
		if t.Datasource == prometheus {
			ts = append(ts, t)
		}
	}
	return ts
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// run checks the committed boards, writes fresh ones where it is told, and
// refuses stray arguments.
func TestRun(t *testing.T) {
	t.Parallel()
	if err := run(t.Context(), []string{"-out", dashboardsDir, "-check"}, env(nil), io.Discard, io.Discard); err != nil {
		t.Errorf("-check of the committed boards: %v", err)
	}
	out := filepath.Join(t.TempDir(), "boards")
	if err := run(t.Context(), []string{"-out", out}, env(nil), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	files, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := stale(out, files); err != nil {
		t.Errorf("what run wrote: %v", err)
	}
	if err := run(t.Context(), []string{"extra"}, env(nil), io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), `unexpected arguments ["extra"]`) {
		t.Errorf("got %v, want a stray argument refused", err)
	}
}

// env is an environment of the variables in m alone, for run's getenv.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}
