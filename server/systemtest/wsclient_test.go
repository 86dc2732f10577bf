package systemtest

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// frame is any server frame; fields a type lacks stay zero.
type frame struct {
	Type     string    `json:"type"`
	Room     string    `json:"room"`
	LastSeq  int64     `json:"last_seq"`
	Members  []apiUser `json:"members"`
	ID       string    `json:"id"`
	Seq      int64     `json:"seq"`
	ClientID string    `json:"client_id"`
	User     apiUser   `json:"user"`
	Body     string    `json:"body"`
	TS       string    `json:"ts"`
	Status   string    `json:"status"`
	Code     string    `json:"code"`
	Message  string    `json:"message"`
	Ref      string    `json:"ref"`
	// RetryAfter is a rate_limited error's wait, in seconds.
	RetryAfter float64 `json:"retry_after"`
}

// writeTimeout bounds every write of a test's socket: a server that has not
// taken a frame in that time has stopped reading, which no test expects, and
// the write fails instead of hanging the test.
const writeTimeout = 10 * time.Second

// wsConn is one WebSocket connection to a server, the client side of the
// protocol for every test, benchmark and load: a goroutine of its own reads
// it, decoding each frame and handing it to handle in order, until the
// connection ends; writes go one at a time.
type wsConn struct {
	conn   *websocket.Conn
	handle func(frame)
	closed chan struct{} // closed once the connection has ended and the reader stopped
	wmu    sync.Mutex

	// Set by the reader before it closes closed.
	closeCode int      // the server's close code, -1 for an end without one
	readErr   error    // what ended the connection
	garbled   []string // frames that were not JSON
}

// openWS connects to the WebSocket URL as the holder of token. The response
// is the server's refusal when the handshake fails.
func openWS(url, token string, handle func(frame)) (*wsConn, *http.Response, error) {
	conn, resp, err := dialer().Dial(url, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		return nil, resp, err
	}
	return readWS(conn, handle), resp, nil
}

// dialer gives up on a handshake the server does not answer.
func dialer() *websocket.Dialer {
	return &websocket.Dialer{HandshakeTimeout: 10 * time.Second}
}

// readWS starts reading conn, which the caller has opened.
func readWS(conn *websocket.Conn, handle func(frame)) *wsConn {
	c := &wsConn{conn: conn, handle: handle, closed: make(chan struct{})}
	go c.read()
	return c
}

func (c *wsConn) read() {
	defer close(c.closed)
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			c.readErr, c.closeCode = err, -1
			if ce, ok := errors.AsType[*websocket.CloseError](err); ok {
				c.closeCode = ce.Code
			}
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			c.garbled = append(c.garbled, string(data))
			continue
		}
		c.handle(f)
	}
}

// write sends v as a JSON text frame.
func (c *wsConn) write(v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.conn.WriteJSON(v)
}

// close ends the connection and waits for the reader to stop.
func (c *wsConn) close() {
	c.conn.Close()
	<-c.closed
}

// code waits for the connection to end and returns the close code that
// ended it.
func (c *wsConn) code() int {
	<-c.closed
	return c.closeCode
}

// wsClient is a test's connection that it reads frame by frame: frames
// queue until next or expect takes them, and whatever goes wrong fails the
// test.
type wsClient struct {
	*wsConn
	t      testing.TB
	frames chan frame
}

// dial connects to the server as the holder of token, closed when the test
// ends.
func (s *testServer) dial(token string) *wsClient {
	s.t.Helper()
	conn, resp, err := dialer().Dial(s.wsURL(), http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		s.t.Fatalf("dial: %v (status %d)", err, status)
	}
	return newWSClient(s.t, conn)
}

// newWSClient starts reading conn for the test, which closes it at its end.
func newWSClient(t testing.TB, conn *websocket.Conn) *wsClient {
	c := &wsClient{t: t, frames: make(chan frame, 10000)}
	c.wsConn = readWS(conn, func(f frame) { c.frames <- f })
	t.Cleanup(func() {
		c.close()
		if len(c.garbled) > 0 {
			t.Errorf("server sent frames that are not JSON: %q", c.garbled)
		}
	})
	return c
}

func (s *testServer) wsURL() string { return "ws" + strings.TrimPrefix(s.base, "http") + "/ws" }

// dialWith tries an upgrade with the given header and query and returns the
// HTTP status it got (101 for a socket, which it then closes).
func (s *testServer) dialWith(h http.Header, query string) int {
	s.t.Helper()
	conn, resp, err := dialer().Dial(s.wsURL()+query, h)
	if err == nil {
		conn.Close()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		s.t.Fatalf("dial: %v", err)
		return 0
	}
	return resp.StatusCode
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	if err := c.write(v); err != nil {
		c.t.Fatalf("write frame: %v", err)
	}
}

// next returns the next frame, failing the test after 10 s.
func (c *wsClient) next() frame {
	c.t.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-c.closed:
		select {
		case f := <-c.frames:
			return f
		default:
		}
		c.t.Fatalf("connection closed (code %d) while waiting for a frame", c.code())
	case <-time.After(10 * time.Second):
		c.t.Fatal("no frame in 10s")
	}
	return frame{}
}

// expect returns the next frame of type typ, skipping presence and typing
// frames, and fails on anything else.
func (c *wsClient) expect(typ string) frame {
	c.t.Helper()
	for {
		f := c.next()
		if f.Type == typ {
			return f
		}
		if f.Type != "presence" && f.Type != "typing" {
			c.t.Fatalf("got frame %+v, want type %q", f, typ)
		}
	}
}

func (c *wsClient) join(room string, since *int64) frame {
	c.t.Helper()
	msg := map[string]any{"type": "join", "room": room}
	if since != nil {
		msg["since"] = *since
	}
	c.send(msg)
	return c.expect("joined")
}

// waitClosed waits for the server to close the connection and returns the
// close code (-1 for a close without a close frame).
func (c *wsClient) waitClosed(within time.Duration) int {
	c.t.Helper()
	select {
	case <-c.closed:
		return c.code()
	case <-time.After(within):
		c.t.Fatalf("connection still open after %v", within)
		return 0
	}
}
