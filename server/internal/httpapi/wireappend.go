package httpapi

import (
	"strconv"
	"unicode/utf8"

	"github.com/parleychat/parley/server/internal/chat"
)

// The two frames every message costs, its "message" frame (encoded once
// and fanned out) and its sender's ack, are appended by hand: through
// reflection encoding/json spends more on them than the rest of a send's
// handling. The bytes are exactly encoding/json's for messageJSON and
// ackFrame, field for field (wireappend_test.go compares the two on
// arbitrary text), so that a client sees no difference.

// frameSizeOf is room for m's frame, unless its text needs escaping: the
// field names, the seq and the time take under 200 bytes.
func frameSizeOf(m chat.Message) int {
	return 200 + len(m.ID) + len(m.Room) + len(m.ClientID) + len(m.User.ID) + len(m.User.Username) + len(m.Body)
}

// appendMessageFrame appends m's "message" frame.
func appendMessageFrame(b []byte, m chat.Message) []byte {
	b = append(b, `{"type":"message","id":`...)
	b = appendJSONString(b, m.ID)
	b = append(b, `,"room":`...)
	b = appendJSONString(b, m.Room)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, m.Seq, 10)
	b = append(b, `,"client_id":`...)
	b = appendJSONString(b, m.ClientID)
	b = append(b, `,"user":{"id":`...)
	b = appendJSONString(b, m.User.ID)
	b = append(b, `,"username":`...)
	b = appendJSONString(b, m.User.Username)
	if m.User.Deleted {
		b = append(b, `,"deleted":true`...)
	}
	b = append(b, `},"body":`...)
	b = appendJSONString(b, m.Body)
	b = append(b, `,"ts":"`...)
	b = m.TS.UTC().AppendFormat(b, timeFormat)
	return append(b, `"}`...)
}

// appendAckFrame appends the ack of m to its sender.
func appendAckFrame(b []byte, m chat.Message) []byte {
	b = append(b, `{"type":"ack","room":`...)
	b = appendJSONString(b, m.Room)
	b = append(b, `,"client_id":`...)
	b = appendJSONString(b, m.ClientID)
	b = append(b, `,"id":`...)
	b = appendJSONString(b, m.ID)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, m.Seq, 10)
	b = append(b, `,"ts":"`...)
	b = m.TS.UTC().AppendFormat(b, timeFormat)
	return append(b, `"}`...)
}

// appendJSONString appends s quoted as encoding/json quotes it: control
// characters, quotes and backslashes escaped, <, > and & too (its HTML
// safety), U+2028 and U+2029 escaped for JavaScript, and every byte that
// is not UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
