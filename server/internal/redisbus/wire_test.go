package redisbus

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

// everyKind returns one event of each kind in room, with every field the
// kind uses set, as a replica named origin publishes them.
func everyKind(room, origin string) []struct {
	name string
	ev   chat.Event
} {
	alice := chat.User{ID: "u-alice", Username: "alice"}
	bob := chat.User{ID: "u-bob", Username: "bob"}
	return []struct {
		name string
		ev   chat.Event
	}{
		{"message", chat.Event{Kind: chat.EventMessage, Room: room, Origin: origin, Message: chat.Message{
			ID: "m-1", Room: room, Seq: 42, ClientID: "c-7", User: alice, Body: "héllo, \"world\" <3\n",
			TS: time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC),
		}}},
		{"presence online", chat.Event{Kind: chat.EventPresence, Room: room, Origin: origin, User: bob, Online: true}},
		{"presence offline", chat.Event{Kind: chat.EventPresence, Room: room, Origin: origin, User: bob}},
		{"typing", chat.Event{Kind: chat.EventTyping, Room: room, Origin: origin, User: alice}},
		{"roster", chat.Event{Kind: chat.EventRoster, Room: room, Origin: origin, Users: []chat.User{alice, bob}}},
		{"empty roster", chat.Event{Kind: chat.EventRoster, Room: room, Origin: origin}},
		{"hello", chat.Event{Kind: chat.EventHello, Room: room, Origin: origin}},
	}
}

func TestEncodeDecodeKeepsEveryField(t *testing.T) {
	t.Parallel()
	for _, tt := range everyKind("r-1", "replica-a") {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			payload, err := encode(tt.ev, "")
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := decode("r-1", payload)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.ev) {
				t.Errorf("got %+v, want %+v", got, tt.ev)
			}
		})
	}
}

func TestDecodeGivesTimesInUTC(t *testing.T) {
	t.Parallel()
	ts := time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("CET", 3600))
	payload, err := encode(chat.Event{Kind: chat.EventMessage, Room: "r", Origin: "a", Message: chat.Message{Room: "r", Seq: 1, TS: ts}}, "")
	if err != nil {
		t.Fatal(err)
	}
	ev, _, err := decode("r", payload)
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.Message.TS; !got.Equal(ts) || got.Location() != time.UTC {
		t.Errorf("got %v, want %v in UTC", got, ts.UTC())
	}
}

func TestEncodeRefusesWhatItCannotCarry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ev   chat.Event
	}{
		{"unknown kind", chat.Event{Kind: 99, Origin: "a"}},
		{"no kind", chat.Event{Origin: "a"}},
		{"year beyond 9999", chat.Event{Kind: chat.EventMessage, Origin: "a", Message: chat.Message{TS: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if payload, err := encode(tt.ev, ""); err == nil {
				t.Errorf("got %s, want an error", payload)
			}
		})
	}
}

func TestDecodeRejectsMalformedPayloads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, payload string
	}{
		{"not json", "hello"},
		{"empty", ""},
		{"json but not an object", `[1,2]`},
		{"truncated", `{"v":1,"o":"a","k":"hel`},
		{"no version", `{"o":"a","k":"hello"}`},
		{"future version", `{"v":2,"o":"a","k":"hello"}`},
		{"no origin", `{"v":1,"k":"hello"}`},
		{"unknown kind", `{"v":1,"o":"a","k":"shout"}`},
		{"message without its message", `{"v":1,"o":"a","k":"message"}`},
		{"presence without a user", `{"v":1,"o":"a","k":"presence","on":true}`},
		{"typing without a user", `{"v":1,"o":"a","k":"typing"}`},
		{"field of the wrong type", `{"v":1,"o":"a","k":"message","m":{"seq":"one"}}`},
		{"bad timestamp", `{"v":1,"o":"a","k":"message","m":{"ts":"yesterday"}}`},
		{"message of another room", `{"v":1,"o":"a","k":"message","m":{"room":"other","seq":1,"ts":"2025-01-01T00:00:00Z"}}`},
		{"message without a seq", `{"v":1,"o":"a","k":"message","m":{"room":"r","ts":"2025-01-01T00:00:00Z"}}`},
		{"message with a negative seq", `{"v":1,"o":"a","k":"message","m":{"room":"r","seq":-4,"ts":"2025-01-01T00:00:00Z"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, _, err := decode("r", []byte(tt.payload))
			if !errors.Is(err, errMalformed) {
				t.Errorf("got %+v, %v; want an error wrapping %v", ev, err, errMalformed)
			}
		})
	}
}

func TestDecodeIgnoresFieldsItDoesNotKnow(t *testing.T) {
	t.Parallel()
	// A newer replica of the same wire version may add fields.
	got, _, err := decode("r", []byte(`{"v":1,"o":"a","k":"hello","trace":"abc"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := (chat.Event{Kind: chat.EventHello, Room: "r", Origin: "a"}); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
