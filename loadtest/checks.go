package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parleychat/parley/loadtest/kube"
	"github.com/parleychat/parley/loadtest/report"
	"github.com/parleychat/parley/loadtest/wait"
)

// checkConfig is what the platform checks need besides the run.
type checkConfig struct {
	names        []string // slo-alert, autoscale
	admins       []string // the replicas' admin URLs, for the fault API
	adminToken   string
	alertmanager string
	slack        string // the Slack receiver's base URL (its /messages), optional
	alert        string
	severity     string
	fault        string
	faultAfter   time.Duration
	timeout      time.Duration
	prometheus   string
	replicas     string           // PromQL: how many replicas are ready
	critical     string           // PromQL: pages firing, to judge whether the SLO held
	deployment   *kube.Deployment // when set, the replicas come from its status instead of from replicas
}

// pollEvery is how often the checks look.
const pollEvery = time.Second

// errEmpty is a query's answer with no sample: for the replica count it
// means Prometheus does not see the deployment, which is not zero replicas.
var errEmpty = errors.New("the query returned no sample")

// checkHTTP bounds every request of the checks.
var checkHTTP = &http.Client{Timeout: 10 * time.Second}

// getJSON GETs u and decodes its JSON answer into out.
func getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := checkHTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// sloAlert switches a fault on through the admin API of every replica,
// waits for the alert in Alertmanager (and in Slack, when given), switches
// the fault off and waits for the alert to resolve: the alerting path,
// proven end to end under real traffic.
func sloAlert(ctx context.Context, c checkConfig) (v report.CheckVerdict) {
	v = report.CheckVerdict{Name: "slo-alert", Figures: map[string]string{"alert": c.alert, "fault": c.fault}}
	fail := func(format string, args ...any) report.CheckVerdict {
		v.Detail = fmt.Sprintf(format, args...)
		return v
	}
	if wait.Sleep(ctx, c.faultAfter) != nil {
		return fail("the load ended before the fault was due")
	}
	// Slack messages already there (an earlier run's) do not count.
	firingBefore, _ := slackCount(ctx, c, "[FIRING")
	resolvedBefore, _ := slackCount(ctx, c, "[RESOLVED]")
	faultOn := true
	defer func() {
		// Never leave a fault behind: switch it off at every replica even
		// if switching it on failed halfway, and say so if that fails.
		if faultOn {
			if err := setFault(context.WithoutCancel(ctx), c, false); err != nil {
				v.Pass = false
				v.Detail += fmt.Sprintf("; switching %s off failed, check the replicas: %v", c.fault, err)
			}
		}
	}()
	if err := setFault(ctx, c, true); err != nil {
		return fail("switching %s on: %v", c.fault, err)
	}
	deadline := time.Now().Add(c.timeout)
	fired, err := wait.Until(ctx, pollEvery, deadline, func() (bool, error) {
		n, err := alertCount(ctx, c, true)
		return n > 0, err
	})
	if err != nil {
		return fail("%s did not fire in Alertmanager within %v of the fault: %v", c.alert, c.timeout, err)
	}
	v.Figures["time_to_fire"] = fired.Round(time.Second).String()
	if c.slack != "" {
		d, err := wait.Until(ctx, pollEvery, deadline, func() (bool, error) {
			n, err := slackCount(ctx, c, "[FIRING")
			return n > firingBefore, err
		})
		if err != nil {
			return fail("no firing Slack message for %s: %v", c.alert, err)
		}
		v.Figures["time_to_slack_firing"] = (fired + d).Round(time.Second).String()
	}

	if err := setFault(ctx, c, false); err != nil {
		return fail("switching %s off: %v", c.fault, err)
	}
	faultOn = false
	deadline = time.Now().Add(c.timeout)
	resolved, err := wait.Until(ctx, pollEvery, deadline, func() (bool, error) {
		n, err := alertCount(ctx, c, false)
		return n == 0 && err == nil, err
	})
	if err != nil {
		return fail("%s did not resolve within %v of the fault's end: %v", c.alert, c.timeout, err)
	}
	v.Figures["time_to_resolve"] = resolved.Round(time.Second).String()
	if c.slack != "" {
		d, err := wait.Until(ctx, pollEvery, deadline, func() (bool, error) {
			n, err := slackCount(ctx, c, "[RESOLVED]")
			return n > resolvedBefore, err
		})
		if err != nil {
			return fail("no resolved Slack message for %s: %v", c.alert, err)
		}
		v.Figures["time_to_slack_resolved"] = (resolved + d).Round(time.Second).String()
	}
	v.Pass = true
	v.Detail = fmt.Sprintf("%s fired %s after %s went on and resolved %s after it went off",
		c.alert, v.Figures["time_to_fire"], c.fault, v.Figures["time_to_resolve"])
	return v
}

// setFault switches the check's fault on or off at every replica.
func setFault(ctx context.Context, c checkConfig, on bool) error {
	method, body := http.MethodDelete, ""
	if on {
		method, body = http.MethodPut, `{"rate":1}`
	}
	var errs []error
	for _, admin := range c.admins { // every replica, whatever the others answer
		req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(admin, "/")+"/admin/faults/"+c.fault, strings.NewReader(body))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		req.Header.Set("Authorization", "Bearer "+c.adminToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := checkHTTP.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			errs = append(errs, fmt.Errorf("%s %s: %s", method, admin, resp.Status))
		}
	}
	return errors.Join(errs...)
}

// alertCount asks Alertmanager how many alerts of the check's name and
// severity it holds: active ones only, or also suppressed ones (inhibited
// or silenced), which are still firing.
func alertCount(ctx context.Context, c checkConfig, activeOnly bool) (int, error) {
	q := url.Values{"filter": {fmt.Sprintf("alertname=%q", c.alert), fmt.Sprintf("severity=%q", c.severity)}}
	var alerts []struct {
		Status struct{ State string } `json:"status"`
	}
	if err := getJSON(ctx, strings.TrimSuffix(c.alertmanager, "/")+"/api/v2/alerts?"+q.Encode(), &alerts); err != nil {
		return 0, err
	}
	n := 0
	for _, a := range alerts {
		if !activeOnly || a.Status.State == "active" {
			n++
		}
	}
	return n, nil
}

// slackCount counts the Slack receiver's messages about the check's alert
// whose title starts with status. Without a receiver it is 0.
func slackCount(ctx context.Context, c checkConfig, status string) (int, error) {
	if c.slack == "" {
		return 0, nil
	}
	var inbox struct {
		Messages []struct {
			Attachments []struct{ Title string } `json:"attachments"`
		} `json:"messages"`
	}
	if err := getJSON(ctx, strings.TrimSuffix(c.slack, "/")+"/messages", &inbox); err != nil {
		return 0, err
	}
	n := 0
	for _, m := range inbox.Messages {
		for _, a := range m.Attachments {
			// The title is alerts/templates/slack.tmpl's:
			// "[FIRING:1] ParleyAckAvailabilityBudgetBurn (critical) slo=...".
			if strings.HasPrefix(a.Title, status) && strings.Contains(a.Title, c.alert+" ("+c.severity+")") {
				n++
			}
		}
	}
	return n, nil
}

// autoscale watches the number of ready replicas (from the Kubernetes API
// with a Deployment, else a Prometheus query) from the start of the load,
// and passes when it grows within the timeout and no page fired. Pages are
// watched (when Prometheus is given) until the load ends, not only until
// the scale-up: new replicas that take connections and then fail would
// break the SLO after the replica count looked fine.
func autoscale(ctx context.Context, c checkConfig, loadEnded <-chan struct{}) report.CheckVerdict {
	v := report.CheckVerdict{Name: "autoscale", Figures: map[string]string{}}
	replicas := func(ctx context.Context) (float64, error) { return promScalar(ctx, c.prometheus, c.replicas) }
	if c.deployment != nil {
		replicas = func(ctx context.Context) (float64, error) {
			n, err := c.deployment.ReadyReplicas(ctx)
			return float64(n), err
		}
	}
	start := time.Now()
	before, err := replicas(ctx)
	if err != nil {
		v.Detail = "reading the replica count: " + err.Error()
		return v
	}
	v.Figures["replicas_before"] = strconv.Itoa(int(before))
	paged := false
	watchPages := func() {
		// count() of no firing page is an empty answer, not an error.
		if c.prometheus != "" {
			if n, err := promScalar(ctx, c.prometheus, c.critical); err == nil && n > 0 {
				paged = true
			}
		}
	}
	after := before
	took, err := wait.Until(ctx, pollEvery, start.Add(c.timeout), func() (bool, error) {
		watchPages()
		n, err := replicas(ctx)
		after = n
		return err == nil && n > before, err
	})
	v.Figures["replicas_after"] = strconv.Itoa(int(after))
	if err != nil {
		v.Figures["slo_held"] = strconv.FormatBool(!paged)
		v.Detail = fmt.Sprintf("no scale-up within %v of the load's start (replicas stayed at %d): %v", c.timeout, int(before), err)
		return v
	}
	v.Figures["time_to_scale"] = took.Round(time.Second).String()
	if c.prometheus != "" {
		tick := time.NewTicker(pollEvery)
		defer tick.Stop()
	watch:
		for !paged {
			select {
			case <-loadEnded:
				break watch
			case <-ctx.Done():
				break watch
			case <-tick.C:
				watchPages()
			}
		}
	}
	v.Figures["slo_held"] = strconv.FormatBool(!paged)
	v.Pass = !paged
	v.Detail = fmt.Sprintf("replicas went from %d to %d, ready %s after the load started; a page fired during the load: %v",
		int(before), int(after), v.Figures["time_to_scale"], paged)
	return v
}

// promScalar evaluates query at Prometheus and returns the first sample's
// value, or errEmpty when the answer is empty.
func promScalar(ctx context.Context, prom, query string) (float64, error) {
	var body struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			}
		}
	}
	if err := getJSON(ctx, strings.TrimSuffix(prom, "/")+"/api/v1/query?"+url.Values{"query": {query}}.Encode(), &body); err != nil {
		return 0, err
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("query %s: %s", query, body.Error)
	}
	if len(body.Data.Result) == 0 {
		return 0, errEmpty
	}
	s, _ := body.Data.Result[0].Value[1].(string)
	return strconv.ParseFloat(s, 64)
}
