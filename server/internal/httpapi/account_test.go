package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/memstore"
)

// A token was checked only for its signature and expiry: after the
// in-memory store restarted under the same secret, the old token still
// posted, and once someone else signed up under the old name, two people
// spoke as one.
func TestATokenWhoseSessionTheStoreDoesNotHaveIsRefused(t *testing.T) {
	t.Parallel()
	before := startAPI(t, memstore.New(memstore.Options{}), Config{})
	old := before.mustRegister("alice")

	after := startAPI(t, memstore.New(memstore.Options{}), Config{}) // the restart: same secret, empty store
	after.wantRefused(old, "a token of the store before")
	after.mustRegister("alice")
	after.wantRefused(old, "a token of the store before, once its name is someone else's")
}

func TestLogoutEndsTheTokenAndItsSockets(t *testing.T) {
	t.Parallel()
	api := startAPI(t, memstore.New(memstore.Options{}), Config{})
	token := api.mustRegister("alice")
	other := api.mustLogin("alice")
	ws, otherWS := api.mustDialServed(token), api.mustDialServed(other)
	status, body := api.do(http.MethodPost, token, "/api/v1/ws-tickets", nil)
	var ticket struct{ Ticket string }
	if err := json.Unmarshal(body, &ticket); status != http.StatusCreated || err != nil {
		t.Fatalf("POST /ws-tickets: got %d %s, want 201 and a ticket", status, body)
	}

	if status, body := api.do(http.MethodDelete, token, "/api/v1/sessions/current", nil); status != http.StatusNoContent {
		t.Fatalf("DELETE /sessions/current: got %d %s, want 204", status, body)
	}
	ws.wantClosedBecause(websocket.ClosePolicyViolation, "session ended")
	api.wantRefused(token, "a logged out token")
	d := websocket.Dialer{HandshakeTimeout: waitFor}
	if ws, resp, err := d.Dial(api.wsURL()+"?ticket="+ticket.Ticket, nil); err == nil {
		ws.Close()
		t.Error("upgrade with a ticket of a logged out session: got a connection, want 401")
	} else if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("upgrade with a ticket of a logged out session: got %v (%v), want 401", resp, err)
	}
	api.wantAccepted(other)
	otherWS.mustJoin(api.mustCreateRoom("hall"))
}

func TestChangingThePasswordEndsTheOtherSessions(t *testing.T) {
	t.Parallel()
	api := startAPI(t, memstore.New(memstore.Options{}), Config{})
	token := api.mustRegister("alice")
	other := api.mustLogin("alice")
	ws, otherWS := api.mustDialServed(token), api.mustDialServed(other)

	for _, tt := range []struct {
		name       string
		body       any
		wantStatus int
		wantCode   string
	}{
		{"a wrong current password", map[string]string{"password": "wrong horse battery", "new_password": "battery staple"}, http.StatusForbidden, codeForbidden},
		{"a new password sign-up would refuse", map[string]string{"password": "correct horse battery", "new_password": "short"}, http.StatusBadRequest, codeBadRequest},
	} {
		status, body := api.do(http.MethodPut, token, "/api/v1/users/me/password", tt.body)
		if status != tt.wantStatus || errorCode(t, body) != tt.wantCode {
			t.Errorf("%s: got %d %s, want %d %s", tt.name, status, body, tt.wantStatus, tt.wantCode)
		}
	}
	api.wantAccepted(other)

	body := map[string]string{"password": "correct horse battery", "new_password": "battery staple"}
	if status, body := api.do(http.MethodPut, token, "/api/v1/users/me/password", body); status != http.StatusNoContent {
		t.Fatalf("PUT /users/me/password: got %d %s, want 204", status, body)
	}
	otherWS.wantClosedBecause(websocket.ClosePolicyViolation, "session ended")
	api.wantRefused(other, "the token of another session")
	api.wantAccepted(token)
	ws.mustJoin(api.mustCreateRoom("hall"))
	if _, err := api.auth.Login(context.Background(), "alice", "battery staple"); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
}

func TestADeletedAccountEndsButItsMessagesStay(t *testing.T) {
	t.Parallel()
	api := startAPI(t, memstore.New(memstore.Options{}), Config{})
	token, bob := api.mustRegister("alice"), api.mustRegister("bob")
	room := api.mustCreateRoom("lobby")
	for _, tk := range []string{token, bob} {
		if status, body := api.post(tk, "/api/v1/rooms/"+room+"/messages", map[string]string{"client_id": "c1", "body": "hi"}); status != http.StatusCreated {
			t.Fatalf("post: got %d %s, want 201", status, body)
		}
	}
	ws := api.mustDialServed(token)

	status, body := api.do(http.MethodDelete, token, "/api/v1/users/me", map[string]string{"password": "wrong horse battery"})
	if status != http.StatusForbidden || errorCode(t, body) != codeForbidden {
		t.Fatalf("DELETE /users/me with a wrong password: got %d %s, want 403 forbidden", status, body)
	}
	if status, body := api.do(http.MethodDelete, token, "/api/v1/users/me", map[string]string{"password": "correct horse battery"}); status != http.StatusNoContent {
		t.Fatalf("DELETE /users/me: got %d %s, want 204", status, body)
	}
	ws.wantClosedBecause(websocket.ClosePolicyViolation, "account deleted")
	api.wantRefused(token, "a deleted account's token")

	creds := map[string]string{"username": "Alice", "password": "correct horse battery"}
	if status, body := api.do(http.MethodPost, "", "/api/v1/users", creds); status != http.StatusConflict {
		t.Errorf("sign-up with a deleted account's name: got %d %s, want 409", status, body)
	}
	if status, body := api.do(http.MethodPost, "", "/api/v1/sessions", creds); status != http.StatusUnauthorized {
		t.Errorf("login of a deleted account: got %d %s, want 401", status, body)
	}

	status, body = api.do(http.MethodGet, bob, "/api/v1/rooms/"+room+"/messages", nil)
	if status != http.StatusOK {
		t.Fatalf("history: got %d %s, want 200", status, body)
	}
	var page struct {
		Messages []struct {
			User map[string]any `json:"user"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &page); err != nil || len(page.Messages) != 2 {
		t.Fatalf("history: got %s (%v), want two messages", body, err)
	}
	if got := page.Messages[0].User; got["username"] != "alice" || got["deleted"] != true {
		t.Errorf("the deleted account's message: got user %v, want alice with deleted true", got)
	}
	if got := page.Messages[1].User; got["username"] != "bob" || got["deleted"] != nil {
		t.Errorf("a live account's message: got user %v, want bob without deleted", got)
	}

	// A since replay reads the same history.
	replay, _, err := api.dial(bob)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer replay.Close()
	replay.SetReadDeadline(time.Now().Add(waitFor))
	replay.SetWriteDeadline(time.Now().Add(waitFor))
	if err := replay.WriteJSON(map[string]any{"type": frameJoin, "room": room, "since": 0}); err != nil {
		t.Fatal(err)
	}
	var authors []map[string]any
	for len(authors) < 2 {
		var f struct {
			Type string         `json:"type"`
			User map[string]any `json:"user"`
		}
		if err := replay.ReadJSON(&f); err != nil {
			t.Fatalf("reading the replay: %v", err)
		}
		if f.Type == "message" {
			authors = append(authors, f.User)
		}
	}
	if authors[0]["deleted"] != true || authors[1]["deleted"] != nil {
		t.Errorf("replayed authors: got %v, want alice deleted and bob not", authors)
	}
}

// A session ended through one replica closes the sockets held on another
// within the bound docs/protocol.md states. The replicas share a memory
// store here; the same runs against PostgreSQL in the app package's tests.
func TestASessionEndedOnOneReplicaClosesItsSocketsOnAnother(t *testing.T) {
	t.Parallel()
	store := memstore.New(memstore.Options{})
	a := startAPI(t, store, Config{SessionCheck: 100 * time.Millisecond})
	b := startAPI(t, store, Config{SessionCheck: 100 * time.Millisecond})
	b.checkSessions()
	logout, deleted := a.mustRegister("alice"), a.mustRegister("bob")
	loggedOutWS, deletedWS := b.mustDial(logout), b.mustDial(deleted)

	if status, body := a.do(http.MethodDelete, logout, "/api/v1/sessions/current", nil); status != http.StatusNoContent {
		t.Fatalf("DELETE /sessions/current on a: got %d %s, want 204", status, body)
	}
	if status, body := a.do(http.MethodDelete, deleted, "/api/v1/users/me", map[string]string{"password": "correct horse battery"}); status != http.StatusNoContent {
		t.Fatalf("DELETE /users/me on a: got %d %s, want 204", status, body)
	}
	start := time.Now()
	loggedOutWS.wantClosedBecause(websocket.ClosePolicyViolation, "session ended")
	deletedWS.wantClosedBecause(websocket.ClosePolicyViolation, "account deleted")
	t.Logf("sockets on the other replica closed %v after the sessions ended", time.Since(start))
}

// A store that cannot answer the check leaves the sockets open: an outage
// must not sign everyone out.
func TestAFailedSessionCheckClosesNothing(t *testing.T) {
	t.Parallel()
	store := &failingSessions{Store: memstore.New(memstore.Options{})}
	api := startAPI(t, store, Config{})
	ws := api.mustDialServed(api.mustRegister("alice"))
	store.failing = true

	api.server.checkSessions(context.Background())
	ws.mustJoin(api.mustCreateRoom("hall"))
	if store.asked == 0 {
		t.Error("the check did not ask the store")
	}
}

type failingSessions struct {
	*memstore.Store
	failing bool
	asked   int
}

func (s *failingSessions) SessionStatuses(ctx context.Context, ids []string, now time.Time) (map[string]chat.SessionStatus, error) {
	if s.failing {
		s.asked++
		return nil, chat.Errorf(chat.ErrUnavailable, "store is down")
	}
	return s.Store.SessionStatuses(ctx, ids, now)
}

// mustDialServed opens a WebSocket and waits until the server serves it (a
// join is answered), so that the server counts it among its sockets.
func (a *testAPI) mustDialServed(token string) *wsClient {
	a.t.Helper()
	c := a.mustDial(token)
	c.mustJoin(a.mustCreateRoom("room-" + chat.NewID(time.Now())))
	return c
}

// checkSessions runs the API's session checks until the test ends.
func (a *testAPI) checkSessions() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.server.CheckSessions(ctx)
	}()
	a.t.Cleanup(func() {
		cancel()
		<-done
	})
}

func (a *testAPI) mustLogin(username string) (token string) {
	a.t.Helper()
	sess, err := a.auth.Login(context.Background(), username, "correct horse battery")
	if err != nil {
		a.t.Fatalf("login %s: %v", username, err)
	}
	return sess.Token
}

// do makes a request with a JSON body (none when body is nil) and the
// token, if any.
func (a *testAPI) do(method, token, path string, body any) (status int, respBody []byte) {
	a.t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			a.t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(b))
	if err != nil {
		a.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, mustReadAll(a.t, resp.Body)
}

// wantRefused checks that the token is refused over REST and at the
// WebSocket upgrade, both 401; which says what token it is.
func (a *testAPI) wantRefused(token, which string) {
	a.t.Helper()
	if status, body := a.do(http.MethodGet, token, "/api/v1/rooms", nil); status != http.StatusUnauthorized || errorCode(a.t, body) != codeUnauthorized {
		a.t.Errorf("GET /rooms with %s: got %d %s, want 401 unauthorized", which, status, body)
	}
	if status, body := a.do(http.MethodPost, token, "/api/v1/ws-tickets", nil); status != http.StatusUnauthorized {
		a.t.Errorf("POST /ws-tickets with %s: got %d %s, want 401", which, status, body)
	}
	ws, resp, err := a.dial(token)
	if err == nil {
		ws.Close()
		a.t.Errorf("upgrade with %s: got a connection, want 401", which)
		return
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		a.t.Errorf("upgrade with %s: got %v (%v), want 401", which, resp, err)
	}
}

// wantAccepted checks that the token still works over REST.
func (a *testAPI) wantAccepted(token string) {
	a.t.Helper()
	if status, body := a.do(http.MethodGet, token, "/api/v1/rooms", nil); status != http.StatusOK {
		a.t.Errorf("GET /rooms with a live token: got %d %s, want 200", status, body)
	}
}

// wantClosedBecause waits for the server to close the connection and checks
// its close frame's code and reason.
func (c *wsClient) wantClosedBecause(code int, reason string) {
	c.t.Helper()
	c.waitEnded()
	var ce *websocket.CloseError
	if !errors.As(c.err, &ce) || ce.Code != code || ce.Text != reason {
		c.t.Errorf("connection ended with %v, want close %d %q", c.err, code, reason)
	}
}
