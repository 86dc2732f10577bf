package httpapi

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/parleychat/parley/server/internal/chat"
)

// FuzzDecodeFrame checks decodeFrame's promises on any input. Its seeds are
// small: the minimizer spends up to a minute on every new input derived from
// a large one, which stalls the search. TestDecodeFrameRefusesBadFrames
// covers the 4000-character limit.
func FuzzDecodeFrame(f *testing.F) {
	for _, seed := range []string{
		`{"type":"join","room":"r"}`,
		`{"type":"join","room":"r","since":7}`,
		`{"type":"join","room":"r","since":-1}`,
		`{"type":"join","room":"r","since":"7"}`,
		`{"type":"leave","room":"r"}`,
		`{"type":"typing","room":"r"}`,
		`{"type":"send","room":"r","client_id":"c1","body":"hi"}`,
		`{"type":"send","room":"r","client_id":"c1","body":""}`,
		`{"type":"send","room":"r","client_id":"","body":"hi"}`,
		`{"type":"send","room":"r","client_id":5,"body":"hi"}`,
		`{"type":"send","room":"r","client_id":"c1","body":"hi","trace":{"id":"x"}}`,
		`{"type":"send","room":"r","client_id":"c1","client_id":null,"body":"\u00e9\ud800"}`,
		`{"TYPE":"Send","Room":"r","Client_ID":"c1","BODY":"hi"}`,
		sendFrame("r", strings.Repeat("é", 65), "hi"),
		`{"type":"shout","room":"r"}`,
		`{"room":"r"}`,
		`[{"type":"join","room":"r"}]`,
		`null`,
		`"join"`,
		`hello`,
		"{\"type\":\"join\",\"room\":\"r\xff\"}",
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ferr := decodeFrame(data)
		if ferr == nil {
			checkAccepted(t, data, got)
			return
		}
		if ferr.code != codeBadRequest && ferr.code != codeTooLarge {
			t.Errorf("refusal of %q: got code %q, want bad_request or too_large", data, ferr.code)
		}
		if ferr.msg == "" {
			t.Errorf("refusal of %q: got an empty message", data)
		}
		// The fields the ref comes from, decoded as decodeFrame decodes them
		// (same field names, letter-case folding and duplicate-key rules).
		var sent struct {
			Type     string `json:"type"`
			ClientID string `json:"client_id"`
		}
		wantRef := ""
		if utf8.Valid(data) && json.Valid(data) {
			json.Unmarshal(data, &sent) // a type error still fills the other fields
			wantRef = sent.Type
			if sent.ClientID != "" {
				wantRef = sent.ClientID
			}
		}
		if ferr.ref != wantRef {
			t.Errorf("refusal of %q: got ref %q, want %q (the client_id, else the type)", data, ferr.ref, wantRef)
		}
	})
}

func checkAccepted(t *testing.T, data []byte, got clientFrame) {
	t.Helper()
	switch got.Type {
	case frameJoin, frameLeave, frameSend, frameTyping:
	default:
		t.Fatalf("accepted %q with unknown type %q", data, got.Type)
	}
	if got.Room == "" {
		t.Errorf("accepted %q with an empty room", data)
	}
	if got.Type == frameJoin && got.Since != nil && *got.Since < 0 {
		t.Errorf("accepted %q with since %d", data, *got.Since)
	}
	if got.Type == frameSend {
		if err := chat.ValidateClientID(got.ClientID); err != nil {
			t.Errorf("accepted %q whose client_id the service refuses: %v", data, err)
		}
		if err := chat.ValidateBody(got.Body); err != nil {
			t.Errorf("accepted %q whose body the service refuses: %v", data, err)
		}
	}
	again, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("marshal %s: %v", describe(got), err)
	}
	back, ferr := decodeFrame(again)
	if ferr != nil {
		t.Fatalf("accepted %q but refused it re-marshalled as %s: %v", data, again, ferr)
	}
	if !reflect.DeepEqual(back, got) {
		t.Errorf("round trip of %q: got %s, want %s", data, describe(back), describe(got))
	}
}
