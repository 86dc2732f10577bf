package systemtest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The built binary turns SIGTERM into a drain: sockets get 1001, and the
// process exits 0 once it has stopped.
func TestSIGTERMDrainsTheProcess(t *testing.T) {
	bin := parleyBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	tap := newLogTap()
	cmd.Stdout, cmd.Stderr = tap, tap
	cmd.Env = append(os.Environ(),
		"PARLEY_ADDR=127.0.0.1:0", "PARLEY_ADMIN_ADDR=127.0.0.1:0", "PARLEY_PASSWORD_COST=4",
		"PARLEY_DRAIN_JITTER=100ms", "DATABASE_URL=", "LOG_LEVEL=info")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	select {
	case addrs = <-tap.listening:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("binary did not start\n%s", tap.String())
	}
	srv := &testServer{t: t, base: "http://" + addrs[0], admin: "http://" + addrs[1], http: newHTTPClient()}
	defer srv.http.CloseIdleConnections()
	c := srv.dial(srv.mustSignUp("alice").Token)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := c.waitClosed(10 * time.Second); code != websocket.CloseGoingAway {
		t.Fatalf("got close code %d, want 1001", code)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("process ended with %v, want exit 0\n%s", err, tap.String())
	}
	if !strings.Contains(tap.String(), `"msg":"stopped"`) {
		t.Fatalf("log lacks the stopped record:\n%s", tap.String())
	}
}
