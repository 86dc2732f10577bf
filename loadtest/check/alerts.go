package check

import (
	"context"
	"fmt"
	"net/url"
	"strings"
)

// alertCount asks Alertmanager how many alerts of the check's name and
// severity it holds: active ones only, or also suppressed ones (inhibited
// or silenced), which are still firing.
func (k *checker) alertCount(ctx context.Context, activeOnly bool) (int, error) {
	q := url.Values{"filter": {fmt.Sprintf("alertname=%q", k.Alert), fmt.Sprintf("severity=%q", k.Severity)}}
	var alerts []struct {
		Status struct{ State string } `json:"status"`
	}
	if err := k.getJSON(ctx, strings.TrimSuffix(k.Alertmanager, "/")+"/api/v2/alerts?"+q.Encode(), &alerts); err != nil {
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

// The titles of the Slack messages that an alert fired or resolved.
const (
	slackFiring   = "[FIRING"
	slackResolved = "[RESOLVED]"
)

// slackCount counts the Slack receiver's messages about the check's alert
// whose title starts with status. Without a receiver it is 0.
func (k *checker) slackCount(ctx context.Context, status string) (int, error) {
	if k.Slack == "" {
		return 0, nil
	}
	var inbox struct {
		Messages []struct {
			Attachments []struct{ Title string } `json:"attachments"`
		} `json:"messages"`
	}
	if err := k.getJSON(ctx, strings.TrimSuffix(k.Slack, "/")+"/messages", &inbox); err != nil {
		return 0, err
	}
	n := 0
	for _, m := range inbox.Messages {
		for _, a := range m.Attachments {
			// The title is alerts/templates/slack.tmpl's:
			// "[FIRING:1] ParleyAckAvailabilityBudgetBurn (critical) slo=...".
			if strings.HasPrefix(a.Title, status) && strings.Contains(a.Title, k.Alert+" ("+k.Severity+")") {
				n++
			}
		}
	}
	return n, nil
}
