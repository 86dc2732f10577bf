package faults

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

// maxBodyBytes bounds a PUT body; a valid one is a few dozen bytes.
const maxBodyBytes = 4 << 10

// Handler serves the operators' API. It matches full paths, so mount it at
// /admin/faults without stripping the prefix:
//
//	GET    /admin/faults         200 {"faults":[...]} the faults that are on
//	DELETE /admin/faults         204 switches every fault off
//	GET    /admin/faults/{name}  200 the fault, or 404 when it is off
//	PUT    /admin/faults/{name}  200 the fault as set; body {"rate":0.5,"delay":"200ms","duration":"5m"}, every field optional
//	DELETE /admin/faults/{name}  204 switches the fault off
//
// Errors use the API's envelope, {"error":{"code":...,"message":...}}: 400
// bad_request for invalid input or an unknown fault, 413 too_large for a
// body over 4 KiB, and bad_request with status 405 for a method the path
// does not take.
func (in *Injector) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/faults", in.serveList)
	mux.HandleFunc("DELETE /admin/faults", in.serveClearAll)
	mux.HandleFunc("/admin/faults", methodNotAllowed("GET, HEAD, DELETE"))
	mux.HandleFunc("GET /admin/faults/{name}", in.serveGet)
	mux.HandleFunc("PUT /admin/faults/{name}", in.servePut)
	mux.HandleFunc("DELETE /admin/faults/{name}", in.serveClear)
	mux.HandleFunc("/admin/faults/{name}", methodNotAllowed("GET, HEAD, PUT, DELETE"))
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no fault endpoint has this path")
	})
	return mux
}

type listResponse struct {
	Faults []Fault `json:"faults"`
}

func (in *Injector) serveList(w http.ResponseWriter, _ *http.Request) {
	faults := in.Active()
	if faults == nil {
		faults = []Fault{} // [] rather than null, for scripts that iterate
	}
	writeJSON(w, http.StatusOK, listResponse{Faults: faults})
}

func (in *Injector) serveClearAll(w http.ResponseWriter, _ *http.Request) {
	in.ClearAll()
	w.WriteHeader(http.StatusNoContent)
}

func (in *Injector) serveGet(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	k, err := kindOf(name)
	if err != nil {
		writeSetError(w, err)
		return
	}
	f, ok := in.get(k)
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", name+" is off")
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func (in *Injector) serveClear(w http.ResponseWriter, r *http.Request) {
	if err := in.Clear(r.PathValue("name")); err != nil {
		writeSetError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// setRequest is a PUT body. Rate is a pointer so that an explicit 0 is
// refused instead of taking the default; durations are strings like "200ms".
type setRequest struct {
	Rate     *float64 `json:"rate"`
	Delay    string   `json:"delay"`
	Duration string   `json:"duration"`
}

func (in *Injector) servePut(w http.ResponseWriter, r *http.Request) {
	f, err := decodeSet(w, r)
	if err != nil {
		writeSetError(w, err)
		return
	}
	set, err := in.Set(f)
	if err != nil {
		writeSetError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, set)
}

// decodeSet reads a PUT body into a Fault for Set to validate.
func decodeSet(w http.ResponseWriter, r *http.Request) (Fault, error) {
	var req setRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	// Unlike the public API, unknown fields are refused: a misspelt
	// "duration" would otherwise leave a fault on until someone notices.
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Fault{}, decodeError(err)
	}
	if dec.More() {
		return Fault{}, chat.Errorf(chat.ErrInvalid, "request body must hold one JSON object")
	}
	f := Fault{Name: r.PathValue("name")}
	if req.Rate != nil {
		if err := validRate(*req.Rate); err != nil {
			return Fault{}, err
		}
		f.Rate = *req.Rate
	}
	var err error
	if f.Delay, err = parseDuration("delay", req.Delay); err != nil {
		return Fault{}, err
	}
	if f.Duration, err = parseDuration("duration", req.Duration); err != nil {
		return Fault{}, err
	}
	return f, nil
}

func decodeError(err error) error {
	var tooBig *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		return chat.Errorf(chat.ErrTooLarge, "request body is larger than %d bytes", maxBodyBytes)
	case errors.As(err, &typeErr):
		return chat.Errorf(chat.ErrInvalid, "field %q has the wrong type", typeErr.Field)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no type for this error; its text is stable.
		return chat.Errorf(chat.ErrInvalid, "%s", strings.TrimPrefix(err.Error(), "json: "))
	default:
		return chat.Errorf(chat.ErrInvalid, "request body must be a JSON object such as {\"rate\":0.5,\"delay\":\"200ms\",\"duration\":\"5m\"}")
	}
}

// parseDuration reads an optional duration field; empty means zero.
func parseDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, chat.Errorf(chat.ErrInvalid, "%s %q is not a duration such as \"200ms\" or \"5m\"", field, s)
	}
	return d, nil
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		// The protocol answers a wrong method with bad_request and 405.
		writeError(w, http.StatusMethodNotAllowed, "bad_request", fmt.Sprintf("%s is not allowed here; use %s", r.Method, allow))
	}
}

// writeSetError answers a refusal from Set, Clear or decoding.
func writeSetError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, chat.ErrInvalid):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	case errors.Is(err, chat.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", err.Error())
		return
	}
	writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var body errorBody
	body.Error.Code, body.Error.Message = code, msg
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // a failed write means the client left
}
