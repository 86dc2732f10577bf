package httpapi

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// A connection's reader takes the client's frames off the socket itself
// (RFC 6455, section 5), through inbound.go, which holds a read buffer only
// while it holds bytes (gorilla's reader keeps a buffered reader for
// life); its goroutine waits for the next frame on a stack that only the
// socket's read is on.
//
// Client frames must be masked and must not set the reserved bits (no
// extension is negotiated); control frames (ping, pong, close) are final,
// carry at most 125 bytes and may come between a message's fragments. A
// frame that breaks these rules ends the connection with 1002, and a
// message over the frame limit with 1009, announced before its payload is
// read.

// frameHead is the longest frame header: 2 bytes, an 8-byte extended
// length and the 4-byte mask key.
const frameHead = 2 + 8 + 4

// Opcodes besides the message types gorilla names.
const opContinuation = 0

var errMessageTooBig = errors.New("message too big")

// protocolError is a frame that breaks RFC 6455; the connection ends with
// 1002 and the error's text as reason.
type protocolError string

func (e protocolError) Error() string { return string(e) }

// frameHeader is a frame's header, as read.
type frameHeader struct {
	fin    bool
	opcode int
	length uint64 // as announced: checked against the limits before use
	mask   [4]byte
}

// readHeader reads a frame's header into c.head, in two reads: the fixed
// two bytes, and then the extended length and the mask key they announce.
func (c *conn) readHeader() (frameHeader, error) {
	var h frameHeader
	b := c.head[:]
	if err := c.in.readFull(b[:2]); err != nil {
		return h, err
	}
	h.fin = b[0]&0x80 != 0
	h.opcode = int(b[0] & 0x0F)
	switch {
	case b[0]&0x70 != 0:
		return h, protocolError("reserved bits set")
	case b[1]&0x80 == 0:
		return h, protocolError("client frame not masked")
	}
	extra := 4 // the mask key
	switch b[1] & 0x7F {
	case 126:
		extra += 2
	case 127:
		extra += 8
	}
	rest := b[2 : 2+extra]
	if err := c.in.readFull(rest); err != nil {
		return h, err
	}
	switch n := b[1] & 0x7F; n {
	case 126:
		h.length = uint64(binary.BigEndian.Uint16(rest))
	case 127:
		h.length = binary.BigEndian.Uint64(rest)
		if h.length>>63 != 0 {
			return h, protocolError("frame length out of range") // RFC 6455, section 5.2
		}
	default:
		h.length = uint64(n)
	}
	copy(h.mask[:], rest[extra-4:])
	return h, nil
}

// readMessage reads the client's next message, answering the control
// frames that come before or within it: a ping is answered with a pong by
// the writer, a pong extends the read deadline, and a close ends reading
// with a *websocket.CloseError of the client's code.
func (c *conn) readMessage() (kind int, data []byte, err error) {
	for {
		h, err := c.readHeader()
		if err != nil {
			return 0, nil, err
		}
		if h.opcode >= websocket.CloseMessage {
			if err := c.readControl(h); err != nil {
				return 0, nil, err
			}
			continue
		}
		switch {
		case h.opcode == opContinuation && kind == 0:
			return 0, nil, protocolError("continuation frame without a message")
		case h.opcode != opContinuation && kind != 0:
			return 0, nil, protocolError("new message before the last one ended")
		case h.opcode != opContinuation && h.opcode != websocket.TextMessage && h.opcode != websocket.BinaryMessage:
			return 0, nil, protocolError("unknown opcode")
		case h.opcode != opContinuation:
			kind = h.opcode
		}
		if uint64(len(data))+h.length > uint64(c.s.cfg.MaxFrameBytes) {
			return 0, nil, errMessageTooBig
		}
		if data, err = c.readPayload(data, int(h.length), h.mask); err != nil {
			return 0, nil, err
		}
		if h.fin {
			return kind, data, nil
		}
	}
}

// readPayload appends a frame's payload of n bytes to data, unmasked. It
// grows data as the bytes arrive, a buffer's worth at a time, so that a
// client that announces a large frame and then stalls holds at most a
// buffer's worth more than it sent.
func (c *conn) readPayload(data []byte, n int, mask [4]byte) ([]byte, error) {
	start := len(data)
	for n > 0 {
		step := min(n, inboundSize)
		at := len(data)
		data = append(data, make([]byte, step)...)
		if err := c.in.readFull(data[at:]); err != nil {
			return nil, err
		}
		n -= step
	}
	unmask(mask, data[start:])
	return data, nil
}

// readControl reads and acts on a control frame.
func (c *conn) readControl(h frameHeader) error {
	switch {
	case h.opcode > websocket.PongMessage:
		return protocolError("unknown opcode")
	case !h.fin:
		return protocolError("fragmented control frame")
	case h.length > 125:
		return protocolError("control frame over 125 bytes")
	}
	payload := make([]byte, h.length)
	if err := c.in.readFull(payload); err != nil {
		return err
	}
	unmask(h.mask, payload)
	switch h.opcode {
	case websocket.PingMessage:
		c.pong(payload)
	case websocket.PongMessage:
		c.extendRead()
	default:
		return readClose(payload)
	}
	return nil
}

// readClose is the error that a client's close frame ends reading with.
func readClose(payload []byte) error {
	switch {
	case len(payload) == 0:
		return &websocket.CloseError{Code: websocket.CloseNoStatusReceived}
	case len(payload) == 1:
		return protocolError("close frame of one byte")
	}
	code := int(binary.BigEndian.Uint16(payload))
	reason := payload[2:]
	switch {
	case !validCloseCode(code):
		return protocolError("invalid close code")
	case !utf8.Valid(reason):
		return protocolError("close reason not UTF-8")
	}
	return &websocket.CloseError{Code: code, Text: string(reason)}
}

// validCloseCode reports whether a client may send code (RFC 6455,
// section 7.4): the defined codes that are meant for the wire, and those
// left to libraries and applications.
func validCloseCode(code int) bool {
	switch code {
	case 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014:
		return true
	}
	return code >= 3000 && code <= 4999
}

// unmask XORs b with the mask key, eight bytes at a time where it can.
func unmask(key [4]byte, b []byte) {
	k32 := binary.LittleEndian.Uint32(key[:])
	k64 := uint64(k32) | uint64(k32)<<32
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k64)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= key[i&3]
	}
}
