package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/parleychat/parley/server/internal/auth"
	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/memstore"
)

// waitFor bounds every wait of these tests for a frame, a close or a metric.
const waitFor = 5 * time.Second

func TestPanicInAFrameClosesOnlyThatConnection(t *testing.T) {
	t.Parallel()
	api := startAPI(t, newPanickingStore(), Config{})
	room := api.mustCreateRoom("lobby")
	victim := api.mustDial(api.mustRegister("victim"))
	bystander := api.mustDial(api.mustRegister("bystander"))
	victim.mustJoin(room)
	bystander.mustJoin(room)

	victim.send(sendMsg(room, "boom", panicBody))
	if got := victim.closeCode(); got != websocket.CloseInternalServerErr {
		t.Errorf("panicking connection: got close code %d, want %d", got, websocket.CloseInternalServerErr)
	}

	bystander.send(sendMsg(room, "after", "still here"))
	if got := bystander.expect("message"); got.Body != "still here" {
		t.Errorf("bystander: got message %q, want %q", got.Body, "still here")
	}
	if got := bystander.expect("ack"); got.ClientID != "after" {
		t.Errorf("bystander: got ack for %q, want %q", got.ClientID, "after")
	}
	if got := api.metric("parley_panics_recovered_total", "where", "ws"); got != 1 {
		t.Errorf("got parley_panics_recovered_total{where=\"ws\"} = %v, want 1", got)
	}
	if got := api.logs.String(); !strings.Contains(got, "panic recovered") {
		t.Errorf("got log %q, want it to record the panic", got)
	}
}

func TestPanicInARESTHandlerAnswers500AndTheServerServesOn(t *testing.T) {
	t.Parallel()
	api := startAPI(t, newPanickingStore(), Config{})
	token := api.mustRegister("alice")
	room := api.mustCreateRoom("lobby")
	path := "/api/v1/rooms/" + room + "/messages"

	status, body := api.post(token, path, postMessageRequest{ClientID: "boom", Body: panicBody})
	if status != http.StatusInternalServerError {
		t.Errorf("panicking request: got status %d, want 500", status)
	}
	if got := errorCode(t, body); got != codeInternal {
		t.Errorf("panicking request: got error code %q, want %q (body %s)", got, codeInternal, body)
	}

	if status, body := api.post(token, path, postMessageRequest{ClientID: "next", Body: "hello"}); status != http.StatusCreated {
		t.Errorf("request after the panic: got status %d, want 201 (body %s)", status, body)
	}
	if got := api.metric("parley_panics_recovered_total", "where", "http"); got != 1 {
		t.Errorf("got parley_panics_recovered_total{where=\"http\"} = %v, want 1", got)
	}
}

func TestDrainAcksTheSendInFlightThenClosesEveryConnectionWith1001(t *testing.T) {
	t.Parallel()
	api := startAPI(t, memstore.New(memstore.Options{}), Config{DrainJitter: 300 * time.Millisecond})
	room := api.mustCreateRoom("lobby")
	sender := api.mustDial(api.mustRegister("sender"))
	idle := api.mustDial(api.mustRegister("idle"))

	sender.send(sendMsg(room, "last-words", "goodbye"))
	// Drain finishes the frame in hand; a frame still unread in the socket
	// when the drain stops reading is dropped for the client to retry. Wait
	// until the server has read this one, so the test is about the former.
	api.waitForMetric("parley_ws_frames_in_total", 1, "type", frameSend)
	drained := api.drainInBackground(waitFor)

	if got := sender.expect("ack"); got.ClientID != "last-words" {
		t.Errorf("got ack for %q, want %q", got.ClientID, "last-words")
	}
	for name, c := range map[string]*wsClient{"sender": sender, "idle": idle} {
		if got := c.closeCode(); got != websocket.CloseGoingAway {
			t.Errorf("%s: got close code %d, want %d", name, got, websocket.CloseGoingAway)
		}
	}
	if err := api.drainResult(drained); err != nil {
		t.Errorf("got Drain() = %v, want nil", err)
	}

	resp := api.mustFailToDial(api.mustRegister("latecomer"))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("upgrade after Drain: got status %d, want 503", resp.StatusCode)
	}
	if got := errorCode(t, mustReadAll(t, resp.Body)); got != codeUnavailable {
		t.Errorf("upgrade after Drain: got error code %q, want %q", got, codeUnavailable)
	}
}

func TestDrainThatRunsOutOfTimeClosesEveryConnectionAnyway(t *testing.T) {
	t.Parallel()
	// No connection's turn to close comes within the context.
	api := startAPI(t, memstore.New(memstore.Options{}), Config{DrainJitter: time.Hour})
	first := api.mustDial(api.mustRegister("first"))
	second := api.mustDial(api.mustRegister("second"))

	drained := api.drainInBackground(100 * time.Millisecond)

	if err := api.drainResult(drained); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got Drain() = %v, want %v", err, context.DeadlineExceeded)
	}
	first.waitEnded()
	second.waitEnded()
}

func TestMetricsFollowAScriptedSession(t *testing.T) {
	t.Parallel()
	api := startAPI(t, memstore.New(memstore.Options{}), Config{})
	room := api.mustCreateRoom("lobby")

	resp := api.mustFailToDial("not-a-token")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("upgrade with a bad token: got status %d, want 401", resp.StatusCode)
	}
	c := api.mustDial(api.mustRegister("alice"))
	c.sendRaw("not json")
	if got := c.expect("error"); got.Code != codeBadRequest {
		t.Errorf("got error code %q for a frame that is not JSON, want %q", got.Code, codeBadRequest)
	}
	// The connection is counted before its first frame is read.
	if got := api.metric("parley_ws_connections"); got != 1 {
		t.Errorf("got parley_ws_connections = %v while connected, want 1", got)
	}
	c.send(sendMsg(room, "c1", "hello"))
	c.expect("ack")
	c.closeNormally()

	api.waitAllEnded()
	for _, m := range []struct {
		name, label, value string
		want               float64
	}{
		{"parley_ws_connections", "", "", 0},
		{"parley_ws_disconnects_total", "code", "1000", 1},
		{"parley_ws_upgrades_total", "result", "ok", 1},
		{"parley_ws_upgrades_total", "result", "unauthorized", 1},
		{"parley_ws_frames_in_total", "type", frameSend, 1},
		{"parley_ws_frames_in_total", "type", "invalid", 1},
		{"parley_ws_frames_in_total", "type", frameJoin, 0},
		{"parley_ws_rate_limited_frames_total", "", "", 0},
		{"parley_panics_recovered_total", "where", "ws", 0},
	} {
		if got := api.metric(m.name, m.label, m.value); got != m.want {
			t.Errorf("got %s{%s=%q} = %v, want %v", m.name, m.label, m.value, got, m.want)
		}
	}
}

func TestRateLimitedFramesAreRefusedAndCounted(t *testing.T) {
	t.Parallel()
	// The clock stands still, so no token comes back between the frames.
	api := startAPI(t, memstore.New(memstore.Options{}), Config{ConnRate: 1, Now: clockAt(time.Now())})
	c := api.mustDial(api.mustRegister("alice"))

	// A burst of two frames is allowed (each is refused for not having
	// joined); the third within the second is rate limited.
	wantCodes := []string{codeBadRequest, codeBadRequest, codeRateLimited}
	for i, want := range wantCodes {
		c.send(map[string]any{"type": frameTyping, "room": "nowhere"})
		got := c.expect("error")
		if got.Code != want {
			t.Errorf("frame %d: got error code %q, want %q", i+1, got.Code, want)
		}
		if got.Ref != frameTyping {
			t.Errorf("frame %d: got ref %q, want %q", i+1, got.Ref, frameTyping)
		}
	}
	if got := api.metric("parley_ws_rate_limited_frames_total"); got != 1 {
		t.Errorf("got parley_ws_rate_limited_frames_total = %v, want 1", got)
	}
}

// panicBody is the message body on which panickingStore panics.
const panicBody = "panic, please"

// panickingStore is the in-memory store with an Append that panics on
// panicBody. The fake is needed because nothing else makes a handler panic:
// the handlers validate their input and the real stores return errors.
type panickingStore struct{ *memstore.Store }

func newPanickingStore() panickingStore {
	return panickingStore{memstore.New(memstore.Options{})}
}

func (s panickingStore) Append(ctx context.Context, d chat.Draft) (chat.Message, bool, error) {
	if d.Body == panicBody {
		panic("test store: Append panicked as asked")
	}
	return s.Store.Append(ctx, d)
}

// testAPI is a Server mounted on an httptest.Server, with what tests need to
// drive it and to read its metrics and log.
type testAPI struct {
	t      *testing.T
	server *Server
	chat   *chat.Service
	auth   *auth.Service
	reg    *prometheus.Registry
	http   *httptest.Server
	logs   *syncBuffer
}

// startAPI serves a new Server on store. Cleanup waits for its connections
// to end (tests close their clients first), then stops the HTTP server and
// the hub, so no goroutine outlives the test.
func startAPI(t *testing.T, store chat.Store, cfg Config) *testAPI {
	t.Helper()
	hub := chat.NewHub(store, Codec(), chat.HubOptions{})
	svc := chat.NewService(store, hub, nil)
	authn := auth.New(store, auth.Config{Secret: bytes.Repeat([]byte("s"), 32), PasswordCost: bcrypt.MinCost})
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	server := New(svc, authn, slog.New(slog.NewTextHandler(logs, nil)), reg, cfg)
	api := &testAPI{t: t, server: server, chat: svc, auth: authn, reg: reg, http: httptest.NewServer(server.Handler()), logs: logs}
	t.Cleanup(func() {
		// httptest.Server.Close does not wait for hijacked connections:
		// Drain is what waits for the WebSocket handlers to return.
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := server.Drain(ctx); err != nil {
			t.Errorf("connections still open at the end of the test: Drain: %v", err)
		}
		api.http.Close()
		hub.Close()
	})
	return api
}

func (a *testAPI) mustRegister(username string) (token string) {
	a.t.Helper()
	sess, err := a.auth.Register(context.Background(), username, "correct horse battery")
	if err != nil {
		a.t.Fatalf("register %s: %v", username, err)
	}
	return sess.Token
}

func (a *testAPI) mustCreateRoom(name string) (id string) {
	a.t.Helper()
	room, err := a.chat.CreateRoom(context.Background(), name)
	if err != nil {
		a.t.Fatalf("create room %s: %v", name, err)
	}
	return room.ID
}

func (a *testAPI) wsURL() string { return "ws" + strings.TrimPrefix(a.http.URL, "http") + "/ws" }

func (a *testAPI) dial(token string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: waitFor}
	return d.Dial(a.wsURL(), http.Header{"Authorization": {"Bearer " + token}})
}

// mustDial opens a WebSocket that the test's cleanup closes.
func (a *testAPI) mustDial(token string) *wsClient {
	a.t.Helper()
	ws, resp, err := a.dial(token)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		a.t.Fatalf("dial: %v (status %d)", err, status)
	}
	return newWSClient(a.t, ws)
}

// mustFailToDial returns the answer to an upgrade that must be refused.
func (a *testAPI) mustFailToDial(token string) *http.Response {
	a.t.Helper()
	ws, resp, err := a.dial(token)
	if err == nil {
		ws.Close()
		a.t.Fatal("dial: got a connection, want a refusal")
	}
	if resp == nil {
		a.t.Fatalf("dial: got %v and no HTTP answer, want a refusal", err)
	}
	return resp
}

func (a *testAPI) post(token, path string, body any) (status int, respBody []byte) {
	a.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		a.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.http.URL+path, bytes.NewReader(b))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.http.Client().Do(req)
	if err != nil {
		a.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, mustReadAll(a.t, resp.Body)
}

// waitAllEnded waits until every connection has ended and counted its end
// in the metrics: Drain returns once none is left.
func (a *testAPI) waitAllEnded() {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := a.server.Drain(ctx); err != nil {
		a.t.Fatalf("connections still open after %v: Drain: %v", waitFor, err)
	}
}

// drainInBackground starts Drain with a context of within and returns the
// channel its result arrives on.
func (a *testAPI) drainInBackground(within time.Duration) <-chan error {
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), within)
	go func() {
		defer cancel()
		done <- a.server.Drain(ctx)
	}()
	return done
}

// drainResult waits for the result of a Drain started by drainInBackground,
// failing the test if Drain hangs.
func (a *testAPI) drainResult(drained <-chan error) error {
	a.t.Helper()
	select {
	case err := <-drained:
		return err
	case <-time.After(waitFor):
		a.t.Fatalf("Drain still running after %v", waitFor)
		return nil
	}
}

// metric returns the value of the series of the registry's metric name with
// the given label name and value pairs (none for an unlabelled metric), or
// 0 when the series does not exist yet.
func (a *testAPI) metric(name string, labelPairs ...string) float64 {
	a.t.Helper()
	want := map[string]string{}
	for i := 0; i+1 < len(labelPairs); i += 2 {
		if labelPairs[i] != "" {
			want[labelPairs[i]] = labelPairs[i+1]
		}
	}
	families, err := a.reg.Gather()
	if err != nil {
		a.t.Fatalf("gather metrics: %v", err)
	}
	for _, mf := range families {
		// A histogram is read by its count: name_count.
		if mf.GetName() != name && mf.GetName()+"_count" != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(want) {
				continue
			}
			for _, l := range m.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil && mf.GetName() != name:
				return float64(m.GetHistogram().GetSampleCount())
			}
			a.t.Fatalf("metric %s is not a counter, a gauge or a histogram's count", name)
		}
	}
	return 0
}

// waitForMetric waits until a series reaches want. Metrics have no channel
// to wait on, so it polls, within waitFor.
func (a *testAPI) waitForMetric(name string, want float64, labelPairs ...string) {
	a.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		got := a.metric(name, labelPairs...)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("after %v: got %s%v = %v, want %v", waitFor, name, labelPairs, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// frame is any frame the server sends, with the fields tests look at.
type frame struct {
	Type     string `json:"type"`
	Room     string `json:"room"`
	ClientID string `json:"client_id"`
	ID       string `json:"id"`
	Seq      int64  `json:"seq"`
	Body     string `json:"body"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	Ref      string `json:"ref"`
}

// wsClient is a test's WebSocket client. A goroutine reads every frame
// into frames; when reading fails it closes the socket (so the server
// need not wait for it) and records why in err before closing ended.
type wsClient struct {
	t      *testing.T
	ws     *websocket.Conn
	frames chan frame
	quit   chan struct{} // closed by cleanup: stop even with frames unread
	ended  chan struct{}
	err    error // read only after ended is closed
}

func newWSClient(t *testing.T, ws *websocket.Conn) *wsClient {
	c := &wsClient{t: t, ws: ws, frames: make(chan frame, 256), quit: make(chan struct{}), ended: make(chan struct{})}
	go c.readAll()
	t.Cleanup(func() {
		close(c.quit)
		c.ws.Close()
		<-c.ended
	})
	return c
}

func (c *wsClient) readAll() {
	defer close(c.ended)
	defer c.ws.Close()
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.err = err
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			c.err = fmt.Errorf("server sent a frame that is not JSON: %q", data)
			return
		}
		select {
		case c.frames <- f:
		case <-c.quit:
			return
		}
	}
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	c.ws.SetWriteDeadline(time.Now().Add(waitFor))
	if err := c.ws.WriteJSON(v); err != nil {
		c.t.Fatalf("write frame: %v", err)
	}
}

func (c *wsClient) sendRaw(s string) {
	c.t.Helper()
	c.ws.SetWriteDeadline(time.Now().Add(waitFor))
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("write frame: %v", err)
	}
}

// expect returns the next frame of type typ, skipping frames of other types
// but errors, and fails if the connection ends or nothing comes in time.
func (c *wsClient) expect(typ string) frame {
	c.t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case f := <-c.frames:
			if f.Type == typ {
				return f
			}
			if f.Type == "error" {
				c.t.Fatalf("got error frame %+v, want a %q frame", f, typ)
			}
		case <-c.ended:
			select {
			case f := <-c.frames:
				if f.Type == typ {
					return f
				}
				continue
			default:
			}
			c.t.Fatalf("connection ended (%v) while waiting for a %q frame", c.err, typ)
		case <-timeout:
			c.t.Fatalf("no %q frame within %v", typ, waitFor)
		}
	}
}

func (c *wsClient) mustJoin(room string) {
	c.t.Helper()
	c.send(map[string]any{"type": frameJoin, "room": room})
	c.expect("joined")
}

// waitEnded waits for the server to end the connection.
func (c *wsClient) waitEnded() {
	c.t.Helper()
	select {
	case <-c.ended:
	case <-time.After(waitFor):
		c.t.Fatalf("connection still open after %v", waitFor)
	}
}

// closeCode waits for the server to end the connection and returns the code
// of its close frame, or -1 if it sent none.
func (c *wsClient) closeCode() int {
	c.t.Helper()
	c.waitEnded()
	var ce *websocket.CloseError
	if errors.As(c.err, &ce) {
		return ce.Code
	}
	return -1
}

// closeNormally closes the connection as a well-behaved client does: a close
// frame with 1000, then waiting for the server's.
func (c *wsClient) closeNormally() {
	c.t.Helper()
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(waitFor)); err != nil {
		c.t.Fatalf("write close frame: %v", err)
	}
	if got := c.closeCode(); got != websocket.CloseNormalClosure {
		c.t.Errorf("server answered close 1000 with %d, want 1000", got)
	}
}

func sendMsg(room, clientID, body string) map[string]any {
	return map[string]any{"type": frameSend, "room": room, "client_id": clientID, "body": body}
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var env errorBody
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("body %q is not the error envelope: %v", body, err)
	}
	return env.Error.Code
}

func mustReadAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return b
}

// syncBuffer is a log destination that handlers on many goroutines share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestAFractionalConnRateStillAllowsFrames(t *testing.T) {
	t.Parallel()
	// 0.4 frames a second is a valid PARLEY_CONN_RATE: a burst of 0.8
	// rounds down to 0, and a bucket that holds no token refuses everything.
	api := startAPI(t, memstore.New(memstore.Options{}), Config{ConnRate: 0.4})
	c := api.mustDial(api.mustRegister("alice"))

	c.send(map[string]any{"type": frameTyping, "room": "nowhere"})
	if got := c.expect("error"); got.Code != codeBadRequest {
		t.Errorf("first frame: got error code %q, want %q (join the room first)", got.Code, codeBadRequest)
	}
}

func TestInvalidFramesCountAgainstTheConnectionRate(t *testing.T) {
	t.Parallel()
	// Otherwise a client can make the server decode and answer invalid frames
	// as fast as it can send them, and never be closed with 4029.
	api := startAPI(t, memstore.New(memstore.Options{}), Config{ConnRate: 1, Now: clockAt(time.Now())})
	c := api.mustDial(api.mustRegister("alice"))

	wantCodes := []string{codeBadRequest, codeBadRequest, codeRateLimited}
	for i, want := range wantCodes {
		c.sendRaw("not json")
		if got := c.expect("error"); got.Code != want {
			t.Errorf("invalid frame %d: got error code %q, want %q", i+1, got.Code, want)
		}
	}
}

func TestAPlainGETOfTheWebSocketEndpointGetsTheErrorEnvelope(t *testing.T) {
	t.Parallel()
	api := startAPI(t, memstore.New(memstore.Options{}), Config{})
	req, err := http.NewRequest(http.MethodGet, api.http.URL+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+api.mustRegister("alice"))
	resp, err := api.http.Client().Do(req)
	if err != nil {
		t.Fatalf("GET /ws: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("got status %d, want 400", resp.StatusCode)
	}
	if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
		t.Errorf("got Content-Type %q, want application/json", got)
	}
	var env errorBody
	if err := json.Unmarshal(mustReadAll(t, resp.Body), &env); err != nil || env.Error.Code != codeBadRequest {
		t.Errorf("got body that is not the error envelope with code %q (%v)", codeBadRequest, err)
	}
}
