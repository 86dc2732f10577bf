package check

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
)

// How long a fired alert can take to resolve once its fault is gone, read
// from its rule in Prometheus. A burn-rate alert is an or of conditions,
// each an and of error ratios over a long and a short window: it resolves
// only when every condition is false, and a condition turns false at the
// latest when its shortest window no longer holds an error. So the wait
// is, over the conditions, the longest of their shortest windows (30
// minutes for a page's 6x over 6h and 30m), plus an evaluation of the
// recording rules and one of the alert. The `for` hold delays firing, not
// resolving. A page that stays for its 30-minute window is doing its job,
// and a drill that gives up after ten minutes fails for nothing.

// rulesAnswer is Prometheus's /api/v1/rules answer, the fields read here.
type rulesAnswer struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		Groups []struct {
			Name     string  `json:"name"`
			Interval float64 `json:"interval"` // seconds
			Rules    []struct {
				Type   string            `json:"type"` // recording, alerting
				Name   string            `json:"name"`
				Query  string            `json:"query"`
				Labels map[string]string `json:"labels"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"data"`
}

// recorded is a recording rule: its expression's longest range, and its
// group's evaluation interval.
type recorded struct {
	labels   map[string]string
	window   time.Duration
	interval time.Duration
}

// resolveWait reads the check's alert (name and severity) from
// Prometheus's rules and returns how long after the fault ends it can take
// to resolve, and why.
func (k *checker) resolveWait(ctx context.Context) (time.Duration, string, error) {
	var rules rulesAnswer
	if err := k.getJSON(ctx, strings.TrimSuffix(k.Prometheus, "/")+"/api/v1/rules", &rules); err != nil {
		return 0, "", fmt.Errorf("reading the rules of %s: %w", k.Alert, err)
	}
	if rules.Status != "success" {
		return 0, "", fmt.Errorf("reading the rules of %s: %s", k.Alert, rules.Error)
	}
	return resolveWaitOf(rules, k.Alert, k.Severity)
}

// resolveWaitOf is resolveWait over rules already read.
func resolveWaitOf(rules rulesAnswer, alert, severity string) (time.Duration, string, error) {
	p := parser.NewParser(parser.Options{})
	records := map[string][]recorded{}
	for _, g := range rules.Data.Groups {
		for _, r := range g.Rules {
			if r.Type != "recording" {
				continue
			}
			expr, err := p.ParseExpr(r.Query)
			if err != nil {
				return 0, "", fmt.Errorf("recording rule %s: %w", r.Name, err)
			}
			records[r.Name] = append(records[r.Name], recorded{labels: r.Labels, window: longestRange(expr), interval: seconds(g.Interval)})
		}
	}
	var (
		wait   time.Duration
		why    string
		found  bool
		errs   []error
		window time.Duration
	)
	for _, g := range rules.Data.Groups {
		for _, r := range g.Rules {
			if r.Type != "alerting" || r.Name != alert || r.Labels["severity"] != severity {
				continue
			}
			found = true
			expr, err := p.ParseExpr(r.Query)
			if err != nil {
				errs = append(errs, fmt.Errorf("alerting rule %s: %w", r.Name, err))
				continue
			}
			for _, cond := range conditions(expr) {
				clears, recording := clearsAfter(cond, records)
				if d := clears + recording + seconds(g.Interval); d > wait {
					wait, window = d, clears
					why = fmt.Sprintf("its slowest condition clears once its %v window holds no error, plus %v of rule evaluation", clears, recording+seconds(g.Interval))
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return 0, "", err
	}
	if !found {
		return 0, "", fmt.Errorf("no alerting rule %s with severity %s in Prometheus", alert, severity)
	}
	if window == 0 {
		why = "its rule reads no range, so it resolves at its next evaluation"
	}
	return wait, why, nil
}

// conditions splits an alert's expression at its top-level ors.
func conditions(expr parser.Expr) []parser.Expr {
	switch e := expr.(type) {
	case *parser.ParenExpr:
		return conditions(e.Expr)
	case *parser.BinaryExpr:
		if e.Op == parser.LOR {
			return append(conditions(e.LHS), conditions(e.RHS)...)
		}
	}
	return []parser.Expr{expr}
}

// clearsAfter is how long after its last error a condition can stay true:
// the shortest window among the ranges it reads, its own or its recording
// rules', and the longest interval of those recording rules.
func clearsAfter(cond parser.Expr, records map[string][]recorded) (window, interval time.Duration) {
	consider := func(w time.Duration) {
		if w > 0 && (window == 0 || w < window) {
			window = w
		}
	}
	parser.Inspect(cond, func(n parser.Node, _ []parser.Node) error {
		switch s := n.(type) {
		case *parser.MatrixSelector:
			consider(s.Range)
		case *parser.VectorSelector:
			for _, r := range records[s.Name] {
				if matches(s, r.labels) {
					consider(r.window)
					interval = max(interval, r.interval)
				}
			}
		}
		return nil
	})
	return window, interval
}

// matches says whether a selector can select a recording rule's series:
// every matcher on a label the rule sets must accept its value.
func matches(s *parser.VectorSelector, labels map[string]string) bool {
	for _, m := range s.LabelMatchers {
		if v, ok := labels[m.Name]; ok && !m.Matches(v) {
			return false
		}
	}
	return true
}

// longestRange is the longest range an expression reads: a recording
// rule's window.
func longestRange(expr parser.Expr) time.Duration {
	var longest time.Duration
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if s, ok := n.(*parser.MatrixSelector); ok {
			longest = max(longest, s.Range)
		}
		return nil
	})
	return longest
}

// seconds is a number of seconds from Prometheus's API as a duration.
func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
