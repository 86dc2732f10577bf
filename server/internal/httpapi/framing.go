package httpapi

import (
	"encoding/binary"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/server/internal/chat"
)

// A connection's writer puts frames on the wire itself, in batches: every
// frame waiting in its queue, and a ping or a pong due, go out in one
// write, rather than one write per frame through gorilla's message writer.
// On loopback and in the kernel, a write costs more than anything else a
// delivery does, and a sender's ack and its own message come out together,
// as does a replay. The batch is copied into one buffer rather than
// written with writev, which would leave each socket holding an iovec
// array for life. gorilla does only the handshake; the reader
// (clientframes.go) hands the pongs and the close it wants to the writer,
// the only one to write on an open connection.
//
// Server frames are unmasked, unfragmented and uncompressed (RFC 6455,
// section 5.2; compression is not negotiated).

// maxBatch bounds the frames of one write. A ping due waits for the write
// in hand, and to a client reading slowly a write of many frames takes
// long: small batches keep pings (and so the client's pongs, which keep
// its connection open) flowing, and a long queue is still written in a
// sixteenth of the writes.
const maxBatch = 16

// wireBatch is what one write puts on the wire, with the writer's scratch
// space (the writers share a pool of them).
type wireBatch struct {
	ping   bool
	pong   []byte // the payload of a pong due, or nil
	frames []chat.Frame
	close  []byte // the payload of the close frame, last of all, or nil

	wire []byte // the batch as written
}

func (b *wireBatch) empty() bool {
	return !b.ping && b.pong == nil && len(b.frames) == 0 && b.close == nil
}

// reset forgets the batch but keeps its scratch space; the frames' bytes
// and contexts are let go.
func (b *wireBatch) reset() {
	clear(b.frames)
	b.ping, b.pong, b.frames, b.close = false, nil, b.frames[:0], nil
}

// encode lays the batch out as it goes on the wire: control frames first (a
// ping or a pong is small, and answers the client's liveness check sooner),
// then the frames, and the close frame last.
func (b *wireBatch) encode() []byte {
	w := b.wire[:0]
	if b.ping {
		w = appendFrameHeader(w, websocket.PingMessage, 0)
	}
	if b.pong != nil {
		w = append(appendFrameHeader(w, websocket.PongMessage, len(b.pong)), b.pong...)
	}
	for _, f := range b.frames {
		w = append(appendFrameHeader(w, websocket.TextMessage, len(f.Data)), f.Data...)
	}
	if b.close != nil {
		w = append(appendFrameHeader(w, websocket.CloseMessage, len(b.close)), b.close...)
	}
	if cap(w) <= maxKeptWire {
		b.wire = w
	}
	return w
}

// maxKeptWire bounds the buffer a batch keeps for the next: one big batch
// must not make every pooled batch hold its size.
const maxKeptWire = 64 << 10

// appendFrameHeader appends the header of a final, unmasked frame of the
// given opcode and payload length.
func appendFrameHeader(b []byte, opcode int, n int) []byte {
	b = append(b, 0x80|byte(opcode))
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
}

// closePayload is the payload of a close frame with code and reason;
// 1005 (no status) is sent as an empty payload, as the RFC requires.
func closePayload(code int, reason string) []byte {
	if code == websocket.CloseNoStatusReceived {
		return []byte{}
	}
	// A control frame's payload is at most 125 bytes, 2 of them the code.
	if len(reason) > 123 {
		reason = reason[:123]
	}
	return websocket.FormatCloseMessage(code, reason)
}
