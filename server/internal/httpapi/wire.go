package httpapi

import (
	"encoding/json"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

// The JSON shapes of the public protocol (docs/protocol.md). Types used by a
// single handler live next to it; these are shared by REST and WebSocket.

// timeFormat is RFC 3339 with all nine fractional digits, so times sort as
// strings and every client sees the same width.
const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

type userJSON struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Deleted  bool   `json:"deleted,omitempty"` // extension: the account has been deleted
}

func toUser(u chat.User) userJSON {
	return userJSON{ID: u.ID, Username: u.Username, Deleted: u.Deleted}
}

type roomJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
	LastSeq   int64  `json:"last_seq"`
}

func toRoom(r chat.Room) roomJSON {
	return roomJSON{ID: r.ID, Name: r.Name, CreatedAt: formatTime(r.CreatedAt), LastSeq: r.LastSeq}
}

// messageJSON is a message in REST bodies and, with Type "message", the
// WebSocket frame that delivers it.
type messageJSON struct {
	Type     string   `json:"type,omitempty"`
	ID       string   `json:"id"`
	Room     string   `json:"room"`
	Seq      int64    `json:"seq"`
	ClientID string   `json:"client_id"`
	User     userJSON `json:"user"`
	Body     string   `json:"body"`
	TS       string   `json:"ts"`
}

func toMessage(m chat.Message) messageJSON {
	return messageJSON{
		ID: m.ID, Room: m.Room, Seq: m.Seq, ClientID: m.ClientID,
		User: toUser(m.User), Body: m.Body, TS: formatTime(m.TS),
	}
}

// Server-to-client frames other than messages.
type (
	joinedFrame struct {
		Type    string     `json:"type"`
		Room    string     `json:"room"`
		LastSeq int64      `json:"last_seq"`
		Members []userJSON `json:"members"`           // extension: who is present now
		Replica string     `json:"replica,omitempty"` // extension: the replica serving the connection
	}
	leftFrame struct {
		Type string `json:"type"`
		Room string `json:"room"`
	}
	// ackFrame is the shape appendAckFrame writes by hand (wireappend.go).
	ackFrame struct {
		Type     string `json:"type"`
		Room     string `json:"room"`
		ClientID string `json:"client_id"`
		ID       string `json:"id"`
		Seq      int64  `json:"seq"`
		TS       string `json:"ts"`
	}
	presenceFrame struct {
		Type   string   `json:"type"`
		Room   string   `json:"room"`
		User   userJSON `json:"user"`
		Status string   `json:"status"`
	}
	typingFrame struct {
		Type string   `json:"type"`
		Room string   `json:"room"`
		User userJSON `json:"user"`
	}
	errorFrame struct {
		Type    string `json:"type"`
		Code    string `json:"code"`
		Message string `json:"message"`
		Ref     string `json:"ref"`
		// RetryAfter is, on rate_limited, the seconds after which the
		// same frame would be accepted (an extension).
		RetryAfter float64 `json:"retry_after,omitempty"`
	}
)

// encode marshals a frame. The frame types above hold only strings, numbers
// and slices of them, which cannot fail to marshal.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("httpapi: unencodable frame: " + err.Error())
	}
	return b
}

// wsCodec encodes the frames the hub fans out; replica goes into joined
// frames.
type wsCodec struct{ replica string }

func (wsCodec) Message(m chat.Message) []byte {
	return appendMessageFrame(make([]byte, 0, frameSizeOf(m)), m)
}

func (c wsCodec) Joined(room string, lastSeq int64, members []chat.User) []byte {
	f := joinedFrame{Type: "joined", Room: room, LastSeq: lastSeq, Members: make([]userJSON, len(members)), Replica: c.replica}
	for i, u := range members {
		f.Members[i] = toUser(u)
	}
	return encode(f)
}

func (wsCodec) Presence(room string, u chat.User, online bool) []byte {
	status := "offline"
	if online {
		status = "online"
	}
	return encode(presenceFrame{Type: "presence", Room: room, User: toUser(u), Status: status})
}

func (wsCodec) Typing(room string, u chat.User) []byte {
	return encode(typingFrame{Type: "typing", Room: room, User: toUser(u)})
}

// Codec returns the encoder the hub needs to speak this protocol, for the
// replica named replica (Config.Replica: the same id in both).
func Codec(replica string) chat.Codec { return wsCodec{replica: replica} }
