package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

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

// decodeJSON reads one JSON object from a public request's body into dst.
// Unknown fields are ignored so that newer clients keep working.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	return decodeBody(w, r, dst, bodyRules{maxBytes: maxBodyBytes})
}

// bodyRules say how a request body is read.
type bodyRules struct {
	maxBytes int64
	// strict refuses unknown fields, for operators' requests: a misspelt
	// field there would otherwise leave a fault on until someone noticed.
	strict bool
	// example, when set, shows a client whose body is not a JSON object
	// what one looks like.
	example string
}

// decodeBody reads one JSON object from the request body into dst. Every
// refusal is a chat.ErrInvalid or chat.ErrTooLarge error that says what is
// wrong with the body.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any, rules bodyRules) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, rules.maxBytes))
	if rules.strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(dst); err != nil {
		return bodyError(err, rules)
	}
	if dec.More() {
		return chat.Errorf(chat.ErrInvalid, "request body must hold one JSON object")
	}
	return nil
}

func bodyError(err error, rules bodyRules) error {
	var tooBig *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		return chat.Errorf(chat.ErrTooLarge, "request body is larger than %d bytes", rules.maxBytes)
	case errors.As(err, &typeErr):
		return chat.Errorf(chat.ErrInvalid, "field %q has the wrong type", typeErr.Field)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no type for this error; its text is stable.
		return chat.Errorf(chat.ErrInvalid, "%s", strings.TrimPrefix(err.Error(), "json: "))
	case rules.example != "":
		return chat.Errorf(chat.ErrInvalid, "request body must be a JSON object such as %s", rules.example)
	case errors.Is(err, io.EOF):
		return chat.Errorf(chat.ErrInvalid, "request body must be a JSON object")
	default:
		return chat.Errorf(chat.ErrInvalid, "request body is not valid JSON")
	}
}
