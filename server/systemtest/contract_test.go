package systemtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/parleychat/parley/internal/testenv"
)

// Where the shipped alerting and dashboard files live, seen from server/.
const (
	alertsDir     = "../../alerts"
	dashboardsDir = "../../dashboards"
)

// promQuery is one PromQL expression that the repository ships, in a rule
// or on a dashboard.
type promQuery struct {
	where string // the file and the rule or panel, for messages
	expr  string // as Prometheus receives it, Grafana's variables filled in
	raw   string // as shipped
}

// shippedRules returns every rule file Prometheus loads: the symptom alerts
// and the generated SLO rules.
func shippedRules(t testing.TB) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(alertsDir, "rules", "*.rules.yml"))
	generated, _ := filepath.Glob(filepath.Join(alertsDir, "generated", "*.rules.yml"))
	files = append(files, generated...)
	if len(files) < 2 {
		t.Fatalf("found %d rule files under %s, want the symptom rules and the SLO rules", len(files), alertsDir)
	}
	return files
}

// ruleQueries returns the expression of every shipped rule, and the names
// of the series that the recording rules make (which no server exposes).
func ruleQueries(t testing.TB) (queries []promQuery, recorded map[string]bool) {
	t.Helper()
	recorded = map[string]bool{}
	for _, file := range shippedRules(t) {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		groups, errs := rulefmt.Parse(raw, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
		if len(errs) > 0 {
			t.Fatalf("%s: %v", file, errs)
		}
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				name := r.Alert
				if r.Record != "" {
					name = r.Record
					recorded[r.Record] = true
				}
				queries = append(queries, promQuery{where: filepath.Base(file) + ": " + name, expr: r.Expr})
			}
		}
	}
	return queries, recorded
}

// grafanaPanel is what the tests read of a Grafana panel: rows nest panels.
type grafanaPanel struct {
	Title      string            `json:"title"`
	Datasource grafanaDatasource `json:"datasource"`
	Targets    []struct {
		Datasource grafanaDatasource `json:"datasource"`
		Expr       string            `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaDashboard struct {
	UID        string         `json:"uid"`
	Title      string         `json:"title"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string            `json:"name"`
			Type       string            `json:"type"`
			Datasource grafanaDatasource `json:"datasource"`
			Query      json.RawMessage   `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// loadGeneratorRow is the row of the load-test board that holds the load
// generator's own series, which no server exposes (dashboards/README.md).
const loadGeneratorRow = "Load generator"

// grafanaVariable matches Grafana's variables in a query: $__rate_interval
// and friends, $name and ${name} or ${name:format}.
var grafanaVariable = regexp.MustCompile(`\$\{[^}]+\}|\$\w+`)

// fillVariables stands in for Grafana: the built-in intervals become a
// minute, and dashboard variables, which the boards use only as regular
// expressions (label=~"$instance"), match any value.
func fillVariables(expr string) string {
	return grafanaVariable.ReplaceAllStringFunc(expr, func(v string) string {
		if strings.HasPrefix(strings.TrimPrefix(v, "${"), "$__") || strings.HasPrefix(v, "${__") {
			return "1m"
		}
		return ".+"
	})
}

// labelValues matches the variable query label_values(selector, label).
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)

// dashboards returns every shipped dashboard by file name.
func dashboards(t testing.TB) map[string]grafanaDashboard {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if len(files) == 0 {
		t.Fatalf("found no dashboards in %s", dashboardsDir)
	}
	out := map[string]grafanaDashboard{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d grafanaDashboard
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = d
	}
	return out
}

// dashboardQueries returns every PromQL expression on the dashboards,
// variables filled in: panel targets on the Prometheus datasource and the
// selectors of label_values variables. The load generator's row is left
// out (the server cannot have its series).
func dashboardQueries(t testing.TB) []promQuery {
	t.Helper()
	var queries []promQuery
	for file, d := range dashboards(t) {
		var walk func(panels []grafanaPanel)
		walk = func(panels []grafanaPanel) {
			for _, p := range panels {
				if p.Title != loadGeneratorRow {
					walk(p.Panels)
				}
				for i, target := range p.Targets {
					ds := target.Datasource
					if ds.UID == "" {
						ds = p.Datasource
					}
					if ds.UID != "prometheus" {
						continue
					}
					queries = append(queries, promQuery{
						where: fmt.Sprintf("%s: panel %q target %d", file, p.Title, i),
						expr:  fillVariables(target.Expr),
						raw:   target.Expr,
					})
				}
			}
		}
		walk(d.Panels)
		for _, v := range d.Templating.List {
			if v.Type != "query" || v.Datasource.UID != "prometheus" {
				continue
			}
			var q string
			if json.Unmarshal(v.Query, &q) != nil {
				var obj struct{ Query string }
				json.Unmarshal(v.Query, &obj)
				q = obj.Query
			}
			if m := labelValues.FindStringSubmatch(q); m != nil {
				queries = append(queries, promQuery{where: fmt.Sprintf("%s: variable %s", file, v.Name), expr: m[1], raw: m[1]})
			}
		}
	}
	slices.SortFunc(queries, func(a, b promQuery) int { return strings.Compare(a.where, b.where) })
	return queries
}

// metricNames parses expr and returns the metric names it selects.
func metricNames(expr string) ([]string, error) {
	node, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names = append(names, vs.Name)
		}
		return nil
	})
	return names, nil
}

// notFromServers are series that Prometheus makes itself.
var notFromServers = map[string]bool{"up": true, "ALERTS": true, "ALERTS_FOR_STATE": true}

// exposedNames reads a /metrics page in the text format and returns every
// series name it can hold: a histogram's _bucket, _count and _sum, say.
func exposedNames(t testing.TB, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" {
			continue
		}
		name := f[2]
		switch f[3] {
		case "histogram":
			names[name+"_bucket"], names[name+"_count"], names[name+"_sum"] = true, true, true
		case "summary":
			names[name], names[name+"_count"], names[name+"_sum"] = true, true, true
		default:
			names[name] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// startObservedCluster runs two replicas on PostgreSQL and Redis, with the
// fault API on, and traffic: chat between them over WebSockets, and over
// REST ten requests a second, alternately a room list and a message sent.
// It is what Prometheus scrapes in the tests below.
func startObservedCluster(t *testing.T, adminToken string) (*cluster, *load) {
	t.Helper()
	c := newClusterWith(t, 2, map[string]string{
		"PARLEY_FAULTS":      "on",
		"PARLEY_ADMIN_TOKEN": adminToken,
	})
	l := c.startLoad(6, 2, 5)
	l.wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			c.mu.Lock()
			p := c.live[i%len(c.live)]
			c.mu.Unlock()
			// Not p.call, which fails the test from this goroutine; a
			// failed request shows in the metrics, which is the point.
			req, _ := http.NewRequest(http.MethodGet, p.base+"/api/v1/rooms", nil)
			if i%2 == 1 {
				body := fmt.Sprintf(`{"client_id":"rest-%d","body":"over REST"}`, i)
				req, _ = http.NewRequest(http.MethodPost, p.base+"/api/v1/rooms/"+l.rooms[0]+"/messages", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
			}
			req.Header.Set("Authorization", "Bearer "+l.token)
			if resp, err := p.http.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	})
	return c, l
}

// setFault switches a fault on or off on every replica.
func (c *cluster) setFault(token, name, body string) {
	c.t.Helper()
	for _, p := range c.live {
		method, want := "PUT", http.StatusOK
		if body == "" {
			method, want = "DELETE", http.StatusNoContent
		}
		if got := p.adminCall(method, "/admin/faults/"+name, token, body); got != want {
			c.t.Fatalf("%s %s at %s: got %d, want %d", method, name, p.admin, got, want)
		}
	}
}

// Every PromQL expression that the rules and dashboards ship parses, and
// every metric it names exists on a live server's /metrics (a cluster with
// PostgreSQL, Redis and the fault API, after chat traffic, a failed send
// and reconnects). A renamed metric breaks this test rather than a
// dashboard nobody looks at until the night it is needed.
func TestMetricContract(t *testing.T) {
	t.Parallel()
	rules, recorded := ruleQueries(t)
	queries := append(rules, dashboardQueries(t)...)

	const token = "contract-test-admin-token"
	c, l := startObservedCluster(t, token)
	l.carry(t, 60, "before the fault") // two seconds of chat
	c.setFault(token, "send_errors", `{"rate":0.5}`)
	testenv.EventuallyWithin(t, loadWait, "sends refused under the fault", func() bool { return l.refused("unavailable") >= 15 })
	c.setFault(token, "send_errors", "")
	l.end() // the clients hang up, so disconnects are counted too
	exposed := map[string]bool{}
	for _, p := range c.live {
		testenv.Eventually(t, "the replica counts the disconnects", func() bool {
			return exposedNames(t, p.admin+"/metrics")["parley_ws_disconnects_total"]
		})
		for name := range exposedNames(t, p.admin+"/metrics") {
			exposed[name] = true
		}
	}
	maps.Copy(exposed, exporterNames(t))
	maps.Copy(exposed, canaryNames(t))
	maps.Copy(exposed, alertmanagerNames(t))
	newerSettings := postgresSettingsNotHere(t)

	checked := 0
	for _, q := range queries {
		names, err := metricNames(q.expr)
		if err != nil {
			t.Errorf("%s: does not parse: %v\n%s", q.where, err, q.expr)
			continue
		}
		for _, name := range names {
			if recorded[name] || notFromServers[name] || newerSettings[name] {
				continue
			}
			checked++
			if !exposed[name] {
				t.Errorf("%s: %s is on no /metrics: not the replicas', the exporters', Alertmanager's or the canary's", q.where, name)
			}
		}
	}
	t.Logf("%d queries, %d metric references checked against %d exposed series names", len(queries), checked, len(exposed))
}

// The contract test is only as good as its reading of the dashboards: it
// must find queries on every board, inside collapsed rows too.
func TestDashboardQueriesAreFound(t *testing.T) {
	t.Parallel()
	perBoard := map[string]int{}
	for _, q := range dashboardQueries(t) {
		file, _, _ := strings.Cut(q.where, ":")
		perBoard[file]++
	}
	for file := range dashboards(t) {
		if perBoard[file] == 0 {
			t.Errorf("%s: no Prometheus queries found", file)
		}
	}
	if got := fillVariables(`rate(x{instance=~"$instance",a=~"${a:regex}"}[$__rate_interval])`); got != `rate(x{instance=~".+",a=~".+"}[1m])` {
		t.Errorf("fillVariables: got %s", got)
	}
}

// Every dashboard that an alert links to (its dashboard_url) is shipped.
func TestAlertsLinkShippedDashboards(t *testing.T) {
	t.Parallel()
	uids := map[string]bool{}
	for _, d := range dashboards(t) {
		uids[d.UID] = true
	}
	link := regexp.MustCompile(`/d/([\w-]+)`)
	links := 0
	for _, file := range shippedRules(t) {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(raw), -1) {
			links++
			if !uids[m[1]] {
				t.Errorf("%s links dashboard %s, which dashboards/ does not have", filepath.Base(file), m[1])
			}
		}
	}
	if links == 0 {
		t.Fatal("no alert links a dashboard")
	}
}
