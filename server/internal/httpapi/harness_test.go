package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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

// testAPI is a Server that tests reach over HTTP and WebSocket, with what
// they need to drive it and to read its metrics and log.
type testAPI struct {
	t      *testing.T
	server *Server
	chat   *chat.Service
	auth   *auth.Service
	reg    *prometheus.Registry
	logs   *syncBuffer
	base   string       // the public listener's URL: http://host:port
	client *http.Client // reaches base
	// netDial reaches base for WebSocket dialers; nil means the real
	// network.
	netDial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// newTestAPI builds a Server on store, not yet served.
func newTestAPI(t *testing.T, store chat.Store, cfg Config) (*testAPI, *chat.Hub) {
	t.Helper()
	hub := chat.NewHub(store, Codec(cfg.Replica), chat.HubOptions{})
	svc := chat.NewService(store, hub, nil)
	authn := auth.New(store, auth.Config{Secret: bytes.Repeat([]byte("s"), 32), PasswordCost: bcrypt.MinCost})
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	server := New(svc, authn, slog.New(slog.NewTextHandler(logs, nil)), reg, cfg)
	return &testAPI{t: t, server: server, chat: svc, auth: authn, reg: reg, logs: logs}, hub
}

// startAPI serves a new Server on store over loopback TCP. Cleanup waits
// for its connections to end (tests close their clients first), then stops
// the HTTP server and the hub, so no goroutine outlives the test.
func startAPI(t *testing.T, store chat.Store, cfg Config) *testAPI {
	t.Helper()
	api, hub := newTestAPI(t, store, cfg)
	srv := httptest.NewServer(api.server.Handler())
	api.base, api.client = srv.URL, srv.Client()
	t.Cleanup(func() {
		// httptest.Server.Close does not wait for hijacked connections:
		// Drain is what waits for the WebSocket handlers to return.
		api.drainAtEnd()
		srv.Close()
		hub.Close()
	})
	return api
}

// startBubbledAPI is startAPI for a test in a synctest bubble. The API is
// served over an in-memory network: a goroutine blocked on a real socket
// would keep the bubble's clock from moving, and synctest.Wait from
// returning.
func startBubbledAPI(t *testing.T, store chat.Store, cfg Config) *testAPI {
	t.Helper()
	api, hub := newTestAPI(t, store, cfg)
	network := newPipeNetwork()
	srv := &http.Server{Handler: api.server.Handler()}
	var serving sync.WaitGroup
	serving.Go(func() { srv.Serve(network) })
	api.base = "http://" + network.Addr().String()
	api.client = &http.Client{Transport: &http.Transport{DialContext: network.dial}}
	api.netDial = network.dial
	t.Cleanup(func() {
		api.drainAtEnd()
		srv.Close()
		serving.Wait()
		api.client.CloseIdleConnections()
		hub.Close()
	})
	return api
}

// drainAtEnd waits for the test's connections to end, failing the test if
// any is left open.
func (a *testAPI) drainAtEnd() {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := a.server.Drain(ctx); err != nil {
		a.t.Errorf("connections still open at the end of the test: Drain: %v", err)
	}
}

// pipeNetwork is an in-memory network with one listener: each dial makes a
// net.Pipe and hands its other end to Accept. A goroutine blocked on a pipe
// is durably blocked, as synctest puts it, where one blocked on a socket is
// not.
type pipeNetwork struct {
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

func newPipeNetwork() *pipeNetwork {
	return &pipeNetwork{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (n *pipeNetwork) Accept() (net.Conn, error) {
	select {
	case c := <-n.conns:
		return c, nil
	case <-n.closed:
		return nil, net.ErrClosed
	}
}

func (n *pipeNetwork) Close() error {
	n.closeOnce.Do(func() { close(n.closed) })
	return nil
}

func (n *pipeNetwork) Addr() net.Addr { return pipeAddr{} }

func (n *pipeNetwork) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case n.conns <- server:
		return client, nil
	case <-n.closed:
		client.Close()
		server.Close()
		return nil, net.ErrClosed
	case <-ctx.Done():
		client.Close()
		server.Close()
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "parley.test" }

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

func (a *testAPI) wsURL() string { return "ws" + strings.TrimPrefix(a.base, "http") + "/ws" }

func (a *testAPI) dial(token string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: waitFor, NetDialContext: a.netDial}
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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+path, bytes.NewReader(b))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
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
	Replica  string `json:"replica"`
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
