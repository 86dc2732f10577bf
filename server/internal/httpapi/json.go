package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/parleychat/parley/server/internal/chat"
)

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // a failed write means the client left
}

// maxBodyBytes bounds request bodies: the largest valid one (a 4000-character
// message of escaped characters) is well under it.
const maxBodyBytes = 64 << 10

// decodeJSON reads one JSON object from the request body into dst.
// Unknown fields are ignored so that newer clients keep working.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err := dec.Decode(dst); err != nil {
		var tooBig *http.MaxBytesError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooBig):
			return chat.Errorf(chat.ErrTooLarge, "request body is larger than %d bytes", maxBodyBytes)
		case errors.Is(err, io.EOF):
			return chat.Errorf(chat.ErrInvalid, "request body must be a JSON object")
		case errors.As(err, &typeErr):
			return chat.Errorf(chat.ErrInvalid, "field %q has the wrong type", typeErr.Field)
		default:
			return chat.Errorf(chat.ErrInvalid, "request body is not valid JSON")
		}
	}
	if dec.More() {
		return chat.Errorf(chat.ErrInvalid, "request body must hold one JSON object")
	}
	return nil
}
