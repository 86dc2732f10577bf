package main

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/parleychat/parley/loadtest/check"
	"github.com/parleychat/parley/loadtest/driver"
	"github.com/parleychat/parley/loadtest/kube"
	"github.com/parleychat/parley/loadtest/truth"
)

// The guard rails: a scenario above these needs the flag raised on purpose,
// so that a typo does not flood staging.
const (
	defaultMaxRate     = 2000
	defaultMaxDuration = 15 * time.Minute
)

// lists are the flags that need more reading than the flag package does:
// lists, files, and the Kubernetes API to reach.
type lists struct {
	targets, sources, caFile, checks, admins, deployment, kubeconfig string
	sliMetrics, sliBounds                                            string
}

// parseFlags reads the command line into a run's configuration, and
// reports every bad flag at once, by name. getenv gives the tokens'
// defaults and, for -deployment, the pod's Kubernetes service.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (driver.Config, error) {
	var c driver.Config
	var l lists
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runFlags(fs, &c, &l, getenv)
	checkFlags(fs, &c.Checks, &l, getenv)
	truthFlags(fs, &c.Truth, &l)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	errs := append(readRunFlags(&c, l), readCheckFlags(&c.Checks, l, getenv)...)
	errs = append(errs, readTruthFlags(&c.Truth, l)...)
	return c, errors.Join(errs...)
}

func runFlags(fs *flag.FlagSet, c *driver.Config, l *lists, getenv func(string) string) {
	fs.StringVar(&l.targets, "target", "", "base URL of the deployment, e.g. http://127.0.0.1:8080 or https://staging.example; several, comma-separated, spread the users over them as a load balancer would")
	fs.StringVar(&c.Scenario, "scenario", "", "scenario file (see loadtest/scenarios)")
	fs.StringVar(&c.RunID, "run-id", "", "tags every message of the run (default: random)")
	fs.StringVar(&c.JSONOut, "json", "", "write the result as JSON to this file")
	fs.StringVar(&c.HTMLOut, "html", "", "write an HTML report to this file")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "", "serve the generator's own Prometheus metrics on this address")
	fs.StringVar(&l.caFile, "ca-file", "", "PEM file of CA certificates to trust beside the system's, for a staging deployment whose certificate a private CA signed")
	fs.StringVar(&l.sources, "source-addrs", "", "comma-separated local IP addresses to spread connections over, when one address runs out of ports (e.g. 127.0.0.2,127.0.0.3)")
	fs.Float64Var(&c.MaxRate, "max-rate", defaultMaxRate, "refuse scenarios whose rate ever exceeds this many messages a second")
	fs.DurationVar(&c.MaxDuration, "max-duration", defaultMaxDuration, "refuse scenarios longer than this")
	fs.StringVar(&c.Password, "password", "loadtest-password", "password of the users the run signs up")
	fs.IntVar(&c.SetupConcurrency, "setup-concurrency", 16, "sign-ups and connections made at once while setting up")
	fs.BoolVar(&c.Quiet, "quiet", false, "no live progress line")
	fs.StringVar(&c.Grafana, "grafana", "", "Grafana's URL: each stage's start becomes an annotation (tags parley-loadtest, run:<id>)")
	fs.StringVar(&c.GrafanaToken, "grafana-token", getenv("GRAFANA_TOKEN"), "Grafana service account token (default $GRAFANA_TOKEN)")
	fs.Float64Var(&c.TraceRatio, "trace-ratio", 0.1, "share of messages whose traceparent is marked sampled, so that the server traces them (every message carries one)")
}

func checkFlags(fs *flag.FlagSet, c *check.Config, l *lists, getenv func(string) string) {
	fs.StringVar(&l.checks, "check", "", "platform checks to run with the load, comma-separated: slo-alert, autoscale")
	fs.StringVar(&l.admins, "admin", "", "slo-alert: the replicas' admin URLs (fault API), comma-separated")
	fs.StringVar(&c.AdminToken, "admin-token", getenv("PARLEY_ADMIN_TOKEN"), "slo-alert: bearer token of the admin API (default $PARLEY_ADMIN_TOKEN)")
	fs.StringVar(&c.Alertmanager, "alertmanager", "", "slo-alert: Alertmanager's URL")
	fs.StringVar(&c.Slack, "slack", "", "slo-alert: the Slack receiver's URL (alerts/slackrecv), to see the messages too")
	fs.StringVar(&c.Alert, "alert", "ParleyAckAvailabilityBudgetBurn", "slo-alert: the alert that must fire")
	fs.StringVar(&c.Severity, "alert-severity", "critical", "slo-alert: its severity label (a burn alert has a page and a ticket of the same name; the ticket's longer windows keep it firing long after the page resolves)")
	fs.StringVar(&c.Fault, "fault", "send_errors", "slo-alert: the fault to switch on")
	fs.DurationVar(&c.FaultAfter, "fault-after", 10*time.Second, "slo-alert: how long into the load the fault goes on")
	fs.DurationVar(&c.Timeout, "check-timeout", 10*time.Minute, "how long each step of a check may take")
	fs.StringVar(&c.Prometheus, "prometheus", "", "autoscale: Prometheus's URL; slo-alert: read the alert's rule from it and wait for the resolve as long as its windows say, plus -check-timeout")
	fs.StringVar(&c.Replicas, "replicas-query", `sum(parley_ready{job="parley"})`, "autoscale: PromQL giving the number of ready replicas")
	fs.StringVar(&l.deployment, "deployment", "", "autoscale: read the ready replicas of this Deployment (namespace/name, or a name in the pod's or -kubeconfig's namespace) from the Kubernetes API instead of from Prometheus, as the pod's service account when run in one")
	fs.StringVar(&l.kubeconfig, "kubeconfig", "", "autoscale: reach the Kubernetes API for -deployment as this kubeconfig's current context, instead of as the pod's service account")
	fs.StringVar(&c.Pages, "pages-query", `count(ALERTS{alertstate="firing",severity="critical",service="parley"})`, "autoscale: PromQL giving the pages firing")
}

func truthFlags(fs *flag.FlagSet, c *truth.Config, l *lists) {
	fs.StringVar(&l.sliMetrics, "sli-check", "", "compare what the users saw with what the servers' SLIs counted: every target's admin /metrics URL, comma-separated (the targets must serve only this run)")
	fs.Float64Var(&c.CountTolerance, "sli-count-tolerance", 0.01, "sli-check: how many more acks and deliveries the servers may count than the users read, as a share of the users' count (frames written to connections that broke); fewer always fails")
	fs.Float64Var(&c.ShareTolerance, "sli-share-tolerance", 0.01, "sli-check: how far apart the users' and the servers' shares of deliveries under a bound may be beyond what the clocks explain (0.01 is one percentage point): the users' share above the servers' at any bound, the servers' above the users' under the bound plus -sli-clock-allowance at -sli-bounds")
	fs.DurationVar(&c.ClockAllowance, "sli-clock-allowance", 50*time.Millisecond, "sli-check: the longest wait of a user's that the servers' delivery SLI may leave out (the generator's lag, the network both ways, across hosts the replicas' clock difference)")
	fs.StringVar(&l.sliBounds, "sli-bounds", "0.25,1", "sli-check: bucket bounds of the servers' delivery histogram, in seconds, where the servers' share is held against the users' share under the bound plus -sli-clock-allowance (the delivery SLO's 0.25 at least)")
	fs.DurationVar(&c.Quiesce, "sli-quiesce", 10*time.Second, "sli-check: how long the servers' counts may take to stop changing after the load")
}

var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,12}$`)

// readRunFlags reads and checks what the run's own flags say.
func readRunFlags(c *driver.Config, l lists) []error {
	var errs []error
	if c.Targets = splitList(l.targets); len(c.Targets) == 0 {
		errs = append(errs, errors.New("-target is required"))
	}
	if c.Scenario == "" {
		errs = append(errs, errors.New("-scenario is required"))
	}
	for _, s := range splitList(l.sources) {
		ip := net.ParseIP(s)
		if ip == nil {
			errs = append(errs, fmt.Errorf("-source-addrs: %q is not an IP address", s))
			continue
		}
		c.SourceAddrs = append(c.SourceAddrs, ip)
	}
	c.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	if l.caFile != "" {
		pool, err := certPool(l.caFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("-ca-file: %w", err))
		}
		c.TLS.RootCAs = pool
	}
	if c.MaxRate <= 0 {
		errs = append(errs, fmt.Errorf("-max-rate must be positive, got %v", c.MaxRate))
	}
	if c.MaxDuration <= 0 {
		errs = append(errs, fmt.Errorf("-max-duration must be positive, got %v", c.MaxDuration))
	}
	if len(c.Password) < 8 {
		errs = append(errs, errors.New("-password must have at least 8 characters (the API's rule)"))
	}
	if c.SetupConcurrency < 1 {
		errs = append(errs, fmt.Errorf("-setup-concurrency must be at least 1, got %d", c.SetupConcurrency))
	}
	if c.RunID == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		c.RunID = hex.EncodeToString(b)
	} else if !runIDPattern.MatchString(c.RunID) {
		errs = append(errs, fmt.Errorf("-run-id must be 1 to 12 of A-Za-z0-9_.- (it goes into usernames, at most 32 characters), got %q", c.RunID))
	}
	if !(c.TraceRatio >= 0 && c.TraceRatio <= 1) {
		errs = append(errs, fmt.Errorf("-trace-ratio must be between 0 and 1, got %v", c.TraceRatio))
	}
	return errs
}

// readCheckFlags reads and checks what the platform checks' flags say.
func readCheckFlags(c *check.Config, l lists, getenv func(string) string) []error {
	var errs []error
	c.Admins = splitList(l.admins)
	for _, name := range splitList(l.checks) {
		switch name {
		case check.SLOAlert:
			if len(c.Admins) == 0 || c.Alertmanager == "" || c.AdminToken == "" {
				errs = append(errs, errors.New("-check slo-alert needs -admin, -admin-token (or $PARLEY_ADMIN_TOKEN) and -alertmanager"))
			}
		case check.Autoscale:
			if c.Prometheus == "" && l.deployment == "" {
				errs = append(errs, errors.New("-check autoscale needs -prometheus or -deployment"))
			}
			if l.deployment != "" {
				d, err := kubeDeployment(l.deployment, l.kubeconfig, getenv)
				errs = append(errs, err)
				c.Deployment = d
			}
		default:
			errs = append(errs, fmt.Errorf("-check: unknown check %q (known: %s, %s)", name, check.SLOAlert, check.Autoscale))
			continue
		}
		c.Names = append(c.Names, name)
	}
	if l.kubeconfig != "" && l.deployment == "" {
		errs = append(errs, errors.New("-kubeconfig needs -deployment"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("-check-timeout must be positive, got %v", c.Timeout))
	}
	return errs
}

// readTruthFlags reads and checks what the SLI truth check's flags say.
func readTruthFlags(c *truth.Config, l lists) []error {
	var errs []error
	for _, raw := range splitList(l.sliMetrics) {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("-sli-check: %q is not an http(s) URL (a target's admin /metrics, e.g. http://127.0.0.1:9091/metrics)", raw))
			continue
		}
		c.Metrics = append(c.Metrics, raw)
	}
	for name, v := range map[string]float64{"-sli-count-tolerance": c.CountTolerance, "-sli-share-tolerance": c.ShareTolerance} {
		if !(v >= 0 && v < 1) {
			errs = append(errs, fmt.Errorf("%s must be at least 0 and below 1, got %v", name, v))
		}
	}
	if c.ClockAllowance < 0 {
		errs = append(errs, fmt.Errorf("-sli-clock-allowance must not be negative, got %v", c.ClockAllowance))
	}
	for _, raw := range splitList(l.sliBounds) {
		b, err := strconv.ParseFloat(raw, 64)
		if err != nil || !(b > 0) || math.IsInf(b, 0) {
			errs = append(errs, fmt.Errorf("-sli-bounds: %q is not a positive number of seconds", raw))
			continue
		}
		c.Bounds = append(c.Bounds, b)
	}
	if c.Quiesce <= 0 {
		errs = append(errs, fmt.Errorf("-sli-quiesce must be positive, got %v", c.Quiesce))
	}
	return errs
}

// splitList is the non-empty items of a comma-separated flag, trimmed.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// certPool is the system's trusted roots plus the certificates in the PEM
// file at path.
func certPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool() // no system roots here: the file's alone
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// kubeDeployment is the Deployment the autoscale check watches, reached
// through the kubeconfig at path if there is one, else as the pod's own
// service account.
func kubeDeployment(ref, kubeconfig string, getenv func(string) string) (*kube.Deployment, error) {
	var (
		api *kube.API
		err error
	)
	if kubeconfig != "" {
		if api, err = kube.LoadKubeconfig(kubeconfig); err != nil {
			return nil, fmt.Errorf("-kubeconfig: %w", err)
		}
	} else if api, err = kube.InCluster(getenv, kube.ServiceAccountDir); err != nil {
		return nil, fmt.Errorf("-deployment without -kubeconfig reads the Kubernetes API as the pod's service account: %w", err)
	}
	d, err := api.Deployment(ref)
	if err != nil {
		return nil, fmt.Errorf("-deployment: %w", err)
	}
	return d, nil
}
