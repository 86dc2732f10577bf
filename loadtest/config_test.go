package main

import (
	"io"
	"regexp"
	"strings"
	"testing"
)

// env is an environment of the variables in m alone, for run's getenv.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFlagErrorsNameTheFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no target", []string{"-scenario", "s.yaml"}, "-target is required"},
		{"no scenario", []string{"-target", "http://127.0.0.1:8080"}, "-scenario is required"},
		{"a bad source address", []string{"-target", "http://x", "-scenario", "s", "-source-addrs", "127.0.0.2,nope"}, `-source-addrs: "nope"`},
		{"a zero rate limit", []string{"-target", "http://x", "-scenario", "s", "-max-rate", "0"}, "-max-rate must be positive"},
		{"a short password", []string{"-target", "http://x", "-scenario", "s", "-password", "short"}, "-password"},
		{"a run id with a slash", []string{"-target", "http://x", "-scenario", "s", "-run-id", "a/b"}, "-run-id"},
		{"a missing CA file", []string{"-target", "https://x", "-scenario", "s", "-ca-file", "/nonexistent/ca.pem"}, "-ca-file: open /nonexistent/ca.pem"},
		{"autoscale without a source", []string{"-target", "http://x", "-scenario", "s", "-check", "autoscale"}, "-check autoscale needs -prometheus or -deployment"},
		{"a kubeconfig without a deployment", []string{"-target", "http://x", "-scenario", "s", "-check", "autoscale", "-prometheus", "http://p", "-kubeconfig", "k"}, "-kubeconfig needs -deployment"},
		{"a deployment outside a pod", []string{"-target", "http://x", "-scenario", "s", "-check", "autoscale", "-deployment", "ns/parley"}, "KUBERNETES_SERVICE_HOST"},
		{"a missing kubeconfig", []string{"-target", "http://x", "-scenario", "s", "-check", "autoscale", "-deployment", "ns/parley", "-kubeconfig", "/nonexistent/kubeconfig"}, "-kubeconfig: open /nonexistent/kubeconfig"},
		{"a CA file without certificates", []string{"-target", "https://x", "-scenario", "s", "-ca-file", "config_test.go"}, "-ca-file: config_test.go holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, env(nil), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	c, err := parseFlags([]string{"-target", "http://a:1, http://b:2", "-scenario", "s"}, env(nil), io.Discard)
	if err != nil || len(c.targets) != 2 || c.targets[1] != "http://b:2" || len(c.runID) != 8 {
		t.Fatalf("got %+v, %v; want two targets and a random run id", c, err)
	}
}

// The guard rails refuse a scenario above -max-rate or -max-duration,
// naming the flag to raise, before anything is sent.
func TestGuardRailsNameTheFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-max-rate", "10"}, "-max-rate 10"},
		{[]string{"-max-duration", "5s"}, "-max-duration 5s"},
	} {
		args := append([]string{"-target", "http://127.0.0.1:1", "-scenario", "scenarios/smoke.yaml", "-quiet"}, tt.args...)
		err := run(t.Context(), args, env(nil), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want an error naming %q", tt.args, err, tt.want)
		}
	}
}

func TestTraceparentIsW3C(t *testing.T) {
	valid := regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$`)
	for _, sampled := range []bool{true, false} {
		tp := traceparent(sampled)
		if !valid.MatchString(tp) || strings.HasSuffix(tp, "-01") != sampled {
			t.Errorf("traceparent(%v) = %q, want a W3C traceparent with the sampled flag %v", sampled, tp, sampled)
		}
	}
	if a, b := traceparent(true), traceparent(true); a == b {
		t.Errorf("two traces share an id: %s", a)
	}
}

// Tokens come from the environment unless a flag gives them.
func TestTokensDefaultToTheEnvironment(t *testing.T) {
	t.Parallel()
	environ := env(map[string]string{"GRAFANA_TOKEN": "grafana-from-env", "PARLEY_ADMIN_TOKEN": "admin-from-env"})
	base := []string{"-target", "http://x", "-scenario", "s"}
	c, err := parseFlags(base, environ, io.Discard)
	if err != nil || c.grafanaToken != "grafana-from-env" || c.checks.AdminToken != "admin-from-env" {
		t.Fatalf("got %q and %q, %v; want the environment's tokens", c.grafanaToken, c.checks.AdminToken, err)
	}
	c, err = parseFlags(append(base, "-grafana-token", "flag", "-admin-token", "flag"), environ, io.Discard)
	if err != nil || c.grafanaToken != "flag" || c.checks.AdminToken != "flag" {
		t.Fatalf("got %q and %q, %v; want the flags' tokens", c.grafanaToken, c.checks.AdminToken, err)
	}
}
