package driver

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/parleychat/parley/loadtest/check"
	"github.com/parleychat/parley/loadtest/truth"
)

// Config is what a run needs: what the command line says, validated.
type Config struct {
	Targets          []string      // base URLs; the users are spread over them as a load balancer would
	Scenario         string        // the scenario file
	RunID            string        // tags every message and name of the run
	JSONOut, HTMLOut string        // report files to write, if any
	MetricsAddr      string        // where to serve the generator's own series, if anywhere
	SourceAddrs      []net.IP      // local addresses to spread connections over; none for the system's choice
	TLS              *tls.Config   // for https targets: the system's roots, and -ca-file's
	MaxRate          float64       // the guard rails: a scenario above either is refused
	MaxDuration      time.Duration // before anything is sent
	Password         string        // of the users the run signs up
	SetupConcurrency int           // sign-ups and connections made at once
	Quiet            bool          // no progress lines
	TraceRatio       float64       // share of messages marked sampled
	Grafana          string        // Grafana's URL, to annotate each stage's start
	GrafanaToken     string
	Checks           check.Config
	Truth            truth.Config // the SLI truth check, if Truth.Metrics lists targets
}
