package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// How long a page takes to fire and to resolve at the real windows. The
// generator works it out by evaluating the burn-rate rules minute by
// minute over a stated fault, the way Prometheus 2 evaluates them on
// counters sampled every minute (promtool's input series): a rate over w
// at minute t is the counter's increase over the samples from t-w to t,
// both included, divided by w; while the series is younger than w it is
// the increase since the series began, still divided by w (rate()
// extrapolates a counter that started at zero no further back than its
// first sample). The unit tests then check every figure with promtool,
// and alerts/README.md lists them (slogen -table prints the table).

// leadIn is how long steady, healthy traffic runs before a timed fault
// begins: the page's longest window, so that every window it reads is
// full, as on a server that has been up for hours.
const leadIn = 6 * 60

// afterPage is how long a long fault lasts after its page fired.
const afterPage = 60

// giveUp bounds the search for a page: a burn that has not paged within
// this many minutes of its start does not page.
const giveUp = 12 * 60

// fault is a stated burn: the share of events that fail while it lasts,
// and how long it lasts, in minutes after its page fired.
type fault struct {
	name     string
	share    float64
	endAfter int
}

// faults are the bursts the figures are given for: everything failing,
// switched off as soon as the page fires (as the slo-alert drill does),
// and one event in ten, lasting an hour after the page (an incident).
// Each costs promtool some six hundred evaluations of the rules, so two it
// is.
var faults = []fault{{"full outage", 1, 0}, {"10% errors", 0.1, afterPage}}

// timeline is steady traffic with a fault from minute start to minute end
// (the events of minutes start+1 to end fail at its share).
type timeline struct {
	rate       float64 // events a second
	share      float64
	start, end int
}

// world decides comparisons too close to call: the figures are bounded
// by evaluating once with every near tie taken as true and once as false.
// The rules only compare with > and combine with and/or, so every other
// outcome falls between the two.
type world bool

const (
	tiesTrue  world = true
	tiesFalse world = false
)

// greater is a > b, with near ties (float noise in Prometheus's sums)
// decided by w.
func (w world) greater(a, b float64) bool {
	if math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) {
		return bool(w)
	}
	return a > b
}

// minutes is a duration of the generator's own (5m, 1h, 3d) in minutes.
func minutes(duration string) int {
	per := map[byte]int{'m': 1, 'h': 60, 'd': 24 * 60}
	n, err := strconv.Atoi(duration[:len(duration)-1])
	unit, ok := per[duration[len(duration)-1]]
	if err != nil || !ok {
		panic("slogen: not a duration of the generator's own: " + duration)
	}
	return n * unit
}

// firing evaluates slo's burn-rate alert at every minute from 0 to until
// over tl, and returns for each minute which severities fire.
func firing(slo SLO, tl timeline, until int, w world) []map[string]bool {
	budget, _ := strconv.ParseFloat(num(1-slo.Objective), 64)
	perMinute := tl.rate * 60
	// events and errors up to and including minute t
	events := func(t int) float64 { return perMinute * float64(t) }
	errors := func(t int) float64 {
		failing := min(t, tl.end) - tl.start
		return perMinute * tl.share * float64(max(failing, 0))
	}
	// The error ratio and the event rate over window win at minute t.
	ratio := func(t, win int) float64 {
		from := max(t-win, 0)
		return (errors(t) - errors(from)) / (events(t) - events(from))
	}
	rate := func(t, win int) float64 { return (events(t) - events(max(t-win, 0))) / float64(win*60) }

	out := make([]map[string]bool, until+1)
	trueSince := map[string]int{}
	for t := 0; t <= until; t++ {
		out[t] = map[string]bool{}
		for _, sev := range severities {
			cond := false
			for _, br := range sev.burns {
				limit := br.factor * budget
				long, short := minutes(br.long), minutes(br.short)
				if t > 0 && w.greater(ratio(t, long), limit) && w.greater(ratio(t, short), limit) && w.greater(rate(t, long), slo.MinRate) {
					cond = true
				}
			}
			if !cond {
				delete(trueSince, sev.name)
				continue
			}
			since, ok := trueSince[sev.name]
			if !ok {
				since, trueSince[sev.name] = t, t
			}
			out[t][sev.name] = t-since >= minutes(sev.hold)
		}
	}
	return out
}

// timing is what a page does over one fault: when it fires after the
// fault began and when it resolves after the fault ended, each as the
// earliest and latest minute that near ties allow.
type timing struct {
	fault                fault
	paged                bool
	fireLo, fireHi       int // minutes after the fault began
	resolveLo, resolveHi int // minutes after the fault ended (fault.endAfter after the page)
}

// firstPage is the first minute at or after from that the page fires in
// ticks, or -1.
func firstPage(ticks []map[string]bool, from int) int {
	for t := from; t < len(ticks); t++ {
		if ticks[t]["critical"] {
			return t
		}
	}
	return -1
}

// firstQuiet is the first minute at or after from that the page does not
// fire in ticks, or -1.
func firstQuiet(ticks []map[string]bool, from int) int {
	for t := from; t < len(ticks); t++ {
		if !ticks[t]["critical"] {
			return t
		}
	}
	return -1
}

// pageTiming works out when slo's page fires over f, and when it resolves
// once f ends.
func pageTiming(slo SLO, f fault) timing {
	tm := timing{fault: f}
	forever := timeline{rate: slo.testRate(), share: f.share, start: leadIn, end: leadIn + giveUp}
	early, late := firstPage(firing(slo, forever, leadIn+giveUp, tiesTrue), 0), firstPage(firing(slo, forever, leadIn+giveUp, tiesFalse), 0)
	if early < 0 || late < 0 {
		return tm
	}
	tm.paged = true
	tm.fireLo, tm.fireHi = early-leadIn, late-leadIn
	end := late + f.endAfter
	tl := timeline{rate: slo.testRate(), share: f.share, start: leadIn, end: end}
	until := end + 24*60
	quietEarly, quietLate := firstQuiet(firing(slo, tl, until, tiesFalse), end), firstQuiet(firing(slo, tl, until, tiesTrue), end)
	tm.resolveLo, tm.resolveHi = quietEarly-end, quietLate-end
	return tm
}

// timings are slo's page timings for every fault.
func timings(slo SLO) []timing {
	var out []timing
	for _, f := range faults {
		out = append(out, pageTiming(slo, f))
	}
	return out
}

// lasting says how long f lasts, for people.
func (f fault) lasting() string {
	if f.endAfter == 0 {
		return "until the page fires"
	}
	return fmt.Sprintf("%d min after the page", f.endAfter)
}

// span prints a range of minutes briefly: "3 min" or "21–22 min".
func span(lo, hi int) string {
	if lo == hi {
		return fmt.Sprintf("%d min", lo)
	}
	return fmt.Sprintf("%d–%d min", lo, hi)
}

// timingTable is alerts/README.md's table of page timings, one per SLO.
func timingTable(s Spec) string {
	var b strings.Builder
	for i, slo := range s.SLOs {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "`%s` (%s%%, steady traffic of %s events a second):\n\n", slo.Name, num(slo.Objective*100), num(slo.testRate()))
		b.WriteString("| fault | lasting | pages after it begins | resolves after it ends |\n")
		b.WriteString("|---|---|---|---|\n")
		for _, tm := range timings(slo) {
			if !tm.paged {
				fmt.Fprintf(&b, "| %s | %s | never (within %d h) | |\n", tm.fault.name, tm.fault.lasting(), giveUp/60)
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", tm.fault.name, tm.fault.lasting(), span(tm.fireLo, tm.fireHi), span(tm.resolveLo, tm.resolveHi))
		}
	}
	return b.String()
}

// segment is a stretch of a counter's life: up to minute to, it grows by
// step a minute.
type segment struct {
	to   int
	step float64
}

// counter is a promtool values string for a counter that is 0 at minute 0
// and then grows as segs say.
func counter(segs ...segment) string {
	parts := []string{"0"}
	v, at := 0.0, 0
	for _, sg := range segs {
		n := sg.to - at
		if n <= 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s+%sx%d", num(v+sg.step), num(sg.step), n-1))
		v += sg.step * float64(n)
		at = sg.to
	}
	return strings.Join(parts, " ")
}

// timingTest is a promtool test of one timing: steady traffic for leadIn,
// then the fault until endAfter minutes after the page, then steady
// traffic again. The page must not fire before the earliest minute the
// timing allows and must fire by the latest; once the fault ended it must
// still fire just before the earliest resolve and be gone by the latest.
// Ticket alerts of the same name are expected wherever they fire.
func timingTest(s Spec, slo SLO, tm timing, externalLabels string) string {
	if !tm.paged {
		return ""
	}
	rate := slo.testRate()
	start := leadIn
	end := start + tm.fireHi + tm.fault.endAfter
	until := end + tm.resolveHi + 5
	tl := timeline{rate: rate, share: tm.fault.share, start: start, end: end}
	worlds := [2][]map[string]bool{firing(slo, tl, until, tiesTrue), firing(slo, tl, until, tiesFalse)}

	// settled moves t by step until both worlds agree on every alert, and
	// requires the page to be as wanted there.
	settled := func(t, step int, page bool) int {
		for ; t > start && t < until; t += step {
			agree := true
			for _, sev := range severities {
				agree = agree && worlds[0][t][sev.name] == worlds[1][t][sev.name]
			}
			if agree {
				break
			}
		}
		if worlds[0][t]["critical"] != page || worlds[1][t]["critical"] != page {
			panic(fmt.Sprintf("slogen: %s, %s: the page at minute %d is not %v in both worlds", slo.Name, tm.fault.name, t, page))
		}
		return t
	}
	checks := []int{
		settled(start+tm.fireLo-1, -1, false),
		settled(start+tm.fireHi, 1, true),
		settled(end+tm.resolveLo-1, -1, true),
		settled(end+tm.resolveHi, 1, false),
	}

	var b strings.Builder
	fmt.Fprintf(&b, "  - name: '%s at the real windows, lasting %s: pages %s after it begins and resolves %s after it ends'\n",
		tm.fault.name, tm.fault.lasting(), span(tm.fireLo, tm.fireHi), span(tm.resolveLo, tm.resolveHi))
	b.WriteString("    interval: 1m\n" + externalLabels)
	perMinute := rate * 60
	healthy, failing := map[string]float64{}, map[string]float64{}
	for _, n := range slo.Test.Good {
		healthy[n] += perMinute
		failing[n] += perMinute * (1 - tm.fault.share)
	}
	for _, n := range slo.Test.Bad {
		healthy[n] += 0
		failing[n] += perMinute * tm.fault.share
	}
	b.WriteString("    input_series:\n")
	for _, n := range sortedKeys(healthy) {
		fmt.Fprintf(&b, "      - series: '%s'\n        values: '%s'\n", n,
			counter(segment{start, healthy[n]}, segment{end, failing[n]}, segment{until, healthy[n]}))
	}
	b.WriteString("    alert_rule_test:\n")
	burnAlert := alertName(s.Service, slo.Name, "BudgetBurn")
	for _, t := range checks {
		fmt.Fprintf(&b, "      - alertname: %s\n        eval_time: %dm\n", burnAlert, t)
		var firing []string
		for _, sev := range severities {
			if worlds[0][t][sev.name] {
				firing = append(firing, sev.name)
			}
		}
		if len(firing) == 0 {
			b.WriteString("        exp_alerts: []\n")
			continue
		}
		b.WriteString("        exp_alerts:\n")
		for _, sev := range firing {
			fmt.Fprintf(&b, "          - exp_labels: {severity: %s, service: %s, slo: %s}\n", sev, s.Service, slo.Name)
			b.WriteString("            exp_annotations: {" + burnAnnotations(s, slo, sev) + "}\n")
		}
	}
	return b.String()
}

// sortedKeys is m's keys in order.
func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
