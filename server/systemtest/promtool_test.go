package systemtest

import (
	"bytes"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/parleychat/parley/internal/testenv"
)

// promtool lints the live /metrics output after a session that makes every
// labelled family appear. promtool comes from Debian's prometheus package,
// which .ci/run installs.
func TestMetricsPassPromtoolCheck(t *testing.T) {
	t.Parallel()
	promtool := testenv.Find(t, "promtool", "prometheus")
	env := envFor(t, "postgres")
	env["REDIS_URL"] = testenv.RedisURL(t)
	srv := startServer(t, env)
	alice := srv.mustSignUp("alice")
	room := srv.mustCreateRoom(alice.Token, "lobby")
	c := srv.dial(alice.Token)
	c.join(room.ID, nil)
	c.send(map[string]any{"type": "send", "room": room.ID, "client_id": "c1", "body": "hi"})
	c.expect("message")
	c.expect("ack")
	srv.mustHistory(alice.Token, room.ID, "")

	resp, err := srv.http.Get(srv.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	exposition, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, family := range []string{"parley_delivery_latency_seconds", "parley_sends_total", "parley_store_operation_duration_seconds", "parley_bus_published_total", "parley_build_info"} {
		if !bytes.Contains(exposition, []byte("# TYPE "+family)) {
			t.Errorf("/metrics lacks %s", family)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(exposition)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
