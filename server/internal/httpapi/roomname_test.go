package httpapi

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/parleychat/parley/server/internal/memstore"
)

// TestCreateRoomRefusesBlankNames posts room names that show nothing, the
// way a hostile client makes a room nobody can see the name of, and names
// that carry the same characters inside visible text, which stay valid.
func TestCreateRoomRefusesBlankNames(t *testing.T) {
	t.Parallel()
	api := startAPI(t, memstore.New(memstore.Options{}), Config{})
	token := api.mustRegister("alice")

	tests := []struct {
		name       string
		roomName   string
		wantStatus int
	}{
		{"only zero-width spaces", "\u200b\u200b", http.StatusBadRequest},
		{"only a Hangul filler", "\u3164", http.StatusBadRequest},
		{"only ideographic spaces", "\u3000\u3000", http.StatusBadRequest},
		{"a zero-width joiner between letters", "a\u200db", http.StatusCreated},
		{"a combining accent on a letter", "cafe\u0301", http.StatusCreated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := api.post(token, "/api/v1/rooms", createRoomRequest{Name: tt.roomName})
			if status != tt.wantStatus {
				t.Fatalf("POST /api/v1/rooms %+q: got %d %s, want %d", tt.roomName, status, body, tt.wantStatus)
			}
			if tt.wantStatus != http.StatusBadRequest {
				return
			}
			var got errorJSON
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("error body %s: %v", body, err)
			}
			if got.Error.Code != "bad_request" || got.Error.Message != "room name must not be blank" {
				t.Errorf("got %q %q, want \"bad_request\" \"room name must not be blank\"", got.Error.Code, got.Error.Message)
			}
		})
	}
}
