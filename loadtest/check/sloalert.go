package check

import (
	"context"
	"fmt"
	"time"

	"github.com/parleychat/parley/loadtest/report"
	"github.com/parleychat/parley/loadtest/wait"
)

// sloAlert switches a fault on through the admin API of every replica,
// waits for the alert in Alertmanager (and in Slack, when given), switches
// the fault off and waits for the alert to resolve: the alerting path,
// proven end to end under real traffic. With Prometheus it waits for the
// resolve as long as the alert's rule says it can take (resolvewait.go),
// and Timeout more; without, Timeout.
func (k *checker) sloAlert(ctx context.Context) (v report.CheckVerdict) {
	v = report.CheckVerdict{Name: SLOAlert, Figures: map[string]string{"alert": k.Alert, "fault": k.Fault}}
	if wait.Sleep(ctx, k.FaultAfter) != nil {
		v.Detail = "the load ended before the fault was due"
		return v
	}
	resolveTimeout := k.Timeout
	if k.Prometheus != "" {
		// Read before the fault goes on: an alert Prometheus does not
		// have would never fire.
		rule, why, err := k.resolveWait(ctx)
		if err != nil {
			v.Detail = err.Error()
			return v
		}
		resolveTimeout += rule
		v.Figures["resolve_wait"] = resolveTimeout.String()
		v.Figures["resolve_wait_why"] = fmt.Sprintf("%v by the rule (%s), and -check-timeout", rule, why)
	}
	// Slack messages already there (an earlier run's) do not count.
	firingBefore, _ := k.slackCount(ctx, slackFiring)
	resolvedBefore, _ := k.slackCount(ctx, slackResolved)
	faultOn := true
	defer func() {
		// Never leave a fault behind: switch it off at every replica even
		// if switching it on failed halfway, and say so if that fails.
		if faultOn {
			if err := k.setFault(context.WithoutCancel(ctx), false); err != nil {
				v.Pass = false
				v.Detail += fmt.Sprintf("; switching %s off failed, check the replicas: %v", k.Fault, err)
			}
		}
	}()
	if err := k.setFault(ctx, true); err != nil {
		v.Detail = fmt.Sprintf("switching %s on: %v", k.Fault, err)
		return v
	}
	if err := k.waitForFiring(ctx, firingBefore, v.Figures); err != nil {
		v.Detail = err.Error()
		return v
	}
	if err := k.setFault(ctx, false); err != nil {
		v.Detail = fmt.Sprintf("switching %s off: %v", k.Fault, err)
		return v
	}
	faultOn = false
	if err := k.waitForResolved(ctx, resolveTimeout, resolvedBefore, v.Figures); err != nil {
		v.Detail = err.Error()
		return v
	}
	v.Pass = true
	v.Detail = fmt.Sprintf("%s fired %s after %s went on and resolved %s after it went off",
		k.Alert, v.Figures["time_to_fire"], k.Fault, v.Figures["time_to_resolve"])
	return v
}

// waitForFiring waits, from the fault's start, for Alertmanager to hold
// the alert active and then for the Slack receiver to hold more firing
// messages about it than slackBefore, and records how long each took.
func (k *checker) waitForFiring(ctx context.Context, slackBefore int, figures map[string]string) error {
	deadline := time.Now().Add(k.Timeout)
	fired, err := wait.Until(ctx, k.poll, deadline, func() (bool, error) {
		n, err := k.alertCount(ctx, true)
		return n > 0, err
	})
	if err != nil {
		return fmt.Errorf("%s did not fire in Alertmanager within %v of the fault: %w", k.Alert, k.Timeout, err)
	}
	figures["time_to_fire"] = fired.Round(time.Second).String()
	if k.Slack == "" {
		return nil
	}
	d, err := wait.Until(ctx, k.poll, deadline, func() (bool, error) {
		n, err := k.slackCount(ctx, slackFiring)
		return n > slackBefore, err
	})
	if err != nil {
		return fmt.Errorf("no firing Slack message for %s: %w", k.Alert, err)
	}
	figures["time_to_slack_firing"] = (fired + d).Round(time.Second).String()
	return nil
}

// waitForResolved waits, from the fault's end and for at most timeout,
// for Alertmanager to hold the alert no more, suppressed or not, and then
// for the Slack receiver to hold more resolved messages about it than
// slackBefore, and records how long each took.
func (k *checker) waitForResolved(ctx context.Context, timeout time.Duration, slackBefore int, figures map[string]string) error {
	deadline := time.Now().Add(timeout)
	resolved, err := wait.Until(ctx, k.poll, deadline, func() (bool, error) {
		n, err := k.alertCount(ctx, false)
		return n == 0 && err == nil, err
	})
	if err != nil {
		return fmt.Errorf("%s did not resolve within %v of the fault's end: %w", k.Alert, timeout, err)
	}
	figures["time_to_resolve"] = resolved.Round(time.Second).String()
	if k.Slack == "" {
		return nil
	}
	d, err := wait.Until(ctx, k.poll, deadline, func() (bool, error) {
		n, err := k.slackCount(ctx, slackResolved)
		return n > slackBefore, err
	})
	if err != nil {
		return fmt.Errorf("no resolved Slack message for %s: %w", k.Alert, err)
	}
	figures["time_to_slack_resolved"] = (resolved + d).Round(time.Second).String()
	return nil
}
