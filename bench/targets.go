package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// target is a server to measure: the baseline hub, or Parley in one
// configuration.
type target struct {
	name   string
	parley bool
	env    map[string]string // beside the listen addresses and parleyBench
	shapes []string          // the shapes it runs; nil for every shape
}

// Target names, for -targets.
const (
	baselineName    = "baseline"
	parleyLocal     = "parley-local"
	parleyDeploy    = "parley-deploy"
	parleyNoTraces  = "parley-notraces"
	parleyPostgres  = "parley-postgres"
	defaultTargets  = baselineName + "," + parleyLocal + "," + parleyDeploy + "," + parleyNoTraces
	drainTimeout    = "5s"
	stopGrace       = 10 * time.Second
	readyTimeout    = 30 * time.Second
	readyPollPeriod = 50 * time.Millisecond
)

// parleyBench is what every Parley target runs with: fast sign-ups, and
// limits and caps raised far above what the shapes need, so that the run
// measures the server rather than its rate limiting. Everything else is
// the default, logs at info included.
var parleyBench = map[string]string{
	"PARLEY_PASSWORD_COST":         "4",
	"LOG_LEVEL":                    "info",
	"PARLEY_LIMIT_SIGNUP_PER_ADDR": "off",
	"PARLEY_LIMIT_LOGIN_PER_ADDR":  "off",
	"PARLEY_LIMIT_ROOMS_PER_USER":  "off",
	"PARLEY_LIMIT_ROOMS_PER_ADDR":  "off",
	"PARLEY_USER_RATE":             "1000000",
	"PARLEY_CONN_RATE":             "1000000",
	"PARLEY_JOIN_RATE":             "1000000",
	"PARLEY_MAX_CONNS_PER_ADDR":    "1000000",
	"PARLEY_DRAIN_TIMEOUT":         drainTimeout,
	"PARLEY_DRAIN_JITTER":          "100ms",
}

// targetsFor returns the targets named, in the order named. sinkURL is the
// OTLP sink's base URL; databaseURL, when set, adds Parley on PostgreSQL
// (knee only).
func targetsFor(names []string, sinkURL, databaseURL string) ([]target, error) {
	known := map[string]target{
		baselineName: {name: baselineName},
		parleyLocal:  {name: parleyLocal, parley: true, env: map[string]string{}},
		parleyDeploy: {name: parleyDeploy, parley: true, env: map[string]string{
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": sinkURL + "/v1/traces",
			"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
			"OTEL_TRACES_SAMPLER":                "parentbased_traceidratio",
			"OTEL_TRACES_SAMPLER_ARG":            "0.1",
		}},
		parleyNoTraces: {name: parleyNoTraces, parley: true, env: map[string]string{"OTEL_TRACES_EXPORTER": "none"}},
	}
	var out []target
	for _, n := range names {
		t, ok := known[n]
		if !ok {
			return nil, fmt.Errorf("-targets: unknown target %q (known: %s)", n, defaultTargets)
		}
		out = append(out, t)
	}
	if databaseURL != "" {
		out = append(out, target{name: parleyPostgres, parley: true, env: map[string]string{"DATABASE_URL": databaseURL}, shapes: []string{shapeKnee}})
	}
	return out, nil
}

func (t target) runs(shape string) bool {
	if t.shapes == nil {
		return true
	}
	for _, s := range t.shapes {
		if s == shape {
			return true
		}
	}
	return false
}

// child is a process the runner started and must stop.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited
	err  error         // its exit, once done
	log  string        // where its output goes
}

// startChild starts argv with exactly env (plus PATH), its output to
// logPath, on cpu when cpu is not empty and taskset is there. An
// interruption of ctx ends it too, and so does the runner's own death.
func startChild(ctx context.Context, name string, argv, env []string, cpu, logPath string) (*child, error) {
	if cpu != "" {
		argv = append([]string{"taskset", "-c", cpu}, argv...)
	}
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = childAttrs()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopGrace
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		c.err = cmd.Wait()
		out.Close()
		close(c.done)
	}()
	return c, nil
}

// pid is the process's id: taskset execs the program, so it is the
// program's.
func (c *child) pid() int { return c.cmd.Process.Pid }

// stop asks the process to end (SIGTERM), and kills it after stopGrace.
func (c *child) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(stopGrace):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// failure says why a child failed, with the end of its output.
func (c *child) failure(err error) error {
	raw, _ := os.ReadFile(c.log)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	lines = lines[max(0, len(lines)-15):]
	return fmt.Errorf("%s: %w\n  %s", c.name, err, strings.Join(lines, "\n  "))
}

// server is a running target.
type server struct {
	*child
	url   string // the API's base URL
	admin string // Parley's admin base URL; empty for the baseline
}

// startServer starts a fresh target on free ports, pinned to cpu, and
// waits until it is ready.
func startServer(ctx context.Context, t target, bins binaries, cpu, logDir, label string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s := &server{url: "http://" + addr}
	var argv, env []string
	if t.parley {
		admin, err := freeAddr()
		if err != nil {
			return nil, err
		}
		s.admin = "http://" + admin
		argv = []string{bins.parley}
		env = []string{"PARLEY_ADDR=" + addr, "PARLEY_ADMIN_ADDR=" + admin}
		for _, m := range []map[string]string{parleyBench, t.env} {
			for k, v := range m {
				env = append(env, k+"="+v)
			}
		}
	} else {
		argv = []string{bins.baseline, "-addr", addr}
	}
	s.child, err = startChild(ctx, t.name, argv, env, cpu, filepath.Join(logDir, label+"-server.log"))
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx); err != nil {
		s.stop()
		return nil, s.failure(err)
	}
	return s, nil
}

// waitReady polls /readyz until it answers 200.
func (s *server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(readyTimeout)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		resp, err := client.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("exited before it was ready: %w", s.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(readyPollPeriod):
		}
	}
	return errors.New("not ready within " + readyTimeout.String())
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
