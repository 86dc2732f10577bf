package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// scaledTimeouts are the listeners' timeouts shrunk so that a test can wait
// them out: what takes a hostile client minutes in production takes it a
// second here.
var scaledTimeouts = map[string]string{
	"PARLEY_READ_HEADER_TIMEOUT": "500ms",
	"PARLEY_READ_TIMEOUT":        "1s",
	"PARLEY_WRITE_TIMEOUT":       "1s",
	"PARLEY_IDLE_TIMEOUT":        "1s",
}

// giveUp bounds every hold below: a connection still open this long after
// the client began has outlived its timeout by far (before the timeouts,
// the slow body was held for minutes and the idle keep-alive for ever).
const giveUp = 4 * time.Second

// A client that announces a body and then sends it a byte at a time is cut
// at the read timeout, and so are a hundred of them at once.
func TestSlowBodiesAreCutAtTheReadTimeout(t *testing.T) {
	t.Parallel()
	public, _ := startServer(t, scaledTimeouts)
	const clients = 100
	head := "POST /api/v1/users HTTP/1.1\r\nHost: parley\r\nContent-Type: application/json\r\nContent-Length: 65536\r\n\r\n"
	held := make([]hold, clients)
	var wg sync.WaitGroup
	for i := range clients {
		// Spaces are valid JSON: the handler waits in the body's read for
		// the value that never comes.
		wg.Go(func() { held[i] = holdOpen(t, public, head, strings.Repeat(" ", 65536), 200*time.Millisecond) })
	}
	wg.Wait()
	longest := time.Duration(0)
	for i, h := range held {
		if !h.closed {
			t.Fatalf("slow body %d: still open after %v, want it cut at the read timeout (1s)", i, h.after)
		}
		if h.after < 900*time.Millisecond {
			t.Fatalf("slow body %d: cut after %v, before the read timeout (1s): was it refused for something else?", i, h.after)
		}
		longest = max(longest, h.after)
	}
	t.Logf("%d slow bodies, each cut, the last after %v", clients, longest)
}

// A client that sends its request line and headers a byte at a time, here
// a WebSocket upgrade, is cut at the header timeout.
func TestSlowHeadersAreCutAtTheHeaderTimeout(t *testing.T) {
	t.Parallel()
	public, _ := startServer(t, scaledTimeouts)
	upgrade := "GET /ws HTTP/1.1\r\nHost: parley\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	h := holdOpen(t, public, "", upgrade, 100*time.Millisecond)
	if !h.closed || h.after < 400*time.Millisecond {
		t.Fatalf("got the dawdling upgrade closed %v after %v, want it closed at the header timeout (500ms)", h.closed, h.after)
	}
	t.Logf("dawdling upgrade cut after %v", h.after)
}

// A keep-alive connection with no request in flight is closed at the idle
// timeout.
func TestIdleKeepAlivesAreClosedAtTheIdleTimeout(t *testing.T) {
	t.Parallel()
	public, _ := startServer(t, scaledTimeouts)
	h := holdOpen(t, public, "GET /healthz HTTP/1.1\r\nHost: parley\r\n\r\n", "", time.Second)
	if !h.closed || h.after < 900*time.Millisecond {
		t.Fatalf("got the idle keep-alive closed %v after %v, want it closed at the idle timeout (1s)", h.closed, h.after)
	}
	t.Logf("idle keep-alive closed after %v", h.after)
}

// The listeners' read and write timeouts end with the request: a WebSocket
// sets its own deadline before each read and write, so a socket that lives
// and pings far longer than those timeouts, then is quiet longer than them,
// still works.
func TestWebSocketsOutliveTheListenersTimeouts(t *testing.T) {
	t.Parallel()
	public, _ := startServer(t, scaledTimeouts)
	base := "http://" + public
	token := signUp(t, base, "long-lived")
	room := createRoom(t, base, token, "lobby")

	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, _, err := dialer.Dial("ws://"+public+"/ws", http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	defer ws.Close()
	frames := make(chan map[string]any, 16)
	pongs := make(chan struct{}, 16)
	ws.SetPongHandler(func(string) error { pongs <- struct{}{}; return nil })
	go func() {
		defer close(frames)
		for {
			var f map[string]any
			if err := ws.ReadJSON(&f); err != nil {
				return
			}
			frames <- f
		}
	}()

	// Three times the read and write timeouts pinging, then twice them
	// quiet.
	start := time.Now()
	for time.Since(start) < 3*time.Second {
		if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)); err != nil {
			t.Fatalf("ping after %v: %v", time.Since(start), err)
		}
		select {
		case <-pongs:
		case <-time.After(2 * time.Second):
			t.Fatalf("no pong after %v: the socket was cut", time.Since(start))
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)

	if err := ws.WriteJSON(map[string]string{"type": "join", "room": room}); err != nil {
		t.Fatalf("join after %v: %v", time.Since(start), err)
	}
	select {
	case f, ok := <-frames:
		if !ok || f["type"] != "joined" {
			t.Fatalf("after %v got frame %v (open %v), want joined", time.Since(start), f, ok)
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("no answer to a join after %v", time.Since(start))
	}
}

// A CPU profile may take longer than the admin listener's write timeout:
// net/http/pprof pushes the write deadline out by the profile's seconds.
func TestProfilesMayOutlastTheWriteTimeout(t *testing.T) {
	t.Parallel()
	_, admin := startServer(t, scaledTimeouts)
	resp, err := http.Get("http://" + admin + "/debug/pprof/profile?seconds=2")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("got %s with %d bytes (%v), want 200 and a profile", resp.Status, len(body), err)
	}
}

// startServer runs the server with the memory store and extra settings
// until the test ends, and returns its public and admin addresses.
func startServer(t *testing.T, extra map[string]string) (public, admin string) {
	t.Helper()
	addrs := runServer(t, extra).waitListening(t)
	return addrs[0], addrs[1]
}

// runServer runs the server with the memory store and extra settings until
// the test ends, and returns its log.
func runServer(t *testing.T, extra map[string]string) *logLines {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	logs := &logLines{listening: make(chan string, 2)}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, "test", nil, testEnv(extra), logs, logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of its context ending")
		}
	})
	return logs
}

// hold is how long the server kept a connection open, and whether it had
// closed it by then.
type hold struct {
	after  time.Duration
	closed bool
}

// holdOpen connects to addr, writes head at once and then drip one byte
// every tick, and reports when the server closed the connection (up to
// giveUp). Whatever the server answers is read and dropped.
func holdOpen(t *testing.T, addr, head, drip string, tick time.Duration) hold {
	start := time.Now() // before the server can start its clock
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return hold{}
	}
	defer conn.Close()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_, _ = io.Copy(io.Discard, conn) // until EOF or a reset
	}()
	_, _ = io.WriteString(conn, head)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	timeout := time.After(giveUp)
	for {
		select {
		case <-closed:
			return hold{after: time.Since(start), closed: true}
		case <-timeout:
			return hold{after: time.Since(start)}
		case <-ticker.C:
			if drip != "" {
				_, _ = io.WriteString(conn, drip[:1]) // fails once the server has closed: the reader sees it
				drip = drip[1:]
			}
		}
	}
}

// signUp creates a user at base and returns its token.
func signUp(t *testing.T, base, name string) string {
	t.Helper()
	token, err := trySignUp(base, name)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// trySignUp is signUp for a goroutine other than the test's, which may not
// end the test.
func trySignUp(base, name string) (string, error) {
	var session struct{ Token string }
	err := tryPost(base+"/api/v1/users", "", map[string]string{"username": name, "password": "correct horse"}, &session)
	return session.Token, err
}

// createRoom creates a room at base and returns its id.
func createRoom(t *testing.T, base, token, name string) string {
	t.Helper()
	var created struct{ Room struct{ ID string } }
	post(t, base+"/api/v1/rooms", token, map[string]string{"name": name}, &created)
	return created.Room.ID
}

func post(t *testing.T, url, token string, body, into any) {
	t.Helper()
	if err := tryPost(url, token, body, into); err != nil {
		t.Fatal(err)
	}
}

// tryPost posts body as JSON with the token (none when empty), wants 201,
// and decodes the answer into into.
func tryPost(url, token string, body, into any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST %s: got %s, want 201", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		return fmt.Errorf("POST %s: %w", url, err)
	}
	return nil
}
