// Package api is the canary's WebSocket connection: one that knows which
// replica serves it and reads every frame as it comes. Its REST calls go
// through the load generator's client of the public protocol
// (loadtest/wire); like the load generator, the canary never imports the
// server: what it measures is what any client would see.
package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/loadtest/wire"
)

// ReplicaHeader is the header in which the server names the replica that
// accepted a WebSocket upgrade, on the 101 alone (a protocol extension,
// docs/protocol.md).
const ReplicaHeader = "X-Parley-Replica"

// Frame is a server frame, with the fields the canary reads.
type Frame struct {
	Type     string `json:"type"`
	Room     string `json:"room"`
	ClientID string `json:"client_id"`
	Seq      int64  `json:"seq"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	Ref      string `json:"ref"`
	// Replica is in joined frames: the replica serving the connection.
	Replica string `json:"replica"`
}

// Conn is a WebSocket connection to /ws. Its own goroutine reads every
// frame as it comes, so the server never sees a slow consumer, and hands
// them over on Frames; Done is closed when the connection has ended.
type Conn struct {
	// Replica is the id the upgrade's X-Parley-Replica gave: the
	// replica serving this connection ("" from a server without it).
	Replica string

	ws      *websocket.Conn
	writeMu sync.Mutex
	frames  chan Frame
	done    chan struct{}
	err     error // why reading ended; read after done is closed
}

// Timeouts of a connection: a write the server does not take, and a
// silence longer than its pings allow (every 25 s by default), end it.
const (
	writeWait = 10 * time.Second
	readWait  = 60 * time.Second
)

// frameBuffer holds frames that nobody has taken yet. Beyond it the
// oldest are dropped rather than the reader stalled: a probe looks only
// for its own frames, which come right after its send.
const frameBuffer = 256

// Dial opens /ws at url as the holder of token.
func Dial(ctx context.Context, d *websocket.Dialer, url, token string) (*Conn, error) {
	ws, resp, err := d.DialContext(ctx, url, http.Header{"Authorization": {"Bearer " + token}})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			// Refused with an HTTP answer: wire.HasStatus tells a 401 from a 503.
			return nil, fmt.Errorf("dial %s: %w", url, &wire.APIError{Status: resp.StatusCode, Message: err.Error()})
		}
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	ws.SetReadLimit(1 << 20)
	c := &Conn{Replica: resp.Header.Get(ReplicaHeader), ws: ws, frames: make(chan Frame, frameBuffer), done: make(chan struct{})}
	_ = ws.SetReadDeadline(time.Now().Add(readWait))
	ws.SetPingHandler(func(data string) error {
		_ = ws.SetReadDeadline(time.Now().Add(readWait))
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeWait))
	})
	go c.read()
	return c, nil
}

func (c *Conn) read() {
	defer close(c.done)
	defer c.ws.Close()
	for {
		_, raw, err := c.ws.ReadMessage()
		if err != nil {
			c.err = err
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(readWait))
		var f Frame
		if err := json.Unmarshal(raw, &f); err != nil {
			c.err = fmt.Errorf("undecodable frame %q: %w", raw, err)
			return
		}
		for {
			select {
			case c.frames <- f:
			default:
				select {
				case <-c.frames: // the oldest goes
				default:
				}
				continue
			}
			break
		}
	}
}

// Frames delivers the frames read, in order.
func (c *Conn) Frames() <-chan Frame { return c.frames }

// Done is closed once the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err says why the connection ended; nil before Done is closed.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Join asks to join room.
func (c *Conn) Join(room string) error {
	return c.write(map[string]any{"type": "join", "room": room})
}

// Send sends body to room under clientID. traceparent (W3C) makes the
// server's span of the frame a child of the caller's (an extension).
func (c *Conn) Send(room, clientID, body, traceparent string) error {
	f := map[string]any{"type": "send", "room": room, "client_id": clientID, "body": body}
	if traceparent != "" {
		f["trace"] = traceparent
	}
	return c.write(f)
}

func (c *Conn) write(frame any) error {
	raw, err := json.Marshal(frame)
	if err != nil {
		return err
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	return c.ws.WriteMessage(websocket.TextMessage, raw)
}

// Close closes the connection with a normal closure and waits until its
// reader has stopped. It may be called more than once.
func (c *Conn) Close() {
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.ws.Close()
	<-c.done
}
