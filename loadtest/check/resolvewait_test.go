package check

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleychat/parley/internal/testenv"
)

// shippedRules are the generated SLO rule files, as deployments load them.
func shippedRules(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob("../../alerts/generated/*.rules.yml")
	if len(files) == 0 {
		t.Fatal("no rule files in alerts/generated")
	}
	return files
}

// The wait for a resolve follows the fired rule: a page resolves once its
// 6x condition's 30m window holds no error, a ticket once its 1x
// condition's 6h window does, an alert that reads no range at its next
// evaluation; each plus the evaluations of the recording rules and of the
// alert (15 s each here).
func TestResolveWaitFollowsTheRule(t *testing.T) {
	t.Parallel()
	prom := rulesAPI(t, 15*time.Second, shippedRules(t)...)
	tests := []struct {
		alert, severity string
		want            time.Duration
		why             string
	}{
		{"ParleyAckAvailabilityBudgetBurn", "critical", 30*time.Minute + 30*time.Second, "its 30m0s window"},
		{"ParleyAckAvailabilityBudgetBurn", "warning", 6*time.Hour + 30*time.Second, "its 6h0m0s window"},
		{"ParleyConnectAvailabilityBudgetBurn", "critical", 30*time.Minute + 30*time.Second, "its 30m0s window"},
		{"ParleyCanaryBudgetBurn", "critical", 30*time.Minute + 30*time.Second, "its 30m0s window"},
		{"ParleyAckAvailabilitySLIAbsent", "warning", 15 * time.Second, "reads no range"},
	}
	for _, tt := range tests {
		t.Run(tt.alert+" "+tt.severity, func(t *testing.T) {
			t.Parallel()
			k := checkerOf(Config{Prometheus: "http://prometheus/", Alert: tt.alert, Severity: tt.severity}, standIns{"prometheus": prom})
			got, why, err := k.resolveWait(t.Context())
			if err != nil || got != tt.want || !strings.Contains(why, tt.why) {
				t.Fatalf("got %v (%s), %v; want %v, saying %q", got, why, err, tt.want, tt.why)
			}
		})
	}
}

// An alert that Prometheus does not have, or not with that severity, is
// an error that names it, as is a Prometheus that cannot answer.
func TestResolveWaitOfAnAlertPrometheusLacks(t *testing.T) {
	t.Parallel()
	prom := rulesAPI(t, 15*time.Second, shippedRules(t)...)
	for _, tt := range []struct {
		alert, severity, host, want string
	}{
		{"ParleyNoSuchAlert", "critical", "prometheus", "no alerting rule ParleyNoSuchAlert with severity critical in Prometheus"},
		{"ParleyAckAvailabilitySLIAbsent", "critical", "prometheus", "no alerting rule ParleyAckAvailabilitySLIAbsent with severity critical"},
		{"ParleyAckAvailabilityBudgetBurn", "critical", "elsewhere", "reading the rules of ParleyAckAvailabilityBudgetBurn"},
	} {
		k := checkerOf(Config{Prometheus: "http://" + tt.host, Alert: tt.alert, Severity: tt.severity}, standIns{"prometheus": prom})
		if _, _, err := k.resolveWait(t.Context()); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %s at %s: got %v, want an error saying %q", tt.alert, tt.severity, tt.host, err, tt.want)
		}
	}
}

// With Prometheus the check waits for the resolve as long as the rule
// says, and -check-timeout more: a page that resolves 31 minutes after the
// fault ends, as a real-window page does, passes with a timeout of five
// minutes. Without Prometheus the same page fails at the timeout.
func TestSLOAlertCheckWaitsForTheResolveTheRuleAllows(t *testing.T) {
	t.Parallel()
	prom := rulesAPI(t, 15*time.Second, shippedRules(t)...)
	for _, withPrometheus := range []bool{true, false} {
		t.Run(fmt.Sprintf("prometheus %v", withPrometheus), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				a := newAlerting("replica-1", "replica-2")
				a.resolveAfter = 31 * time.Minute
				c := a.config()
				s := a.standIns()
				if withPrometheus {
					c.Prometheus = "http://prometheus"
					s["prometheus"] = prom
				}
				v := checkerOf(c, s).sloAlert(t.Context())
				if !withPrometheus {
					if v.Pass || !strings.Contains(v.Detail, "did not resolve within 5m0s of the fault's end") {
						t.Fatalf("got %+v, want a failure at the 5m timeout", v)
					}
					return
				}
				if !v.Pass || v.Figures["time_to_resolve"] != "31m0s" || v.Figures["resolve_wait"] != "35m30s" {
					t.Fatalf("got %+v, want a pass, resolved at 31m0s after waiting up to 35m30s", v)
				}
				if on, _ := a.faultOn(); on["replica-1"] || on["replica-2"] {
					t.Errorf("the fault is still on: %v", on)
				}
			})
		})
	}
}

// An alert Prometheus does not have fails the check before any fault goes
// on: it would never fire.
func TestSLOAlertCheckRefusesAnAlertPrometheusLacks(t *testing.T) {
	t.Parallel()
	prom := rulesAPI(t, 15*time.Second, shippedRules(t)...)
	synctest.Test(t, func(t *testing.T) {
		a := newAlerting("replica-1")
		c := a.config()
		c.Prometheus, c.Alert = "http://prometheus", "ParleyTypo"
		s := a.standIns()
		s["prometheus"] = prom
		v := checkerOf(c, s).sloAlert(t.Context())
		if v.Pass || !strings.Contains(v.Detail, "no alerting rule ParleyTypo") {
			t.Fatalf("got %+v, want a failure naming the missing rule", v)
		}
		if _, ever := a.faultOn(); ever {
			t.Error("the fault went on")
		}
	})
}

// Against a real Prometheus that loaded the shipped rules: its rules API,
// with the queries as it prints them again, gives the same waits.
func TestResolveWaitFromARealPrometheus(t *testing.T) {
	t.Parallel()
	bin := testenv.Find(t, "prometheus", "prometheus")
	dir := t.TempDir()
	var files []string
	for _, f := range shippedRules(t) {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, fmt.Sprintf("%q", abs))
	}
	config := "global: {evaluation_interval: 15s}\nrule_files: [" + strings.Join(files, ", ") + "]\n"
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := "http://" + addr
	ready := testenv.Poll(30*time.Second, func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !ready {
		t.Fatalf("Prometheus did not become ready:\n%s", logs.String())
	}
	for _, tt := range []struct {
		alert, severity string
		want            time.Duration
	}{
		{"ParleyAckAvailabilityBudgetBurn", "critical", 30*time.Minute + 30*time.Second},
		{"ParleyDeliveryLatencyBudgetBurn", "warning", 6*time.Hour + 30*time.Second},
		{"ParleyApiAvailabilityBudgetBurn", "critical", 30*time.Minute + 30*time.Second},
	} {
		k := &checker{Config: Config{Prometheus: base, Alert: tt.alert, Severity: tt.severity}, http: &http.Client{Timeout: requestTimeout}, poll: pollEvery}
		got, why, err := k.resolveWait(t.Context())
		if err != nil || got != tt.want {
			t.Errorf("%s %s: got %v (%s), %v; want %v", tt.alert, tt.severity, got, why, err, tt.want)
		}
	}
}

// freeAddr is a loopback address with a port nothing listens on, for a
// program that cannot be told to pick its own and say which.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
