package systemtest

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/internal/testenv"
)

// process is one server process, run from the built binary as a deployment
// runs it.
type process struct {
	*testServer
	cmd    *exec.Cmd
	exited chan error    // receives cmd.Wait's result
	done   chan struct{} // closed once the test has ended the process
}

// startProcess starts the server binary, built with the race detector when
// the tests have it, with env and waits until it is ready.
func startProcess(t *testing.T, env map[string]string) *process {
	t.Helper()
	cmd := exec.Command(testenv.GoBuild(t, "github.com/parleychat/parley/server"))
	tap := newLogTap()
	cmd.Stdout, cmd.Stderr = tap, tap
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, exited: make(chan error, 1), done: make(chan struct{}), testServer: &testServer{t: t, logs: tap, http: newHTTPClient()}}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		p.http.CloseIdleConnections()
		select {
		case <-p.done: // ended by the test
		default:
			p.terminate(t)
		}
		// The race detector in the process writes its reports to the log,
		// and only a clean exit would show them in the exit status.
		if strings.Contains(tap.String(), "WARNING: DATA RACE") {
			t.Errorf("the server process reported a data race:\n%s", tap.String())
		}
	})
	select {
	case addrs := <-tap.listening:
		p.base, p.admin = "http://"+addrs[0], "http://"+addrs[1]
	case err := <-p.exited:
		close(p.done)
		t.Fatalf("server exited at start: %v\n%s", err, tap.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("server did not start in 60s\n%s", tap.String())
	}
	p.waitReady()
	return p
}

// kill ends the process with SIGKILL: no drain, no goodbye.
func (p *process) kill() {
	p.cmd.Process.Kill()
	<-p.exited
	close(p.done)
}

// sigterm asks the process to drain and stop, as an orchestrator does. A
// process that has already ended is left to stopped to report.
func (p *process) sigterm() {
	p.cmd.Process.Signal(syscall.SIGTERM)
}

// terminate sends SIGTERM and waits for the process to stop.
func (p *process) terminate(t *testing.T) {
	t.Helper()
	p.sigterm()
	p.stopped(t)
}

// stopped waits for the drain that SIGTERM began to finish, which must end
// in exit 0 (the race detector exits 66 after a report).
func (p *process) stopped(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.exited:
		close(p.done)
		if err != nil {
			t.Errorf("replica ended with %v after SIGTERM, want exit 0\n%s", err, p.logs.String())
		}
	case <-time.After(30 * time.Second):
		p.kill()
		t.Errorf("replica did not stop in 30s after SIGTERM\n%s", p.logs.String())
	}
}

// The built binary turns SIGTERM into a drain: sockets get 1001, and the
// process exits 0 once it has stopped.
func TestSIGTERMDrainsTheProcess(t *testing.T) {
	t.Parallel()
	p := startProcess(t, map[string]string{
		"PARLEY_ADDR": "127.0.0.1:0", "PARLEY_ADMIN_ADDR": "127.0.0.1:0", "PARLEY_PASSWORD_COST": "4",
		"PARLEY_DRAIN_JITTER": "100ms", "DATABASE_URL": "", "LOG_LEVEL": "info",
	})
	c := p.dial(p.mustSignUp("alice").Token)

	p.sigterm()
	if code := c.waitClosed(10 * time.Second); code != websocket.CloseGoingAway {
		t.Fatalf("got close code %d, want 1001", code)
	}
	p.stopped(t)
	if !strings.Contains(p.logs.String(), `"msg":"stopped"`) {
		t.Fatalf("log lacks the stopped record:\n%s", p.logs.String())
	}
}
