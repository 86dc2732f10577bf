package main

import (
	"bytes"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
)

// This file is the small part of Grafana's dashboard JSON model (Grafana
// 11, schemaVersion 39) that Parley's boards use, with helpers that keep the
// declarations in boards.go short.

// schemaVersion 39 is Grafana 11.0's. Every 11.x release loads it and
// migrates it in memory; a newer number would make older 11.x releases
// refuse fields they do not know.
const schemaVersion = 39

// obj is free-form JSON: panel options and field config, whose shape
// differs per panel type.
type obj = map[string]any

// Datasource refers to one of the provisioned data sources. Their uids are
// fixed in provisioning/datasources/datasources.yml, so the boards need no
// ${DS_...} inputs.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

var (
	prometheus = Datasource{Type: "prometheus", UID: "prometheus"}
	loki       = Datasource{Type: "loki", UID: "loki"}
	tempo      = Datasource{Type: "tempo", UID: "tempo"}
)

// Dashboard is one board as Grafana stores it. It has no id: a provisioned
// board gets one from Grafana, and its uid is what links use.
type Dashboard struct {
	UID                  string          `json:"uid"`
	Title                string          `json:"title"`
	Description          string          `json:"description"`
	Tags                 []string        `json:"tags"`
	Editable             bool            `json:"editable"`
	GraphTooltip         int             `json:"graphTooltip"`
	Refresh              string          `json:"refresh"`
	SchemaVersion        int             `json:"schemaVersion"`
	Time                 obj             `json:"time"`
	Timepicker           obj             `json:"timepicker"`
	Timezone             string          `json:"timezone"`
	FiscalYearStartMonth int             `json:"fiscalYearStartMonth"`
	LiveNow              bool            `json:"liveNow"`
	Version              int             `json:"version"`
	Annotations          obj             `json:"annotations"`
	Links                []DashboardLink `json:"links"`
	Templating           obj             `json:"templating"`
	Panels               []*Panel        `json:"panels"`
}

// DashboardLink is a link in a board's header.
type DashboardLink struct {
	Title       string   `json:"title"`
	Type        string   `json:"type"`
	Tags        []string `json:"tags"`
	AsDropdown  bool     `json:"asDropdown"`
	IncludeVars bool     `json:"includeVars"`
	KeepTime    bool     `json:"keepTime"`
	TargetBlank bool     `json:"targetBlank"`
	Icon        string   `json:"icon"`
	Tooltip     string   `json:"tooltip"`
	URL         string   `json:"url"`
}

// Panel is a panel or a row. A collapsed row keeps its panels in Panels;
// an expanded row has an empty Panels and its panels follow it at the top
// level, which is how Grafana itself saves them.
type Panel struct {
	ID              int         `json:"id"`
	Type            string      `json:"type"`
	Title           string      `json:"title"`
	Description     string      `json:"description,omitempty"`
	Datasource      *Datasource `json:"datasource,omitempty"`
	GridPos         GridPos     `json:"gridPos"`
	Targets         []Target    `json:"targets,omitempty"`
	FieldConfig     obj         `json:"fieldConfig,omitempty"`
	Options         obj         `json:"options,omitempty"`
	Links           []Link      `json:"links,omitempty"`
	Transformations []obj       `json:"transformations,omitempty"`
	Collapsed       *bool       `json:"collapsed,omitempty"`
	Repeat          string      `json:"repeat,omitempty"`
	Panels          []*Panel    `json:"panels,omitzero"`

	// w and h are the size asked for; layout turns them into GridPos.
	w, h int
}

// GridPos places a panel on Grafana's grid: 24 columns wide, rows of 30
// pixels.
type GridPos struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

// Link is a panel link (in the panel header) or a data link (on a series,
// where ${__field.labels.X} names that series' labels).
type Link struct {
	Title       string `json:"title"`
	URL         string `json:"url"`
	TargetBlank bool   `json:"targetBlank"`
}

// Target is one query of a panel. Prometheus and Loki queries use Expr,
// Tempo's TraceQL uses Query.
type Target struct {
	RefID        string     `json:"refId"`
	Datasource   Datasource `json:"datasource"`
	Expr         string     `json:"expr,omitempty"`
	LegendFormat string     `json:"legendFormat,omitempty"`
	EditorMode   string     `json:"editorMode,omitempty"`
	Range        bool       `json:"range,omitempty"`
	Instant      bool       `json:"instant,omitempty"`
	Exemplar     *bool      `json:"exemplar,omitempty"`
	Format       string     `json:"format,omitempty"`
	QueryType    string     `json:"queryType,omitempty"`
	Query        string     `json:"query,omitempty"`
	Limit        int        `json:"limit,omitempty"`
	TableType    string     `json:"tableType,omitempty"`
	Filters      []obj      `json:"filters,omitzero"`
}

// q is a Prometheus range query, one series per label set, named by
// legend (Grafana's {{label}} syntax).
func q(expr, legend string) Target {
	return Target{
		Datasource:   prometheus,
		Expr:         expr,
		LegendFormat: legend,
		EditorMode:   "code",
		Range:        true,
		Exemplar:     new(false),
		Format:       "time_series",
	}
}

// instant is a Prometheus instant query shaped as a table: one row per
// series, one column per label.
func instant(expr string) Target {
	return Target{
		Datasource: prometheus,
		Expr:       expr,
		EditorMode: "code",
		Instant:    true,
		Exemplar:   new(false),
		Format:     "table",
	}
}

// Units, by Grafana's unit ids.
const (
	unitNone        = "short"
	unitReqps       = "reqps"
	unitSeconds     = "s"
	unitBytes       = "bytes"
	unitBytesPerSec = "Bps"
	unitRatio       = "percentunit"
)

// newPanel builds a panel of a type whose queries all go to ds.
func newPanel(typ, title string, ds Datasource, w, h int, targets []Target) *Panel {
	p := &Panel{Type: typ, Title: title, Datasource: &ds, w: w, h: h}
	for i, t := range targets {
		t.RefID = string(rune('A' + i))
		p.Targets = append(p.Targets, t)
	}
	return p
}

// timeseries is a graph of Prometheus queries.
func timeseries(title, unit string, targets ...Target) *Panel {
	p := newPanel("timeseries", title, prometheus, 8, 8, targets)
	p.FieldConfig = obj{
		"defaults": obj{
			"unit":  unit,
			"color": obj{"mode": "palette-classic"},
			"custom": obj{
				"drawStyle":         "line",
				"lineWidth":         1,
				"fillOpacity":       10,
				"showPoints":        "never",
				"spanNulls":         false,
				"axisSoftMin":       0,
				"thresholdsStyle":   obj{"mode": "off"},
				"stacking":          obj{"mode": "none", "group": "A"},
				"scaleDistribution": obj{"type": "linear"},
			},
			"thresholds": thresholdSteps(step{"green", nil}),
			"links":      []Link{},
		},
		"overrides": []obj{},
	}
	p.Options = obj{
		"legend":  obj{"displayMode": "list", "placement": "bottom", "showLegend": true, "calcs": []string{}},
		"tooltip": obj{"mode": "multi", "sort": "desc"},
	}
	return p
}

// stat shows the last value of each series, large, with a sparkline.
func stat(title, unit string, targets ...Target) *Panel {
	p := newPanel("stat", title, prometheus, 4, 5, targets)
	p.FieldConfig = obj{
		"defaults": obj{
			"unit":       unit,
			"color":      obj{"mode": "thresholds"},
			"thresholds": thresholdSteps(step{"green", nil}),
			"links":      []Link{},
		},
		"overrides": []obj{},
	}
	p.Options = obj{
		"reduceOptions": obj{"values": false, "calcs": []string{"lastNotNull"}, "fields": ""},
		"orientation":   "auto",
		"textMode":      "auto",
		"colorMode":     "value",
		"graphMode":     "area",
		"justifyMode":   "auto",
		"wideLayout":    true,
	}
	return p
}

// bargauge compares the last value of several series side by side.
func bargauge(title, unit string, targets ...Target) *Panel {
	p := stat(title, unit, targets...)
	p.Type = "bargauge"
	p.Options = obj{
		"reduceOptions": obj{"values": false, "calcs": []string{"lastNotNull"}, "fields": ""},
		"orientation":   "horizontal",
		"displayMode":   "gradient",
		"valueMode":     "color",
		"namePlacement": "auto",
		"showUnfilled":  true,
		"sizing":        "auto",
	}
	return p
}

// heatmap draws a Prometheus histogram's buckets over time. Grafana must
// not re-bucket them (calculate: false; the target's format "heatmap" makes
// it read each le series as a row), and exemplars are on, so a slow cell
// leads to the trace of a slow message.
func heatmap(title, unit, bucketsExpr string) *Panel {
	t := q(bucketsExpr, "{{le}}")
	t.Format = "heatmap"
	t.Exemplar = new(true)
	p := newPanel("heatmap", title, prometheus, 12, 9, []Target{t})
	p.FieldConfig = obj{
		"defaults": obj{
			"custom": obj{
				"hideFrom":          obj{"legend": false, "tooltip": false, "viz": false},
				"scaleDistribution": obj{"type": "linear"},
			},
			"links": []Link{},
		},
		"overrides": []obj{},
	}
	p.Options = obj{
		"calculate":     false,
		"cellGap":       1,
		"cellValues":    obj{"unit": unitNone},
		"color":         obj{"mode": "scheme", "scheme": "Oranges", "fill": "dark-orange", "scale": "exponential", "exponent": 0.5, "steps": 64, "reverse": false},
		"exemplars":     obj{"color": "rgba(255,0,255,0.7)"},
		"filterValues":  obj{"le": 1e-9},
		"legend":        obj{"show": true},
		"rowsFrame":     obj{"layout": "auto"},
		"selectionMode": "x",
		"showValue":     "never",
		"tooltip":       obj{"mode": "single", "yHistogram": true, "showColorScale": false},
		"yAxis":         obj{"axisPlacement": "left", "unit": unit, "reverse": false},
	}
	return p
}

// table lists instant query results, one row per series. hide names the
// columns (labels, Time, Value) not worth showing.
func table(title string, target Target, hide ...string) *Panel {
	p := newPanel("table", title, target.Datasource, 8, 8, []Target{target})
	p.FieldConfig = obj{
		"defaults":  obj{"custom": obj{"align": "auto", "cellOptions": obj{"type": "auto"}}, "links": []Link{}},
		"overrides": []obj{},
	}
	p.Options = obj{
		"showHeader": true,
		"cellHeight": "sm",
		"footer":     obj{"show": false, "reducer": []string{"sum"}, "countRows": false, "fields": ""},
	}
	if len(hide) > 0 {
		excluded := obj{}
		for _, c := range hide {
			excluded[c] = true
		}
		p.Transformations = []obj{{
			"id":      "organize",
			"options": obj{"excludeByName": excluded, "indexByName": obj{}, "renameByName": obj{}},
		}}
	}
	return p
}

// logs shows the lines of a Loki query, newest first, with details (and
// so the trace_id derived field) one click away.
func logs(title, logQL string) *Panel {
	t := Target{Datasource: loki, Expr: logQL, EditorMode: "code", QueryType: "range"}
	p := newPanel("logs", title, loki, 12, 10, []Target{t})
	p.Options = obj{
		"showTime":           true,
		"showLabels":         false,
		"showCommonLabels":   false,
		"wrapLogMessage":     true,
		"prettifyLogMessage": false,
		"enableLogDetails":   true,
		"dedupStrategy":      "none",
		"sortOrder":          "Descending",
	}
	return p
}

// traceSearch lists the traces a TraceQL query finds; each trace id opens
// the trace.
func traceSearch(title, traceQL string) *Panel {
	t := Target{Datasource: tempo, QueryType: "traceql", Query: traceQL, Limit: 20, TableType: "traces", Filters: []obj{}}
	p := table(title, t)
	p.w, p.h = 12, 10
	return p
}

// step is one threshold: from value upwards the color applies. The first
// step's value is nil, meaning minus infinity.
type step struct {
	color string
	value *float64
}

func at(v float64) *float64 { return &v }

func thresholdSteps(steps ...step) obj {
	list := make([]obj, len(steps))
	for i, s := range steps {
		list[i] = obj{"color": s.color, "value": s.value}
	}
	return obj{"mode": "absolute", "steps": list}
}

func (p *Panel) defaults() obj { return p.FieldConfig["defaults"].(obj) }

// desc sets the panel's description: what to read in it and why it
// matters, shown on the (i) icon.
func (p *Panel) desc(text string) *Panel {
	p.Description = text
	return p
}

// size overrides the panel's default width and height.
func (p *Panel) size(w, h int) *Panel {
	p.w, p.h = w, h
	return p
}

// thresholds colors values (stat, bargauge) by the given steps.
func (p *Panel) thresholds(steps ...step) *Panel {
	p.defaults()["thresholds"] = thresholdSteps(steps...)
	return p
}

// thresholdLines draws the steps as dashed horizontal lines on a graph.
func (p *Panel) thresholdLines(steps ...step) *Panel {
	p.thresholds(steps...)
	p.defaults()["custom"].(obj)["thresholdsStyle"] = obj{"mode": "dashed"}
	return p
}

// decimals fixes the number of decimals shown.
func (p *Panel) decimals(n int) *Panel {
	p.defaults()["decimals"] = n
	return p
}

// minMax fixes the axis or gauge range.
func (p *Panel) minMax(lo, hi float64) *Panel {
	p.defaults()["min"] = lo
	p.defaults()["max"] = hi
	return p
}

// stepped draws a graph as steps, for 0/1 state series.
func (p *Panel) stepped() *Panel {
	p.defaults()["custom"].(obj)["lineInterpolation"] = "stepAfter"
	return p
}

// withExemplars asks Prometheus for the exemplars of every query, so that
// their trace ids show on the graph as points linking to Tempo.
func (p *Panel) withExemplars() *Panel {
	for i := range p.Targets {
		p.Targets[i].Exemplar = new(true)
	}
	return p
}

// dataLink adds a link on every series of the panel.
func (p *Panel) dataLink(title, link string) *Panel {
	d := p.defaults()
	d["links"] = append(d["links"].([]Link), Link{Title: title, URL: link, TargetBlank: true})
	return p
}

// panelLink adds a link to the panel's header menu.
func (p *Panel) panelLink(title, link string) *Panel {
	p.Links = append(p.Links, Link{Title: title, URL: link, TargetBlank: true})
	return p
}

// Links into Explore. They use Grafana 11's URL format: panes is a JSON
// object of named panes, each with its data source, queries and range.
// The range is the one the dashboard shows (${__from}, ${__to}).

// exploreLogs opens a LogQL query in Explore.
func exploreLogs(logQL string) string {
	return explore(loki, obj{"expr": logQL, "queryType": "range", "editorMode": "code"})
}

// exploreTraces opens a TraceQL search in Explore.
func exploreTraces(traceQL string) string {
	return explore(tempo, obj{"queryType": "traceql", "query": traceQL, "limit": 20, "tableType": "traces"})
}

func explore(ds Datasource, query obj) string {
	query["refId"] = "A"
	query["datasource"] = ds
	panes := obj{"parley": obj{
		"datasource": ds.UID,
		"queries":    []obj{query},
		"range":      obj{"from": "${__from}", "to": "${__to}"},
	}}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(panes); err != nil {
		panic(err) // only plain strings and numbers above
	}
	return "/explore?schemaVersion=1&orgId=1&panes=" + escapeKeepingVariables(strings.TrimSpace(b.String()))
}

var variableRef = regexp.MustCompile(`\$\{[^}]*\}`)

// escapeKeepingVariables query-escapes s except for its ${...} references:
// Grafana interpolates those in the URL before following it, so they must
// stay readable to it.
func escapeKeepingVariables(s string) string {
	var b strings.Builder
	last := 0
	for _, loc := range variableRef.FindAllStringIndex(s, -1) {
		b.WriteString(url.QueryEscape(s[last:loc[0]]))
		b.WriteString(s[loc[0]:loc[1]])
		last = loc[1]
	}
	b.WriteString(url.QueryEscape(s[last:]))
	return b.String()
}

// encode writes v as indented JSON with every object's keys sorted, so the
// files are stable and diffs stay small: it round-trips through generic
// maps, which encoding/json writes in key order, and json.Number keeps
// numbers exactly as written.
func encode(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(generic); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
