package httpapi

import (
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/parleychat/parley/server/internal/chat"
)

// Client frame types.
const (
	frameJoin   = "join"
	frameLeave  = "leave"
	frameSend   = "send"
	frameTyping = "typing"
)

// frameTypes lists the client frame types, plus "invalid" for frames that did
// not decode: the values of the frames-in metric's label.
var frameTypes = []string{frameJoin, frameLeave, frameSend, frameTyping, "invalid"}

// clientFrame is any frame a client sends. Fields a type does not use are
// ignored, and so are unknown fields, so newer clients keep working.
type clientFrame struct {
	Type     string `json:"type"`
	Room     string `json:"room"`
	Since    *int64 `json:"since"`
	ClientID string `json:"client_id"`
	Body     string `json:"body"`
	// Trace is an optional W3C traceparent on any frame (an extension): the
	// client's span, such as the load generator's, becomes the parent of
	// the frame's span. An invalid one is ignored, as W3C Trace Context
	// asks.
	Trace string `json:"trace"`
}

// frameError is a refused frame: the error frame to answer it with.
type frameError struct {
	code string
	msg  string
	ref  string
}

func (e *frameError) Error() string { return e.code + ": " + e.msg }

// decodeFrame parses and validates one text frame. Every refusal carries the
// ref the error frame echoes: the client_id if there is one, else the type.
func decodeFrame(data []byte) (clientFrame, *frameError) {
	var f clientFrame
	if !utf8.Valid(data) {
		return f, &frameError{codeBadRequest, "frame is not valid UTF-8", ""}
	}
	if err := json.Unmarshal(data, &f); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return f, &frameError{codeBadRequest, "field " + typeErr.Field + " has the wrong type", refOf(f)}
		}
		return f, &frameError{codeBadRequest, "frame is not a JSON object", ""}
	}
	ref := refOf(f)
	bad := func(msg string) (clientFrame, *frameError) {
		return f, &frameError{codeBadRequest, msg, ref}
	}
	switch f.Type {
	case "":
		return bad("frame has no type")
	case frameJoin, frameLeave, frameSend, frameTyping:
	default:
		return bad("unknown frame type")
	}
	if f.Room == "" {
		return bad("room is required")
	}
	switch f.Type {
	case frameJoin:
		if f.Since != nil && *f.Since < 0 {
			return bad("since must not be negative")
		}
	case frameSend:
		if err := chat.ValidateClientID(f.ClientID); err != nil {
			return bad(err.Error())
		}
		if err := chat.ValidateBody(f.Body); err != nil {
			code := codeBadRequest
			if errors.Is(err, chat.ErrTooLarge) {
				code = codeTooLarge
			}
			return f, &frameError{code, err.Error(), ref}
		}
	}
	return f, nil
}

func refOf(f clientFrame) string {
	if f.ClientID != "" {
		return f.ClientID
	}
	return f.Type
}
