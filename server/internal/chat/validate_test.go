package chat_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/parleychat/parley/server/internal/chat"
)

func TestValidation(t *testing.T) {
	tests := []struct {
		name     string
		validate func(string) error
		input    string
		want     error
	}{
		{"username ok", chat.ValidateUsername, "al.ice_-9", nil},
		{"username too short", chat.ValidateUsername, "al", chat.ErrInvalid},
		{"username too long", chat.ValidateUsername, strings.Repeat("a", 33), chat.ErrInvalid},
		{"username non-ASCII", chat.ValidateUsername, "alicé", chat.ErrInvalid},
		{"room name of 64 characters", chat.ValidateRoomName, strings.Repeat("é", 64), nil},
		{"room name of 65 characters", chat.ValidateRoomName, strings.Repeat("é", 65), chat.ErrInvalid},
		{"room name of spaces", chat.ValidateRoomName, "   ", chat.ErrInvalid},
		{"room name with a newline", chat.ValidateRoomName, "a\nb", chat.ErrInvalid},
		{"room name with spaces inside", chat.ValidateRoomName, " general chat ", nil},
		{"room name with a joiner inside visible text", chat.ValidateRoomName, "a\u200db", nil},
		{"room name of a family emoji joined by ZWJ", chat.ValidateRoomName, "\U0001F468\u200d\U0001F469\u200d\U0001F467", nil},
		{"room name with a combining accent", chat.ValidateRoomName, "cafe\u0301", nil},
		{"room name with a variation selector after a base", chat.ValidateRoomName, "\u2764\ufe0f", nil},
		{"room name with a spacing combining mark", chat.ValidateRoomName, "\u0915\u093e", nil},
		{"client id empty", chat.ValidateClientID, "", chat.ErrInvalid},
		{"client id of 64 characters", chat.ValidateClientID, strings.Repeat("界", 64), nil},
		{"client id of 65 characters", chat.ValidateClientID, strings.Repeat("界", 65), chat.ErrInvalid},
		{"client id with NUL", chat.ValidateClientID, "a\x00b", chat.ErrInvalid},
		{"body with newlines", chat.ValidateBody, "line one\nline two", nil},
		{"body empty", chat.ValidateBody, "", chat.ErrInvalid},
		{"body with NUL", chat.ValidateBody, "a\x00b", chat.ErrInvalid},
		{"body invalid UTF-8", chat.ValidateBody, "\xff", chat.ErrInvalid},
		{"body of 4000 characters", chat.ValidateBody, strings.Repeat("界", 4000), nil},
		{"body of 4001 characters", chat.ValidateBody, strings.Repeat("界", 4001), chat.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.validate(tt.input)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestBlankRoomNamesAreRefused covers each kind of character that shows
// nothing by itself: a name made only of them is refused as blank, however
// they are mixed.
func TestBlankRoomNamesAreRefused(t *testing.T) {
	tests := []struct {
		name  string
		input string
	}{
		{"empty", ""},
		{"ASCII spaces", "   "},
		{"zero-width spaces", "\u200b\u200b"},
		{"a zero-width joiner", "\u200d"},
		{"a zero-width non-joiner", "\u200c"},
		{"a word joiner", "\u2060"},
		{"a byte order mark", "\ufeff"},
		{"a soft hyphen", "\u00ad"},
		{"bidirectional marks and overrides", "\u200e\u200f\u202e\u2066"},
		{"a Mongolian vowel separator", "\u180e"},
		{"tag characters", "\U000E0041\U000E007F"},
		{"a Hangul filler", "\u3164"},
		{"a halfwidth Hangul filler", "\uffa0"},
		{"Hangul choseong and jungseong fillers", "\u115f\u1160"},
		{"a combining grapheme joiner", "\u034f"},
		{"variation selectors", "\ufe0f\U000E0100"},
		{"combining marks with no base", "\u0301\u0308"},
		{"an enclosing mark with no base", "\u20dd"},
		{"no-break spaces", "\u00a0\u202f"},
		{"an em space", "\u2003"},
		{"an ideographic space", "\u3000"},
		{"line and paragraph separators", "\u2028\u2029"},
		{"an Ogham space mark", "\u1680"},
		{"a braille blank", "\u2800\u2800"},
		{"a mix of every kind", " \u200b\u3164\ufe0f\u0301\u3000\u2800"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := chat.ValidateRoomName(tt.input)
			if !errors.Is(err, chat.ErrInvalid) {
				t.Fatalf("ValidateRoomName(%+q): got %v, want %v", tt.input, err, chat.ErrInvalid)
			}
			if got, want := err.Error(), "room name must not be blank"; !strings.Contains(got, want) {
				t.Errorf("ValidateRoomName(%+q): got %q, want it to say %q", tt.input, got, want)
			}
		})
	}
}
