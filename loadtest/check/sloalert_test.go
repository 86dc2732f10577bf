package check

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// The check switches the fault on at every replica FaultAfter into the
// load, sees the alert fire in Alertmanager and its new message in Slack
// (an earlier run's messages do not count), switches the fault off and
// sees both resolve, timing each from the fault's change.
func TestSLOAlertCheckSeesTheAlertFireAndResolve(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a := newAlerting("replica-1", "replica-2")
		v := checkerOf(a.config(), a.standIns()).sloAlert(t.Context())
		if !v.Pass {
			t.Fatalf("got %+v, want a pass", v)
		}
		want := map[string]string{"time_to_fire": "30s", "time_to_slack_firing": "35s", "time_to_resolve": "1m0s", "time_to_slack_resolved": "1m5s"}
		for k, w := range want {
			if v.Figures[k] != w {
				t.Errorf("%s = %q, want %q", k, v.Figures[k], w)
			}
		}
		if on, _ := a.faultOn(); on["replica-1"] || on["replica-2"] {
			t.Errorf("the fault is still on: %v", on)
		}
	})
}

func TestSLOAlertCheckFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		spoil   func(*alerting, *Config)
		want    string
		faulted bool // whether the fault went on anywhere
	}{
		{"a replica refuses the fault", func(a *alerting, _ *Config) { a.refuse["replica-2"] = true },
			"switching send_errors on: PUT http://replica-2: 500 Internal Server Error", true},
		{"the alert never fires", func(a *alerting, _ *Config) { a.fireAfter = time.Hour },
			"ParleyAckAvailabilityBudgetBurn did not fire in Alertmanager within 5m0s of the fault: timed out", true},
		{"Slack never hears of it", func(a *alerting, _ *Config) { a.slackAfter = time.Hour },
			"no firing Slack message for ParleyAckAvailabilityBudgetBurn: timed out", true},
		{"the alert never resolves", func(a *alerting, _ *Config) { a.resolveAfter = time.Hour },
			"ParleyAckAvailabilityBudgetBurn did not resolve within 5m0s of the fault's end: timed out", true},
		{"a wrong admin token", func(_ *alerting, c *Config) { c.AdminToken = "wrong" },
			"switching send_errors on: PUT http://replica-1: 401 Unauthorized", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				a := newAlerting("replica-1", "replica-2")
				c := a.config()
				c.Admins = []string{"http://replica-1", "http://replica-2"} // in order, for the message
				tt.spoil(a, &c)
				v := checkerOf(c, a.standIns()).sloAlert(t.Context())
				if v.Pass || !strings.Contains(v.Detail, tt.want) {
					t.Fatalf("got %+v, want a failure saying %q", v, tt.want)
				}
				// Whatever went wrong, no fault is left behind.
				on, ever := a.faultOn()
				if on["replica-1"] || on["replica-2"] {
					t.Errorf("the fault is still on: %v", on)
				}
				if ever != tt.faulted {
					t.Errorf("the fault went on: %v, want %v", ever, tt.faulted)
				}
			})
		})
	}
}

// An interrupted run ends the check before the fault is due, and no fault
// goes on.
func TestSLOAlertCheckEndsWithTheRun(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a := newAlerting("replica-1")
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		v := checkerOf(a.config(), a.standIns()).sloAlert(ctx)
		if v.Pass || v.Detail != "the load ended before the fault was due" {
			t.Fatalf("got %+v, want the check ended before the fault", v)
		}
		if _, ever := a.faultOn(); ever {
			t.Error("the fault went on")
		}
	})
}
