package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// In is a frame from the server, with only the fields the generator reads:
// decoding fewer fields costs less at tens of thousands of frames a second.
type In struct {
	Type     string `json:"type"`
	Room     string `json:"room"`
	Seq      int64  `json:"seq"`
	LastSeq  int64  `json:"last_seq"`
	ClientID string `json:"client_id"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	Ref      string `json:"ref"`
	// RetryAfter is, in a rate_limited error, the seconds after which the
	// refused frame would be accepted (an extension, docs/protocol.md).
	RetryAfter float64 `json:"retry_after"`
}

// Server frame types the generator acts on.
const (
	TypeJoined  = "joined"
	TypeMessage = "message"
	TypeAck     = "ack"
	TypeError   = "error"
)

// CodeRateLimited is the error code of a frame refused for its rate: it may
// be sent again after the error's RetryAfter.
const CodeRateLimited = "rate_limited"

type out struct {
	Type     string `json:"type"`
	Room     string `json:"room"`
	Since    *int64 `json:"since,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	Body     string `json:"body,omitempty"`
	// Trace is the server's extension (docs/protocol.md): a W3C
	// traceparent that makes the frame's span a child of the caller's.
	Trace string `json:"trace,omitempty"`
}

func encode(f out) []byte {
	raw, err := json.Marshal(f)
	if err != nil {
		panic(err) // strings and integers always encode
	}
	return raw
}

// JoinFrame joins room; with since it asks for every message after it.
func JoinFrame(room string, since *int64) []byte {
	return encode(out{Type: "join", Room: room, Since: since})
}

// SendFrame sends body to room under clientID, traced by traceparent
// (empty for none).
func SendFrame(room, clientID, body, traceparent string) []byte {
	return encode(out{Type: "send", Room: room, ClientID: clientID, Body: body, Trace: traceparent})
}

// TypingFrame tells room's members that the user is typing.
func TypingFrame(room string) []byte { return encode(out{Type: "typing", Room: room}) }

// Conn is a WebSocket connection to /ws. Writes may come from several
// goroutines; reads from one.
type Conn struct {
	ws      *websocket.Conn
	writeMu sync.Mutex

	extended time.Time // when Read last pushed the read deadline out; Read's goroutine only
}

// writeWait bounds every write: a server that stops reading must not hold
// the generator.
const writeWait = 10 * time.Second

// Dial opens /ws at url as the holder of token.
func Dial(ctx context.Context, d *websocket.Dialer, url, token string) (*Conn, error) {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	ws, resp, err := d.DialContext(ctx, url, h)
	var refusal *APIError
	if resp != nil && resp.Body != nil {
		if err != nil && resp.StatusCode == http.StatusTooManyRequests {
			refusal = refused(resp)
		}
		resp.Body.Close() // the upgrade's body is empty; other refusals' are not read
	}
	if err != nil {
		switch {
		case refusal != nil:
			// A limit on connections: the caller waits RetryAfter at
			// least before dialling again.
			return nil, fmt.Errorf("dial %s: %w: %w", url, err, refusal)
		case resp != nil:
			return nil, fmt.Errorf("dial %s: %w (status %d)", url, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	ws.SetReadLimit(1 << 20)
	// A connection that goes silent (a half-open TCP link, a server that
	// stopped) must end rather than hold its user: the server pings well
	// within readWait, and every ping or frame extends the deadline.
	now := time.Now()
	_ = ws.SetReadDeadline(now.Add(readWait))
	ws.SetPingHandler(func(data string) error {
		_ = ws.SetReadDeadline(time.Now().Add(readWait))
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeWait))
	})
	return &Conn{ws: ws, extended: now}, nil
}

// readWait is how long a connection may stay silent: above the server's
// ping interval (30 s by default) with room to spare.
const readWait = 90 * time.Second

// Write sends one frame.
func (c *Conn) Write(frame []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.ws.SetWriteDeadline(time.Now().Add(writeWait)); err != nil {
		return err
	}
	return c.ws.WriteMessage(websocket.TextMessage, frame)
}

// Read returns the next frame. A frame that is not JSON is an error: the
// server never sends one. Read is for one goroutine at a time.
func (c *Conn) Read() (In, error) {
	_, r, err := c.ws.NextReader()
	if err != nil {
		return In{}, err
	}
	// Frames are read into pooled buffers, not a new slice each: In's
	// fields are copies, so the buffer is free again once decoded.
	buf := readBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledFrame { // a rare history page is not kept
			readBuffers.Put(buf)
		}
	}()
	buf.Reset()
	if _, err := buf.ReadFrom(r); err != nil {
		return In{}, err
	}
	// Moving the deadline resets a runtime timer; at a frame every few
	// milliseconds, once a second keeps a 90 s limit just as well.
	if now := time.Now(); now.Sub(c.extended) > time.Second {
		_ = c.ws.SetReadDeadline(now.Add(readWait))
		c.extended = now
	}
	f, err := DecodeIn(buf.Bytes())
	if err != nil {
		return In{}, fmt.Errorf("undecodable frame %q: %w", buf.Bytes(), err)
	}
	return f, nil
}

// readBuffers holds the buffers Read decodes frames from, up to
// maxPooledFrame bytes each.
var readBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledFrame = 64 << 10

// Close closes the connection with a normal closure, and at once: the
// generator does not wait for the server's answer. It may be called from
// any goroutine, even during a Write (gorilla allows WriteControl beside
// other writes), and more than once.
func (c *Conn) Close() error {
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return c.ws.Close()
}

// CloseCode is the close code the server ended the connection with, or 0.
func CloseCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}
