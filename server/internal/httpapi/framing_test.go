package httpapi

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/server/internal/memstore"
)

// A frame over the limit gets one close frame, 1009, and nothing after it.
func TestAnOversizedFrameGetsOneCloseFrame(t *testing.T) {
	t.Parallel()
	api := startAPI(t, memstore.New(memstore.Options{}), Config{MaxFrameBytes: 1024})
	ws, _, err := api.dial(api.mustRegister("big"))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("x"), 4096)); err != nil {
		t.Fatalf("write: %v", err)
	}
	// Read the socket itself, past gorilla, which would stop at the first
	// close: every frame the server sent until it closed the connection.
	nc := ws.NetConn()
	nc.SetReadDeadline(time.Now().Add(waitFor))
	raw, err := io.ReadAll(nc)
	if err != nil {
		t.Fatalf("reading the socket: %v (after %d bytes)", err, len(raw))
	}
	var closes []int
	for len(raw) >= 2 {
		opcode, n, head := raw[0]&0x0f, int(raw[1]&0x7f), 2
		switch n {
		case 126:
			n, head = int(binary.BigEndian.Uint16(raw[2:])), 4
		case 127:
			n, head = int(binary.BigEndian.Uint64(raw[2:])), 10
		}
		payload := raw[head : head+n]
		raw = raw[head+n:]
		if opcode == websocket.CloseMessage {
			closes = append(closes, int(binary.BigEndian.Uint16(payload)))
		}
	}
	if len(closes) != 1 || closes[0] != websocket.CloseMessageTooBig {
		t.Errorf("got close frames %v, want one, 1009", closes)
	}
}
