package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parleychat/parley/loadtest/kube"
)

// env is an environment of the variables in m alone, for run's getenv.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFlagErrorsNameTheFlag(t *testing.T) {
	t.Parallel()
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
		{"an unknown check", []string{"-target", "http://x", "-scenario", "s", "-check", "slo-alert,chaos"}, `-check: unknown check "chaos"`},
		{"slo-alert without Alertmanager", []string{"-target", "http://x", "-scenario", "s", "-check", "slo-alert", "-admin", "http://a", "-admin-token", "t"}, "-check slo-alert needs -admin, -admin-token"},
		{"a missing kubeconfig", []string{"-target", "http://x", "-scenario", "s", "-check", "autoscale", "-deployment", "ns/parley", "-kubeconfig", "/nonexistent/kubeconfig"}, "-kubeconfig: open /nonexistent/kubeconfig"},
		{"a CA file without certificates", []string{"-target", "https://x", "-scenario", "s", "-ca-file", "flags_test.go"}, "-ca-file: flags_test.go holds no PEM certificate"},
		{"an SLI check without a scheme", []string{"-target", "http://x", "-scenario", "s", "-sli-check", "127.0.0.1:9091/metrics"}, `-sli-check: "127.0.0.1:9091/metrics" is not an http(s) URL`},
		{"a negative count tolerance", []string{"-target", "http://x", "-scenario", "s", "-sli-count-tolerance", "-0.1"}, "-sli-count-tolerance must be at least 0 and below 1"},
		{"a share tolerance of a whole", []string{"-target", "http://x", "-scenario", "s", "-sli-share-tolerance", "1"}, "-sli-share-tolerance must be at least 0 and below 1"},
		{"a share tolerance that is not a number", []string{"-target", "http://x", "-scenario", "s", "-sli-share-tolerance", "NaN"}, "-sli-share-tolerance must be"},
		{"a negative clock allowance", []string{"-target", "http://x", "-scenario", "s", "-sli-clock-allowance", "-1ms"}, "-sli-clock-allowance must not be negative"},
		{"a bound in milliseconds", []string{"-target", "http://x", "-scenario", "s", "-sli-bounds", "0.25,250ms"}, `-sli-bounds: "250ms" is not a positive number of seconds`},
		{"a zero bound", []string{"-target", "http://x", "-scenario", "s", "-sli-bounds", "0"}, `-sli-bounds: "0"`},
		{"no time to settle", []string{"-target", "http://x", "-scenario", "s", "-sli-quiesce", "0s"}, "-sli-quiesce must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseFlags(tt.args, env(nil), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	c, err := parseFlags([]string{"-target", "http://a:1, http://b:2", "-scenario", "s"}, env(nil), io.Discard)
	if err != nil || len(c.Targets) != 2 || c.Targets[1] != "http://b:2" || len(c.RunID) != 8 {
		t.Fatalf("got %+v, %v; want two targets and a random run id", c, err)
	}
	if len(c.Truth.Metrics) != 0 || !slices.Equal(c.Truth.Bounds, []float64{0.25, 1}) {
		t.Fatalf("got SLI check %+v, want none asked for, with the SLO's bounds", c.Truth)
	}
	c, err = parseFlags([]string{"-target", "http://a:1", "-scenario", "s", "-sli-check", "http://a:9091/metrics, http://b:9091/metrics"}, env(nil), io.Discard)
	if err != nil || len(c.Truth.Metrics) != 2 || c.Truth.Metrics[1] != "http://b:9091/metrics" {
		t.Fatalf("got SLI check %+v, %v; want both targets' metrics", c.Truth, err)
	}
}

// The guard rails refuse a scenario above -max-rate or -max-duration,
// naming the flag to raise, before anything is sent.
func TestGuardRailsNameTheFlag(t *testing.T) {
	t.Parallel()
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

// Tokens come from the environment unless a flag gives them.
func TestTokensDefaultToTheEnvironment(t *testing.T) {
	t.Parallel()
	environ := env(map[string]string{"GRAFANA_TOKEN": "grafana-from-env", "PARLEY_ADMIN_TOKEN": "admin-from-env"})
	base := []string{"-target", "http://x", "-scenario", "s"}
	c, err := parseFlags(base, environ, io.Discard)
	if err != nil || c.GrafanaToken != "grafana-from-env" || c.Checks.AdminToken != "admin-from-env" {
		t.Fatalf("got %q and %q, %v; want the environment's tokens", c.GrafanaToken, c.Checks.AdminToken, err)
	}
	c, err = parseFlags(append(base, "-grafana-token", "flag", "-admin-token", "flag"), environ, io.Discard)
	if err != nil || c.GrafanaToken != "flag" || c.Checks.AdminToken != "flag" {
		t.Fatalf("got %q and %q, %v; want the flags' tokens", c.GrafanaToken, c.Checks.AdminToken, err)
	}
}

// In a pod (the kubelet's variables set), -deployment alone reads the API
// as the pod's service account, from the files the kubelet mounts.
func TestDeploymentInAPodReadsTheServiceAccount(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(kube.ServiceAccountDir); err == nil {
		t.Skip("this test runs in a real pod, whose service account would answer")
	}
	inAPod := env(map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"})
	args := []string{"-target", "http://x", "-scenario", "s", "-check", "autoscale", "-deployment", "parley"}
	_, err := parseFlags(args, inAPod, io.Discard)
	if want := "-deployment without -kubeconfig reads the Kubernetes API as the pod's service account: open " + kube.ServiceAccountDir + "/ca.crt"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want an error containing %q (no pod here)", err, want)
	}
}

// A Deployment named without its namespace needs a namespace to be in:
// the kubeconfig context's (or the pod's).
func TestDeploymentWithoutANamespace(t *testing.T) {
	t.Parallel()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "https://127.0.0.1:6443"}}]
contexts: [{name: test, context: {cluster: test, user: test}}]
current-context: test
users: [{name: test, user: {token: t}}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-target", "http://x", "-scenario", "s", "-check", "autoscale", "-kubeconfig", kubeconfig, "-deployment", "parley"}
	if _, err := parseFlags(args, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "-deployment: ") || !strings.Contains(err.Error(), "namespace/name") {
		t.Fatalf("got %v, want an error naming the form", err)
	}
	args[len(args)-1] = "staging/parley"
	c, err := parseFlags(args, env(nil), io.Discard)
	if err != nil || c.Checks.Deployment.String() != "staging/parley" {
		t.Fatalf("got %v, %v; want staging/parley", c.Checks.Deployment, err)
	}
}

// -h lists every flag on stderr, and is not an error of the run.
func TestHelpListsTheFlags(t *testing.T) {
	t.Parallel()
	var stderr strings.Builder
	err := run(t.Context(), []string{"-h"}, env(nil), io.Discard, &stderr)
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr.String(), "-deployment") || !strings.Contains(stderr.String(), "-max-rate") {
		t.Fatalf("got %v and\n%s\nwant flag.ErrHelp and the flags", err, stderr.String())
	}
}
