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
