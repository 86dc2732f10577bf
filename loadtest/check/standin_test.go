package check

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// standIns serve each request with the handler of its URL's host, in the
// caller's goroutine. No socket is involved, so a test inside a
// testing/synctest bubble runs the checks' polls and timeouts on the
// bubble's clock, in no time.
type standIns map[string]http.Handler

func (s standIns) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		defer r.Body.Close()
	}
	h, ok := s[r.URL.Host]
	if !ok {
		return nil, fmt.Errorf("no stand-in for %s", r.URL.Host)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r.Clone(r.Context()))
	return rec.Result(), nil
}

// checkerOf is a checker that reaches the stand-ins and polls every second.
func checkerOf(c Config, s standIns) *checker {
	return &checker{Config: c, http: &http.Client{Transport: s, Timeout: requestTimeout}, poll: pollEvery}
}

// prometheus stands in for Prometheus's query API: it answers the
// replicas query (any query with "up{" in it) with replicas() and every
// other query with pages(), each a one-sample vector. Where it differs:
// it evaluates no PromQL.
func prometheus(replicas, pages func() int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		n := pages()
		if strings.Contains(r.URL.Query().Get("query"), "up{") {
			n = replicas()
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[0,"%d"]}]}}`, n)
	})
}

// alerting stands in for the path from a fault to a Slack message: the
// replicas' admin fault API, Alertmanager's alert list and the Slack
// receiver's message list (alerts/slackrecv). Once the fault is on at
// every replica, the alert becomes active fireAfter later and its firing
// message reaches Slack slackAfter after that; once the fault is off at
// every replica, the alert is gone resolveAfter later and its resolved
// message follows slackAfter after that. Slack already holds an earlier
// run's messages about the alert. Where it differs: no rule is evaluated
// (the delays stand in for Prometheus's windows and Alertmanager's group
// waits), alerts carry only labels and state, and Alertmanager answers
// only the check's exact filter.
type alerting struct {
	alert, severity, fault, token string
	fireAfter, resolveAfter       time.Duration
	slackAfter                    time.Duration
	refuse                        map[string]bool // replicas that answer 500 to switching the fault on

	mu                sync.Mutex
	on                map[string]bool // the fault, by replica
	wentOn            bool            // whether the fault ever went on anywhere
	allOnAt, allOffAt time.Time       // when the fault was on at every replica, and then off at every one
}

func newAlerting(replicas ...string) *alerting {
	a := &alerting{
		alert: "ParleyAckAvailabilityBudgetBurn", severity: "critical", fault: "send_errors", token: "admin-token",
		fireAfter: 30 * time.Second, resolveAfter: time.Minute, slackAfter: 5 * time.Second,
		refuse: map[string]bool{}, on: map[string]bool{},
	}
	for _, r := range replicas {
		a.on[r] = false
	}
	return a
}

// config is the check's configuration for the stand-in.
func (a *alerting) config() Config {
	c := Config{
		Names: []string{SLOAlert}, AdminToken: a.token, Alertmanager: "http://alertmanager", Slack: "http://slack/",
		Alert: a.alert, Severity: a.severity, Fault: a.fault, FaultAfter: 10 * time.Second, Timeout: 5 * time.Minute,
	}
	for r := range a.on {
		c.Admins = append(c.Admins, "http://"+r)
	}
	return c
}

// standIns are the stand-in's hosts: each replica, alertmanager and slack.
func (a *alerting) standIns() standIns {
	s := standIns{"alertmanager": http.HandlerFunc(a.alerts), "slack": http.HandlerFunc(a.messages)}
	for r := range a.on {
		s[r] = a.admin(r)
	}
	return s
}

// faultOn says which replicas have the fault on, and whether it ever
// went on anywhere.
func (a *alerting) faultOn() (on map[string]bool, ever bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.on), a.wentOn
}

func (a *alerting) admin(replica string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("Authorization") != "Bearer "+a.token:
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		case r.URL.Path != "/admin/faults/"+a.fault || (r.Method != http.MethodPut && r.Method != http.MethodDelete):
			http.NotFound(w, r)
			return
		case r.Method == http.MethodPut && a.refuse[replica]:
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		a.on[replica] = r.Method == http.MethodPut
		a.wentOn = a.wentOn || a.on[replica]
		all, none := true, true
		for _, on := range a.on {
			all, none = all && on, none && !on
		}
		if all && a.allOnAt.IsZero() {
			a.allOnAt = time.Now()
		}
		if none && !a.allOnAt.IsZero() && a.allOffAt.IsZero() {
			a.allOffAt = time.Now()
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// firedAt is when the alert fired, if it did: never if the fault went off
// first.
func (a *alerting) firedAt() (time.Time, bool) {
	at := a.allOnAt.Add(a.fireAfter)
	if a.allOnAt.IsZero() || (!a.allOffAt.IsZero() && a.allOffAt.Before(at)) {
		return time.Time{}, false
	}
	return at, true
}

// resolvedAt is when the alert resolved, if it fired and did.
func (a *alerting) resolvedAt() (time.Time, bool) {
	if _, fired := a.firedAt(); !fired || a.allOffAt.IsZero() {
		return time.Time{}, false
	}
	return a.allOffAt.Add(a.resolveAfter), true
}

// reached says whether it is at or past at, if there is an at.
func reached(at time.Time, ok bool) bool {
	return ok && !time.Now().Before(at)
}

func (a *alerting) alerts(w http.ResponseWriter, r *http.Request) {
	want := []string{fmt.Sprintf("alertname=%q", a.alert), fmt.Sprintf("severity=%q", a.severity)}
	if r.URL.Path != "/api/v2/alerts" || !slices.Equal(r.URL.Query()["filter"], want) {
		http.Error(w, "unexpected query "+r.URL.String(), http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var alerts []any
	fired, resolved := reached(a.firedAt()), reached(a.resolvedAt())
	if fired && !resolved {
		alerts = append(alerts, map[string]any{
			"labels": map[string]string{"alertname": a.alert, "severity": a.severity},
			"status": map[string]any{"state": "active", "inhibitedBy": []string{}, "silencedBy": []string{}},
		})
	}
	_ = json.NewEncoder(w).Encode(alerts)
}

func (a *alerting) messages(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	about := a.alert + " (" + a.severity + ") slo=ack-availability"
	titles := []string{"[FIRING:1] " + about, "[RESOLVED] " + about} // an earlier run's
	if at, ok := a.firedAt(); reached(at.Add(a.slackAfter), ok) {
		titles = append(titles, "[FIRING:1] "+about)
	}
	if at, ok := a.resolvedAt(); reached(at.Add(a.slackAfter), ok) {
		titles = append(titles, "[RESOLVED] "+about)
	}
	var inbox struct {
		Messages []map[string]any `json:"messages"`
	}
	for _, t := range slices.Backward(titles) { // newest first, as slackrecv lists them
		inbox.Messages = append(inbox.Messages, map[string]any{"hook": "parley", "attachments": []map[string]string{{"title": t}}})
	}
	_ = json.NewEncoder(w).Encode(inbox)
}

// rulesAPI stands in for Prometheus's /api/v1/rules, serving the rule
// files at paths as a Prometheus that loaded them with the given global
// evaluation interval would: each group with its interval in seconds,
// each rule with its type, name, query and labels. Where it differs: the
// queries are served as written, where Prometheus prints them again from
// their parse (resolvewait_test.go also reads a real Prometheus), and
// rules carry no state, health or evaluation times.
func rulesAPI(t *testing.T, global time.Duration, paths ...string) http.Handler {
	t.Helper()
	type rule struct {
		Type   string            `json:"type"`
		Name   string            `json:"name"`
		Query  string            `json:"query"`
		Labels map[string]string `json:"labels,omitempty"`
	}
	type group struct {
		Name     string  `json:"name"`
		File     string  `json:"file"`
		Interval float64 `json:"interval"`
		Rules    []rule  `json:"rules"`
	}
	var groups []group
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var file struct {
			Groups []struct {
				Name     string `yaml:"name"`
				Interval string `yaml:"interval"`
				Rules    []struct {
					Record, Alert, Expr string
					Labels              map[string]string
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(raw, &file); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, g := range file.Groups {
			interval := global
			if g.Interval != "" {
				d, err := model.ParseDuration(g.Interval)
				if err != nil {
					t.Fatalf("%s: group %s: %v", path, g.Name, err)
				}
				interval = time.Duration(d)
			}
			out := group{Name: g.Name, File: path, Interval: interval.Seconds()}
			for _, r := range g.Rules {
				kind, name := "recording", r.Record
				if r.Alert != "" {
					kind, name = "alerting", r.Alert
				}
				out.Rules = append(out.Rules, rule{Type: kind, Name: name, Query: r.Expr, Labels: r.Labels})
			}
			groups = append(groups, out)
		}
	}
	body, err := json.Marshal(map[string]any{"status": "success", "data": map[string]any{"groups": groups}})
	if err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/rules" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}
