package httpapi

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/server/internal/memstore"
)

// maskedFrame is a frame as a client puts it on the wire: masked, with
// the header the flags ask for. long forces the 8-byte length.
func maskedFrame(fin bool, opcode int, payload []byte, long bool) []byte {
	b0 := byte(opcode)
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case long || n > 0xFFFF:
		b = binary.BigEndian.AppendUint64(append(b, 0x80|127), uint64(n))
	case n >= 126:
		b = binary.BigEndian.AppendUint16(append(b, 0x80|126), uint16(n))
	default:
		b = append(b, 0x80|byte(n))
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b = append(b, key[:]...)
	for i, p := range payload {
		b = append(b, p^key[i&3])
	}
	return b
}

func closeFrame(code int, reason string) []byte {
	return maskedFrame(true, websocket.CloseMessage,
		append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...), false)
}

// Frames that break RFC 6455 end the connection with 1002 and a reason
// that says what was wrong.
func TestFramesThatBreakTheProtocolAreClosedWith1002(t *testing.T) {
	t.Parallel()
	api := startAPI(t, memstore.New(memstore.Options{}), Config{})
	token := api.mustRegister("alice")
	text := []byte(`{"type":"typing","room":"x"}`)
	unmasked := maskedFrame(true, websocket.TextMessage, text, false)
	unmasked[1] &^= 0x80
	unmasked = append(unmasked[:2], text...) // no key, payload in the clear
	for _, tc := range []struct {
		name, reason string
		wire         []byte
	}{
		{"unmasked", "client frame not masked", unmasked},
		{"reserved bit", "reserved bits set", func() []byte {
			f := maskedFrame(true, websocket.TextMessage, text, false)
			f[0] |= 0x40
			return f
		}()},
		{"unknown data opcode", "unknown opcode", maskedFrame(true, 3, nil, false)},
		{"unknown control opcode", "unknown opcode", maskedFrame(true, 11, nil, false)},
		{"fragmented ping", "fragmented control frame", maskedFrame(false, websocket.PingMessage, nil, false)},
		{"long ping", "control frame over 125 bytes", maskedFrame(true, websocket.PingMessage, make([]byte, 126), false)},
		{"lone continuation", "continuation frame without a message", maskedFrame(true, 0, text, false)},
		{"message within a message", "new message before the last one ended",
			append(maskedFrame(false, websocket.TextMessage, text[:5], false), maskedFrame(true, websocket.TextMessage, text, false)...)},
		{"close of one byte", "close frame of one byte", maskedFrame(true, websocket.CloseMessage, []byte{3}, false)},
		{"close code 1005", "invalid close code", closeFrame(websocket.CloseNoStatusReceived, "")},
		{"close code 2999", "invalid close code", closeFrame(2999, "")},
		{"close reason not UTF-8", "close reason not UTF-8", closeFrame(websocket.CloseNormalClosure, "\xff")},
	} {
		c := api.mustDialRaw(token)
		if _, err := c.ws.NetConn().Write(tc.wire); err != nil {
			t.Fatalf("%s: write: %v", tc.name, err)
		}
		_, err := c.read()
		ce, ok := errors.AsType[*websocket.CloseError](err)
		if !ok || ce.Code != websocket.CloseProtocolError || ce.Text != tc.reason {
			t.Errorf("%s: got %v, want close 1002 %q", tc.name, err, tc.reason)
		}
	}
}

// A message may come in fragments, with control frames between them and
// any length encoding: it is read whole, and a ping among its fragments is
// answered.
func TestAFragmentedMessageIsReadWhole(t *testing.T) {
	t.Parallel()
	api := startAPI(t, memstore.New(memstore.Options{}), Config{})
	room := api.mustCreateRoom("general")
	c := api.mustDialRaw(api.mustRegister("alice"))
	pong := make(chan string, 1)
	c.ws.SetPongHandler(func(data string) error { pong <- data; return nil })

	body := string(bytes.Repeat([]byte("é"), 100)) // 200 bytes: a 2-byte length
	join := []byte(`{"type":"join","room":"` + room + `"}`)
	send := []byte(`{"type":"send","room":"` + room + `","client_id":"c1","body":"` + body + `"}`)
	var wire []byte
	wire = append(wire, maskedFrame(true, websocket.TextMessage, join, true)...)
	wire = append(wire, maskedFrame(false, websocket.TextMessage, send[:7], false)...)
	wire = append(wire, maskedFrame(true, websocket.PingMessage, []byte("are you there"), false)...)
	wire = append(wire, maskedFrame(false, 0, send[7:150], false)...)
	wire = append(wire, maskedFrame(true, 0, send[150:], false)...)
	if _, err := c.ws.NetConn().Write(wire); err != nil {
		t.Fatal(err)
	}
	// The sender's own message and its ack come in either order.
	got := map[string]int{}
	for range 3 {
		f, err := c.read()
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		if f.Type == "message" && f.Body != body {
			t.Errorf("got body %q, want %q", f.Body, body)
		}
		got[f.Type]++
	}
	if got["joined"] != 1 || got["ack"] != 1 || got["message"] != 1 {
		t.Errorf("got frames %v, want joined, ack and message", got)
	}
	select {
	case got := <-pong:
		if got != "are you there" {
			t.Errorf("got pong %q, want the ping's payload", got)
		}
	case <-time.After(waitFor):
		t.Error("the ping between the fragments was not answered")
	}
}

// A client's close is answered with its own code; an empty one with an
// empty one.
func TestAClientsCloseIsAnsweredWithItsCode(t *testing.T) {
	t.Parallel()
	api := startAPI(t, memstore.New(memstore.Options{}), Config{})
	token := api.mustRegister("alice")
	for _, tc := range []struct {
		wire []byte
		want int
	}{
		{closeFrame(4000, "bye"), 4000},
		{closeFrame(websocket.CloseNormalClosure, ""), websocket.CloseNormalClosure},
		{maskedFrame(true, websocket.CloseMessage, nil, false), websocket.CloseNoStatusReceived},
	} {
		c := api.mustDialRaw(token)
		if _, err := c.ws.NetConn().Write(tc.wire); err != nil {
			t.Fatal(err)
		}
		if _, err := c.read(); closeCodeOf(err) != tc.want {
			t.Errorf("got %v, want close %d", err, tc.want)
		}
	}
}

func TestUnmaskMatchesTheRFC(t *testing.T) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	for n := range 40 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		got := bytes.Clone(b)
		unmask(key, got)
		for i := range b {
			if want := b[i] ^ key[i%4]; got[i] != want {
				t.Fatalf("length %d, byte %d: got %#x, want %#x", n, i, got[i], want)
			}
		}
	}
}

// A client that sends its first frame with the upgrade request, before the
// 101 comes back, has it read: the bytes net/http read past the request
// are not lost.
func TestAFrameSentWithTheUpgradeRequestIsRead(t *testing.T) {
	t.Parallel()
	api := startAPI(t, memstore.New(memstore.Options{}), Config{})
	room := api.mustCreateRoom("general")
	token := api.mustRegister("alice")
	nc, err := net.Dial("tcp", strings.TrimPrefix(api.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	request := "GET /ws HTTP/1.1\r\nHost: " + strings.TrimPrefix(api.base, "http://") +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer " + token + "\r\n\r\n"
	join := maskedFrame(true, websocket.TextMessage, []byte(`{"type":"join","room":"`+room+`"}`), false)
	if _, err := nc.Write(append([]byte(request), join...)); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(waitFor))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("got %v, %v; want 101", resp, err)
	}
	head := make([]byte, 2)
	if _, err := io.ReadFull(br, head); err != nil {
		t.Fatal(err)
	}
	n := int(head[1] & 0x7f)
	if n == 126 {
		ext := make([]byte, 2)
		io.ReadFull(br, ext)
		n = int(binary.BigEndian.Uint16(ext))
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(payload, []byte(`{"type":"joined"`)) {
		t.Errorf("got frame %q (opcode %d), want the joined frame", payload, head[0]&0x0f)
	}
}

// A message longer than a read buffer is read in several goes, whole.
func TestAMessageLongerThanAReadBufferIsReadWhole(t *testing.T) {
	t.Parallel()
	api := startAPI(t, memstore.New(memstore.Options{}), Config{})
	room := api.mustCreateRoom("general")
	c := api.mustDial(api.mustRegister("alice"))
	c.mustJoin(room)
	body := strings.Repeat("é", 4000) // 8,000 bytes, 4,000 characters: the longest body
	c.send(sendMsg(room, "long", body))
	if got := c.expect("message"); got.Body != body {
		t.Errorf("got a body of %d bytes, want the %d sent", len(got.Body), len(body))
	}
}

// Lengths are checked before anything is read or allocated: one with the
// top bit set breaks the RFC, and one beyond the limit is too big.
func TestHugeFrameLengthsAreRefusedUnread(t *testing.T) {
	t.Parallel()
	api := startAPI(t, memstore.New(memstore.Options{}), Config{})
	token := api.mustRegister("alice")
	for _, tc := range []struct {
		length uint64
		code   int
	}{
		{1 << 63, websocket.CloseProtocolError},
		{1<<63 - 1, websocket.CloseMessageTooBig},
		{1 << 40, websocket.CloseMessageTooBig},
	} {
		c := api.mustDialRaw(token)
		wire := binary.BigEndian.AppendUint64([]byte{0x81, 0x80 | 127}, tc.length)
		if _, err := c.ws.NetConn().Write(append(wire, 1, 2, 3, 4)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.read(); closeCodeOf(err) != tc.code {
			t.Errorf("length %d: got %v, want close %d", tc.length, err, tc.code)
		}
	}
}
