package httpapi

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeFrameRefusesBadFrames(t *testing.T) {
	t.Parallel()
	long65 := strings.Repeat("é", 65)
	tests := []struct {
		name     string
		frame    string
		wantCode string
		wantRef  string
	}{
		{"invalid UTF-8", "{\"type\":\"join\",\"room\":\"r\xff\"}", codeBadRequest, ""},
		{"not JSON", `hello`, codeBadRequest, ""},
		{"truncated JSON", `{"type":"join","room":`, codeBadRequest, ""},
		{"a JSON array is not an object", `[{"type":"join","room":"r"}]`, codeBadRequest, ""},
		{"a JSON string is not an object", `"join"`, codeBadRequest, ""},
		{"a JSON number is not an object", `42`, codeBadRequest, ""},
		{"null", `null`, codeBadRequest, ""},
		{"an empty object has no type", `{}`, codeBadRequest, ""},
		{"missing type", `{"room":"r"}`, codeBadRequest, ""},
		{"empty type", `{"type":"","room":"r"}`, codeBadRequest, ""},
		{"type that is not a string", `{"type":7,"room":"r"}`, codeBadRequest, ""},
		{"unknown type echoes the type", `{"type":"shout","room":"r"}`, codeBadRequest, "shout"},
		{"unknown type echoes the client_id when present", `{"type":"shout","room":"r","client_id":"c1"}`, codeBadRequest, "c1"},
		{"join without room", `{"type":"join"}`, codeBadRequest, "join"},
		{"leave without room", `{"type":"leave"}`, codeBadRequest, "leave"},
		{"typing without room", `{"type":"typing"}`, codeBadRequest, "typing"},
		{"send without room", `{"type":"send","client_id":"c1","body":"hi"}`, codeBadRequest, "c1"},
		{"empty room", `{"type":"join","room":""}`, codeBadRequest, "join"},
		{"room that is not a string", `{"type":"join","room":5}`, codeBadRequest, "join"},
		{"negative since", `{"type":"join","room":"r","since":-1}`, codeBadRequest, "join"},
		{"since as a string", `{"type":"join","room":"r","since":"5"}`, codeBadRequest, "join"},
		{"fractional since", `{"type":"join","room":"r","since":1.5}`, codeBadRequest, "join"},
		{"since as a boolean", `{"type":"join","room":"r","since":true}`, codeBadRequest, "join"},
		{"send without client_id", `{"type":"send","room":"r","body":"hi"}`, codeBadRequest, "send"},
		{"send with empty client_id", `{"type":"send","room":"r","client_id":"","body":"hi"}`, codeBadRequest, "send"},
		{"client_id that is not a string", `{"type":"send","room":"r","client_id":5,"body":"hi"}`, codeBadRequest, "send"},
		{"client_id of 65 characters", sendFrame("r", long65, "hi"), codeBadRequest, long65},
		{"send without body", `{"type":"send","room":"r","client_id":"c1"}`, codeBadRequest, "c1"},
		{"send with empty body", sendFrame("r", "c1", ""), codeBadRequest, "c1"},
		{"body that is not a string", `{"type":"send","room":"r","client_id":"c1","body":1}`, codeBadRequest, "c1"},
		{"body of 4001 characters is too large", sendFrame("r", "c1", strings.Repeat("界", 4001)), codeTooLarge, "c1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ferr := decodeFrame([]byte(tt.frame))
			if ferr == nil {
				t.Fatalf("decodeFrame accepted %s as %s, want a refusal", abbrev(tt.frame), describe(f))
			}
			if ferr.code != tt.wantCode {
				t.Errorf("got code %q, want %q", ferr.code, tt.wantCode)
			}
			if ferr.ref != tt.wantRef {
				t.Errorf("got ref %q, want %q", abbrev(ferr.ref), abbrev(tt.wantRef))
			}
			if ferr.msg == "" {
				t.Error("got an empty message, want one that says what is wrong")
			}
		})
	}
}

func TestDecodeFrameAcceptsValidFrames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		frame string
		want  clientFrame
	}{
		{"minimal join", `{"type":"join","room":"r"}`, clientFrame{Type: "join", Room: "r"}},
		{"join with since 0", `{"type":"join","room":"r","since":0}`, clientFrame{Type: "join", Room: "r", Since: ptr[int64](0)}},
		{"join with since", `{"type":"join","room":"r","since":42}`, clientFrame{Type: "join", Room: "r", Since: ptr[int64](42)}},
		{"join with null since", `{"type":"join","room":"r","since":null}`, clientFrame{Type: "join", Room: "r"}},
		{"minimal leave", `{"type":"leave","room":"r"}`, clientFrame{Type: "leave", Room: "r"}},
		{"minimal typing", `{"type":"typing","room":"r"}`, clientFrame{Type: "typing", Room: "r"}},
		{"minimal send", sendFrame("r", "c1", "hi"), clientFrame{Type: "send", Room: "r", ClientID: "c1", Body: "hi"}},
		{
			"client_id of 64 two-byte characters",
			sendFrame("r", strings.Repeat("é", 64), "hi"),
			clientFrame{Type: "send", Room: "r", ClientID: strings.Repeat("é", 64), Body: "hi"},
		},
		{
			"body of 4000 three-byte characters",
			sendFrame("r", "c1", strings.Repeat("界", 4000)),
			clientFrame{Type: "send", Room: "r", ClientID: "c1", Body: strings.Repeat("界", 4000)},
		},
		{
			"unknown fields are ignored",
			`{"type":"send","room":"r","client_id":"c1","body":"hi","meta":{"id":"abc","sampled":true}}`,
			clientFrame{Type: "send", Room: "r", ClientID: "c1", Body: "hi"},
		},
		{
			"a send carries its client's traceparent",
			`{"type":"send","room":"r","client_id":"c1","body":"hi","trace":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`,
			clientFrame{Type: "send", Room: "r", ClientID: "c1", Body: "hi", Trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ferr := decodeFrame([]byte(tt.frame))
			if ferr != nil {
				t.Fatalf("decodeFrame refused %s: %v", abbrev(tt.frame), ferr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %s, want %s", describe(got), describe(tt.want))
			}
		})
	}
}

// sendFrame builds a send frame; its fields must need no JSON escaping.
func sendFrame(room, clientID, body string) string {
	return fmt.Sprintf(`{"type":"send","room":%q,"client_id":%q,"body":%q}`, room, clientID, body)
}

// describe prints a frame with its since, which %+v shows as an address.
func describe(f clientFrame) string {
	since := "nil"
	if f.Since != nil {
		since = fmt.Sprint(*f.Since)
	}
	return fmt.Sprintf("{type:%q room:%q since:%s client_id:%q body:%q}", f.Type, f.Room, since, abbrev(f.ClientID), abbrev(f.Body))
}

// abbrev keeps failure messages about 4000-character bodies readable.
func abbrev(s string) string {
	if r := []rune(s); len(r) > 40 {
		return fmt.Sprintf("%s…(%d characters)", string(r[:20]), len(r))
	}
	return s
}

func ptr[T any](v T) *T { return &v }
