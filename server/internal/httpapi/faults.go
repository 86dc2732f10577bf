package httpapi

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/faults"
)

// The operators' fault API, on the admin listener (see routes.go):
//
//	GET    /admin/faults         200 {"faults":[...]} the faults that are on
//	DELETE /admin/faults         204 switches every fault off
//	GET    /admin/faults/{name}  200 the fault, or 404 when it is off
//	PUT    /admin/faults/{name}  200 the fault as set; body {"rate":0.5,"delay":"200ms","duration":"5m"}, every field optional
//	DELETE /admin/faults/{name}  204 switches the fault off
//
// An unknown fault or invalid input is 400 bad_request, a body over 4 KiB
// 413 too_large, and a Set after the injector closed 503 unavailable.

// maxFaultBodyBytes bounds a PUT body; a valid one is a few dozen bytes.
const maxFaultBodyBytes = 4 << 10

// faultJSON is a fault as the API shows it. Durations are Go duration
// strings ("200ms"), which people read and type more easily than
// nanoseconds.
type faultJSON struct {
	Name      string    `json:"name"`
	Rate      float64   `json:"rate"`
	Delay     string    `json:"delay,omitempty"`
	Duration  string    `json:"duration,omitempty"`
	Until     time.Time `json:"until,omitzero"`
	Remaining string    `json:"remaining,omitempty"`
}

func toFault(f faults.Fault) faultJSON {
	out := faultJSON{Name: f.Name, Rate: f.Rate, Until: f.Until}
	if f.Delay > 0 {
		out.Delay = f.Delay.String()
	}
	if f.Duration > 0 {
		out.Duration = f.Duration.String()
		out.Remaining = f.Remaining.String()
	}
	return out
}

type faultsResponse struct {
	Faults []faultJSON `json:"faults"`
}

func (s *Server) listFaults() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// [] rather than null, for scripts that iterate.
		resp := faultsResponse{Faults: []faultJSON{}}
		for _, f := range s.cfg.Faults.Active() {
			resp.Faults = append(resp.Faults, toFault(f))
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

func (s *Server) clearFaults() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.cfg.Faults.ClearAll()
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) getFault() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := chi.URLParam(r, "name")
		f, on, err := s.cfg.Faults.Fault(name)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if !on {
			s.writeError(w, r, chat.Errorf(chat.ErrNotFound, "%s is off", name))
			return
		}
		writeJSON(w, http.StatusOK, toFault(f))
	}
}

func (s *Server) clearFault() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.cfg.Faults.Clear(chi.URLParam(r, "name")); err != nil {
			s.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// setFaultRequest is a PUT body. Rate is a pointer so that an explicit 0 is
// refused instead of taking the default; durations are strings like "200ms".
type setFaultRequest struct {
	Rate     *float64 `json:"rate"`
	Delay    string   `json:"delay"`
	Duration string   `json:"duration"`
}

func (s *Server) setFault() http.HandlerFunc {
	rules := bodyRules{maxBytes: maxFaultBodyBytes, strict: true, example: `{"rate":0.5,"delay":"200ms","duration":"5m"}`}
	return func(w http.ResponseWriter, r *http.Request) {
		var req setFaultRequest
		if err := decodeBody(w, r, &req, rules); err != nil {
			s.writeError(w, r, err)
			return
		}
		f, err := req.fault(chi.URLParam(r, "name"))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		set, err := s.cfg.Faults.Set(f)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, toFault(set))
	}
}

// fault reads the request into a Fault for the injector to validate.
func (req setFaultRequest) fault(name string) (faults.Fault, error) {
	f := faults.Fault{Name: name}
	if req.Rate != nil {
		if err := faults.CheckRate(*req.Rate); err != nil {
			return faults.Fault{}, err
		}
		f.Rate = *req.Rate
	}
	var err error
	if f.Delay, err = parseDuration("delay", req.Delay); err != nil {
		return faults.Fault{}, err
	}
	if f.Duration, err = parseDuration("duration", req.Duration); err != nil {
		return faults.Fault{}, err
	}
	return f, nil
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
