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
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/parleychat/parley/loadtest/check"
)

// config is what the command line says.
type config struct {
	targets      []string
	scenario     string
	runID        string
	jsonOut      string
	htmlOut      string
	metricsAddr  string
	sourceAddrs  []net.IP
	tls          *tls.Config // for https targets: the system's roots, plus -ca-file's
	maxRate      float64
	maxDuration  time.Duration
	password     string
	setupConc    int
	quiet        bool
	traceRatio   float64
	grafana      string
	grafanaToken string
	checks       check.Config
}

var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,12}$`)

// The guard rails: a scenario above these needs the flag raised on purpose,
// so that a typo does not flood staging.
const (
	defaultMaxRate     = 2000
	defaultMaxDuration = 15 * time.Minute
)

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("target", "", "base URL of the deployment, e.g. http://127.0.0.1:8080 or https://staging.example; several, comma-separated, spread the users over them as a load balancer would")
	fs.StringVar(&c.scenario, "scenario", "", "scenario file (see loadtest/scenarios)")
	fs.StringVar(&c.runID, "run-id", "", "tags every message of the run (default: random)")
	fs.StringVar(&c.jsonOut, "json", "", "write the result as JSON to this file")
	fs.StringVar(&c.htmlOut, "html", "", "write an HTML report to this file")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "serve the generator's own Prometheus metrics on this address")
	caFile := fs.String("ca-file", "", "PEM file of CA certificates to trust beside the system's, for a staging deployment whose certificate a private CA signed")
	sources := fs.String("source-addrs", "", "comma-separated local IP addresses to spread connections over, when one address runs out of ports (e.g. 127.0.0.2,127.0.0.3)")
	fs.Float64Var(&c.maxRate, "max-rate", defaultMaxRate, "refuse scenarios whose rate ever exceeds this many messages a second")
	fs.DurationVar(&c.maxDuration, "max-duration", defaultMaxDuration, "refuse scenarios longer than this")
	fs.StringVar(&c.password, "password", "loadtest-password", "password of the users the run signs up")
	fs.IntVar(&c.setupConc, "setup-concurrency", 16, "sign-ups and connections made at once while setting up")
	fs.BoolVar(&c.quiet, "quiet", false, "no live progress line")
	fs.StringVar(&c.grafana, "grafana", "", "Grafana's URL: each stage's start becomes an annotation (tags parley-loadtest, run:<id>)")
	fs.StringVar(&c.grafanaToken, "grafana-token", getenv("GRAFANA_TOKEN"), "Grafana service account token (default $GRAFANA_TOKEN)")
	fs.Float64Var(&c.traceRatio, "trace-ratio", 0.1, "share of messages whose traceparent is marked sampled, so that the server traces them (every message carries one)")
	checks := fs.String("check", "", "platform checks to run with the load, comma-separated: slo-alert, autoscale")
	admins := fs.String("admin", "", "slo-alert: the replicas' admin URLs (fault API), comma-separated")
	fs.StringVar(&c.checks.AdminToken, "admin-token", getenv("PARLEY_ADMIN_TOKEN"), "slo-alert: bearer token of the admin API (default $PARLEY_ADMIN_TOKEN)")
	fs.StringVar(&c.checks.Alertmanager, "alertmanager", "", "slo-alert: Alertmanager's URL")
	fs.StringVar(&c.checks.Slack, "slack", "", "slo-alert: the Slack receiver's URL (alerts/slackrecv), to see the messages too")
	fs.StringVar(&c.checks.Alert, "alert", "ParleyAckAvailabilityBudgetBurn", "slo-alert: the alert that must fire")
	fs.StringVar(&c.checks.Severity, "alert-severity", "critical", "slo-alert: its severity label (a burn alert has a page and a ticket of the same name; the ticket's longer windows keep it firing long after the page resolves)")
	fs.StringVar(&c.checks.Fault, "fault", "send_errors", "slo-alert: the fault to switch on")
	fs.DurationVar(&c.checks.FaultAfter, "fault-after", 10*time.Second, "slo-alert: how long into the load the fault goes on")
	fs.DurationVar(&c.checks.Timeout, "check-timeout", 10*time.Minute, "how long each step of a check may take")
	fs.StringVar(&c.checks.Prometheus, "prometheus", "", "autoscale: Prometheus's URL")
	fs.StringVar(&c.checks.Replicas, "replicas-query", `sum(parley_ready{job="parley"})`, "autoscale: PromQL giving the number of ready replicas")
	deployment := fs.String("deployment", "", "autoscale: read the ready replicas of this Deployment (namespace/name, or a name in the pod's or -kubeconfig's namespace) from the Kubernetes API instead of from Prometheus, as the pod's service account when run in one")
	kubeconfig := fs.String("kubeconfig", "", "autoscale: reach the Kubernetes API for -deployment as this kubeconfig's current context, instead of as the pod's service account")
	fs.StringVar(&c.checks.Pages, "pages-query", `count(ALERTS{alertstate="firing",severity="critical",service="parley"})`, "autoscale: PromQL giving the pages firing")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var errs []error
	for t := range strings.SplitSeq(*target, ",") {
		if t = strings.TrimSpace(t); t != "" {
			c.targets = append(c.targets, t)
		}
	}
	if len(c.targets) == 0 {
		errs = append(errs, errors.New("-target is required"))
	}
	if c.scenario == "" {
		errs = append(errs, errors.New("-scenario is required"))
	}
	if *sources != "" {
		for s := range strings.SplitSeq(*sources, ",") {
			ip := net.ParseIP(strings.TrimSpace(s))
			if ip == nil {
				errs = append(errs, fmt.Errorf("-source-addrs: %q is not an IP address", s))
				continue
			}
			c.sourceAddrs = append(c.sourceAddrs, ip)
		}
	}
	c.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	if *caFile != "" {
		pool, err := certPool(*caFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("-ca-file: %w", err))
		}
		c.tls.RootCAs = pool
	}
	if c.maxRate <= 0 {
		errs = append(errs, fmt.Errorf("-max-rate must be positive, got %v", c.maxRate))
	}
	if c.maxDuration <= 0 {
		errs = append(errs, fmt.Errorf("-max-duration must be positive, got %v", c.maxDuration))
	}
	if len(c.password) < 8 {
		errs = append(errs, errors.New("-password must have at least 8 characters (the API's rule)"))
	}
	if c.setupConc < 1 {
		errs = append(errs, fmt.Errorf("-setup-concurrency must be at least 1, got %d", c.setupConc))
	}
	for name := range strings.SplitSeq(*checks, ",") {
		switch name = strings.TrimSpace(name); name {
		case "":
		case check.SLOAlert:
			if *admins == "" || c.checks.Alertmanager == "" || c.checks.AdminToken == "" {
				errs = append(errs, errors.New("-check slo-alert needs -admin, -admin-token (or $PARLEY_ADMIN_TOKEN) and -alertmanager"))
			}
		case check.Autoscale:
			if c.checks.Prometheus == "" && *deployment == "" {
				errs = append(errs, errors.New("-check autoscale needs -prometheus or -deployment"))
			}
			if *deployment != "" {
				d, err := kubeDeployment(*deployment, *kubeconfig, getenv)
				errs = append(errs, err)
				c.checks.Deployment = d
			}
		default:
			errs = append(errs, fmt.Errorf("-check: unknown check %q (known: slo-alert, autoscale)", name))
			continue
		}
		if name != "" {
			c.checks.Names = append(c.checks.Names, name)
		}
	}
	if *kubeconfig != "" && *deployment == "" {
		errs = append(errs, errors.New("-kubeconfig needs -deployment"))
	}
	for a := range strings.SplitSeq(*admins, ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.checks.Admins = append(c.checks.Admins, a)
		}
	}
	if c.checks.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("-check-timeout must be positive, got %v", c.checks.Timeout))
	}
	if c.runID == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		c.runID = hex.EncodeToString(b)
	} else if !runIDPattern.MatchString(c.runID) {
		errs = append(errs, fmt.Errorf("-run-id must be 1 to 12 of A-Za-z0-9_.- (it goes into usernames, at most 32 characters), got %q", c.runID))
	}
	if !(c.traceRatio >= 0 && c.traceRatio <= 1) {
		errs = append(errs, fmt.Errorf("-trace-ratio must be between 0 and 1, got %v", c.traceRatio))
	}
	return c, errors.Join(errs...)
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
