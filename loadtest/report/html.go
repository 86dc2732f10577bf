package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"time"
)

//go:embed page.html
var pageHTML string

// pageTemplate is parsed once; it is never modified afterwards.
var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// HTML writes the report as one self-contained page: inline CSS and SVG, no
// scripts, nothing fetched from anywhere, so that it can be archived as a CI
// artifact and opened years later. Every value from the run is escaped by
// html/template.
func HTML(w io.Writer, r Run) error {
	return pageTemplate.Execute(w, newPage(r))
}

// page is what the template shows, formatted.
type page struct {
	Run                           Run
	Pass                          bool
	Verdict                       string
	Failed                        []string
	Started, Duration             string
	Warning                       string
	Knee                          string
	Cards                         []card
	Thresholds                    []thresholdRow
	Checks                        []checkRow
	Latencies                     [][]string // rows of latencyRow.cells
	LatencyChart, PercentileChart chart
	MessageChart, DeliveryChart   chart
	Counts                        []countRow
	LostExamples                  []string
	Generator                     []countRow
}

type card struct {
	Label, Value string
	Bad          bool
}

type thresholdRow struct{ Verdict, Text, Got string }

type checkRow struct {
	Verdict, Name, Detail, Figures string
	Table                          [][]string
}

type countRow struct{ Label, Value, Note string }

func newPage(r Run) page {
	res := r.Result
	var errs int64
	for _, n := range res.AckErrors {
		errs += n
	}
	p := page{
		Run:             r,
		Pass:            r.Pass(),
		Verdict:         passFail(r.Pass()),
		Started:         r.Started.UTC().Format("2006-01-02 15:04:05 MST"),
		Duration:        formatOffset(r.Duration.Round(time.Second)),
		LatencyChart:    latencyChart(r),
		PercentileChart: percentileChart(res),
		MessageChart:    messageRateChart(r),
		DeliveryChart:   deliveryRateChart(r),
		LostExamples:    res.LostExamples,
	}
	for _, v := range r.Thresholds {
		if !v.Pass {
			p.Failed = append(p.Failed, v.Text)
		}
		p.Thresholds = append(p.Thresholds, thresholdRow{passFail(v.Pass), v.Text, formatValue(v.Got, v.Unit)})
	}
	for _, c := range r.Checks {
		if !c.Pass {
			p.Failed = append(p.Failed, c.Name)
		}
		p.Checks = append(p.Checks, checkRow{passFail(c.Pass), c.Name, c.Detail, figures(c.Figures), c.Table})
	}
	if r.Generator.Saturated {
		p.Warning = saturationWarning(r.Generator)
	}
	p.Cards = []card{
		{"messages sent", formatCount(res.Sent), false},
		{"acked", formatCount(res.Acked), false},
		{"refused", formatCount(errs), errs > 0},
		{"deliveries", formatCount(res.Delivered), false},
		{"lost", formatCount(res.Lost), res.Lost > 0},
		{"duplicates", formatCount(res.Duplicates), res.Duplicates > 0},
		{"reordered", formatCount(res.Reordered), res.Reordered > 0},
		{"ack p99", formatDuration(res.Ack.P99), false},
		{"delivery p99", formatDuration(res.Delivery.P99), false},
		{"delivery max", formatDuration(res.Delivery.Max), false},
	}
	for _, row := range latencyRows(res) {
		p.Latencies = append(p.Latencies, row.cells())
	}
	refusals := "none"
	if len(res.AckErrors) > 0 {
		refusals = errorCodes(res.AckErrors)
	}
	p.Counts = []countRow{
		{"sent", formatCount(res.Sent), "messages scheduled and sent"},
		{"acked", formatCount(res.Acked), "stored by the server"},
		{"refused", formatCount(res.Failed), "messages refused and never acked; errors: " + refusals},
		{"unanswered", formatCount(res.Unanswered), "neither acked nor refused by the end"},
		{"expected", formatCount(res.Expected), "deliveries owed: recipients of acked and unanswered messages"},
		{"delivered", formatCount(res.Delivered), fmt.Sprintf("of which %s replayed after a reconnect", formatCount(res.Replayed))},
		{"lost", formatCount(res.Lost), "deliveries of acked messages that never arrived"},
		{"unconfirmed", formatCount(res.Unconfirmed), "deliveries of unanswered messages that never arrived"},
		{"duplicates", formatCount(res.Duplicates), "copies of a message a recipient already had"},
		{"reordered", formatCount(res.Reordered), "deliveries with a lower seq than one already seen"},
		{"foreign", formatCount(res.Foreign), "messages in the rooms that this run did not send"},
		{"unexpected", formatCount(res.Unexpected), "deliveries to non-members, or of refused messages"},
		{"misrouted", formatCount(res.Misrouted), "deliveries in the wrong room"},
		{"connect errors", formatCount(res.ConnectErrors), "failed connection attempts"},
		{"clamped", formatCount(res.Clamped), "latencies outside 0..1h, recorded as the nearest bound"},
	}
	g := r.Generator
	p.Generator = []countRow{
		{Label: "CPU", Value: fmt.Sprintf("%.1fs", g.CPUSeconds)},
		{Label: "cores while loading", Value: fmt.Sprintf("%.2f", g.LoadCores)},
		{Label: "scheduling lag p99", Value: formatDuration(g.P99SchedulingLag)},
		{Label: "scheduling lag max", Value: formatDuration(g.MaxSchedulingLag)},
		{Label: "saturated", Value: yesNo(g.Saturated)},
		{Label: "connections", Value: formatCount(int64(g.Connections))},
		{Label: "goroutines", Value: formatCount(int64(g.Goroutines))},
		{Label: "paced by the server, REST", Value: fmt.Sprintf("%s refusals (429), %s waits, %s in all",
			formatCount(r.Pacing.REST.Refusals), formatCount(r.Pacing.REST.Waits), formatDuration(r.Pacing.REST.Waited))},
		{Label: "paced by the server, WebSocket", Value: fmt.Sprintf("%s frames refused as rate_limited and resent, %s in all",
			formatCount(r.Pacing.Frames.Refusals), formatDuration(r.Pacing.Frames.Waited))},
	}
	if k := r.Knee; k != nil {
		p.Knee = fmt.Sprintf("The server's knee: %s msg/s, reached %s into the run, where %s broke.",
			formatRate(k.Rate), formatOffset(k.Offset.Round(time.Second)), k.Broke)
	}
	return p
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
