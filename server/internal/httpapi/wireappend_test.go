package httpapi

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

// hardText is text that encoding/json escapes or rewrites, one case each.
var hardText = []string{
	"", "plain", `quote " and \ backslash`, "\b\f\n\r\t", "\x00\x01\x1f\x7f",
	"<script>&amp;</script>", "line\u2028para\u2029end", "bad \xff byte", "cut \xe2\x82",
	"é ü 中文 🙂", "\ufffd", "\xed\xa0\x80 surrogate",
}

// The hand-written frames are encoding/json's bytes, on the text it
// escapes and on arbitrary bytes.
func TestHandWrittenFramesAreEncodingJSONs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	texts := append([]string(nil), hardText...)
	for range 2000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			// Mostly the bytes that matter: controls, the escaped ASCII,
			// and the lead and continuation bytes of UTF-8.
			b[i] = []byte{0x00, 0x08, 0x1f, '"', '\\', '<', '>', '&', 'a', ' ', 0x7f, 0x80, 0xbf, 0xc3, 0xe2, 0xf0, 0xff}[rng.IntN(17)] |
				byte(rng.IntN(2)*rng.IntN(256)) // and now and then any byte
		}
		texts = append(texts, string(b))
	}
	ts := time.Date(2026, 12, 8, 1, 2, 3, 4, time.FixedZone("east", 3600))
	for i, s := range texts {
		m := chat.Message{
			ID: "06h5" + s, Room: s, Seq: int64(i) - 3, ClientID: s + "c",
			User: chat.User{ID: s, Username: "u" + s, Deleted: i%2 == 0}, Body: s, TS: ts,
		}
		want := encode(func() messageJSON { f := toMessage(m); f.Type = "message"; return f }())
		if got := appendMessageFrame(nil, m); !bytes.Equal(got, want) {
			t.Fatalf("message frame of %q:\n got %s\nwant %s", s, got, want)
		}
		want = encode(ackFrame{Type: "ack", Room: m.Room, ClientID: m.ClientID, ID: m.ID, Seq: m.Seq, TS: formatTime(m.TS)})
		if got := appendAckFrame(nil, m); !bytes.Equal(got, want) {
			t.Fatalf("ack frame of %q:\n got %s\nwant %s", s, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range hardText {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := appendJSONString(nil, s), encode(s); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}
