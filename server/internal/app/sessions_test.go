package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/internal/testenv"
)

// sessionEndBound is the bound docs/protocol.md states for a socket of an
// ended session to close on every replica.
const sessionEndBound = 5 * time.Second

// Two replicas on one PostgreSQL database, as deployed: a session ended
// through one closes the sockets held on the other, with 1008 and the
// reason, within the stated bound. The other replica learns of it only
// from the store, so this is the session checks' work, wired and started
// by Run.
func TestASessionEndedOnOneReplicaClosesItsSocketsOnTheOther(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"DATABASE_URL":      testenv.PostgresURL(t),
		"REDIS_URL":         testenv.RedisURL(t),
		"PARLEY_JWT_SECRET": strings.Repeat("k", 32),
	}
	a, _ := startServer(t, env)
	b, _ := startServer(t, env)
	a, b = "http://"+a, "http://"+b
	alice, bob := signUp(t, a, "alice"), signUp(t, a, "bob")
	aliceWS, bobWS := dialWS(t, b, alice), dialWS(t, b, bob)

	start := time.Now()
	if status := request(t, http.MethodDelete, a+"/api/v1/sessions/current", alice, nil); status != http.StatusNoContent {
		t.Fatalf("DELETE /sessions/current on the first replica: got %d, want 204", status)
	}
	if status := request(t, http.MethodDelete, a+"/api/v1/users/me", bob, map[string]string{"password": "correct horse"}); status != http.StatusNoContent {
		t.Fatalf("DELETE /users/me on the first replica: got %d, want 204", status)
	}
	for _, tt := range []struct {
		name   string
		ws     *websocket.Conn
		reason string
	}{
		{"logged out", aliceWS, "session ended"},
		{"account deleted", bobWS, "account deleted"},
	} {
		err := readUntilClosed(tt.ws, start.Add(sessionEndBound))
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || ce.Text != tt.reason {
			t.Errorf("%s: the other replica's socket ended with %v, want close 1008 %q within %v", tt.name, err, tt.reason, sessionEndBound)
			continue
		}
		t.Logf("%s: the other replica closed the socket %v after the session ended", tt.name, time.Since(start).Round(time.Millisecond))
	}
	if status := request(t, http.MethodGet, b+"/api/v1/rooms", alice, nil); status != http.StatusUnauthorized {
		t.Errorf("GET /rooms on the other replica with the logged out token: got %d, want 401", status)
	}
}

func dialWS(t *testing.T, base, token string) *websocket.Conn {
	t.Helper()
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, _, err := dialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws", http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// request makes a request with the token and a JSON body (none when nil)
// and returns its status.
func request(t *testing.T, method, url, token string, body any) int {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// readUntilClosed reads frames until the connection ends or the deadline
// passes, and returns why it ended.
func readUntilClosed(ws *websocket.Conn, deadline time.Time) error {
	ws.SetReadDeadline(deadline)
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			return err
		}
	}
}
