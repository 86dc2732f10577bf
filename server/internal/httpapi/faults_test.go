package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley/server/internal/faults"
)

// adminToken is the admin token of the tests' admin listeners.
const adminToken = "admin-token-for-tests"

// faultsAdmin is an admin listener with fault injection on, and the
// injector behind it.
type faultsAdmin struct {
	h  http.Handler
	in *faults.Injector
}

func newFaultsAdmin(t *testing.T) *faultsAdmin {
	t.Helper()
	in := faults.New(prometheus.NewRegistry(), nil)
	t.Cleanup(in.Close)
	s := New(nil, nil, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), Config{AdminToken: adminToken, Faults: in})
	return &faultsAdmin{h: s.AdminHandler(), in: in}
}

// response is what a request to the handler got back.
type response struct {
	status int
	header http.Header
	body   string
}

// serve makes a request with the admin token.
func serve(t *testing.T, h http.Handler, method, path, body string) response {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
}

// mustDecode decodes a JSON body or fails the test.
func mustDecode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("decoding %q: %v", r.body, err)
	}
	return v
}

// faultView is a fault as a client of the API reads it.
type faultView struct {
	Name      string  `json:"name"`
	Rate      float64 `json:"rate"`
	Delay     string  `json:"delay"`
	Duration  string  `json:"duration"`
	Until     string  `json:"until"`
	Remaining string  `json:"remaining"`
}

type listView struct {
	Faults []faultView `json:"faults"`
}

type errorJSON struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func TestFaultRoutesSetListAndClearFaults(t *testing.T) {
	t.Parallel()
	f := newFaultsAdmin(t)
	h := f.h

	if got := serve(t, h, http.MethodGet, "/admin/faults", ""); got.status != http.StatusOK || strings.TrimSpace(got.body) != `{"faults":[]}` {
		t.Fatalf("GET before any fault: got %d %s, want 200 {\"faults\":[]}", got.status, got.body)
	}

	put := serve(t, h, http.MethodPut, "/admin/faults/store_latency", `{"rate":0.5,"delay":"200ms","duration":"5m"}`)
	if put.status != http.StatusOK {
		t.Fatalf("PUT: got %d %s, want 200", put.status, put.body)
	}
	if got := put.header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
		t.Errorf("PUT: got Content-Type %q, want application/json", got)
	}
	set := mustDecode[faultView](t, put)
	if set.Name != "store_latency" || set.Rate != 0.5 || set.Delay != "200ms" || set.Duration != "5m0s" || set.Until == "" || set.Remaining == "" {
		t.Errorf("PUT: got %+v, want store_latency at rate 0.5, delay 200ms, duration 5m0s, with until and remaining", set)
	}

	if got := serve(t, h, http.MethodPut, "/admin/faults/send_errors", `{}`); got.status != http.StatusOK {
		t.Fatalf("PUT with defaults: got %d %s, want 200", got.status, got.body)
	} else if fault := mustDecode[faultView](t, got); fault.Rate != 1 || fault.Duration != "" || fault.Until != "" {
		t.Errorf("PUT with defaults: got %+v, want rate 1 and no duration", fault)
	}

	list := mustDecode[listView](t, serve(t, h, http.MethodGet, "/admin/faults", ""))
	if len(list.Faults) != 2 || list.Faults[0].Name != "send_errors" || list.Faults[1].Name != "store_latency" {
		t.Errorf("GET: got %+v, want send_errors and store_latency", list.Faults)
	}
	if got := serve(t, h, http.MethodGet, "/admin/faults/store_latency", ""); got.status != http.StatusOK || mustDecode[faultView](t, got).Delay != "200ms" {
		t.Errorf("GET one: got %d %s, want 200 with the fault", got.status, got.body)
	}

	if got := serve(t, h, http.MethodDelete, "/admin/faults/store_latency", ""); got.status != http.StatusNoContent {
		t.Errorf("DELETE one: got %d %s, want 204", got.status, got.body)
	}
	if got := serve(t, h, http.MethodGet, "/admin/faults/store_latency", ""); got.status != http.StatusNotFound || mustDecode[errorJSON](t, got).Error.Code != "not_found" {
		t.Errorf("GET a cleared fault: got %d %s, want 404 not_found", got.status, got.body)
	}
	if got := serve(t, h, http.MethodDelete, "/admin/faults/store_latency", ""); got.status != http.StatusNoContent {
		t.Errorf("DELETE a fault that is off: got %d %s, want 204", got.status, got.body)
	}

	if got := serve(t, h, http.MethodDelete, "/admin/faults", ""); got.status != http.StatusNoContent {
		t.Errorf("DELETE all: got %d %s, want 204", got.status, got.body)
	}
	if active := f.in.Active(); len(active) != 0 {
		t.Errorf("after DELETE all: got active %+v, want none", active)
	}
}

func TestFaultRoutesRefuseBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{"unknown fault", http.MethodPut, "/admin/faults/disk_full", `{}`, 400, "bad_request", `unknown fault "disk_full"`},
		{"unknown fault on GET", http.MethodGet, "/admin/faults/disk_full", "", 400, "bad_request", `unknown fault "disk_full"`},
		{"unknown fault on DELETE", http.MethodDelete, "/admin/faults/disk_full", "", 400, "bad_request", `unknown fault "disk_full"`},
		{"rate above 1", http.MethodPut, "/admin/faults/send_errors", `{"rate":2}`, 400, "bad_request", "rate must be more than 0 and at most 1, got 2"},
		{"explicit zero rate", http.MethodPut, "/admin/faults/send_errors", `{"rate":0}`, 400, "bad_request", "rate must be more than 0"},
		{"negative delay", http.MethodPut, "/admin/faults/store_latency", `{"delay":"-1s"}`, 400, "bad_request", "delay must not be negative"},
		{"delay missing for store_latency", http.MethodPut, "/admin/faults/store_latency", `{"rate":0.5}`, 400, "bad_request", "store_latency needs a delay"},
		{"delay above the maximum", http.MethodPut, "/admin/faults/slow_fanout", `{"delay":"2m"}`, 400, "bad_request", "delay must be at most 1m0s"},
		{"delay that is not a duration", http.MethodPut, "/admin/faults/slow_fanout", `{"delay":"200"}`, 400, "bad_request", `delay "200" is not a duration`},
		{"delay as a number", http.MethodPut, "/admin/faults/slow_fanout", `{"delay":200}`, 400, "bad_request", `field "delay" has the wrong type`},
		{"negative duration", http.MethodPut, "/admin/faults/send_errors", `{"duration":"-5m"}`, 400, "bad_request", "duration must not be negative"},
		{"misspelt field", http.MethodPut, "/admin/faults/send_errors", `{"durration":"5m"}`, 400, "bad_request", `unknown field "durration"`},
		{"bad JSON", http.MethodPut, "/admin/faults/send_errors", `{"rate":`, 400, "bad_request", "request body must be a JSON object"},
		{"empty body", http.MethodPut, "/admin/faults/send_errors", "", 400, "bad_request", "request body must be a JSON object"},
		{"two objects", http.MethodPut, "/admin/faults/send_errors", `{}{}`, 400, "bad_request", "one JSON object"},
		{"huge body", http.MethodPut, "/admin/faults/send_errors", `{"delay":"` + strings.Repeat("1", 5000) + `"}`, 413, "too_large", "larger than 4096 bytes"},
		{"path below a fault", http.MethodGet, "/admin/faults/send_errors/more", "", 404, "not_found", "no fault endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFaultsAdmin(t)
			got := serve(t, f.h, tt.method, tt.path, tt.body)
			if got.status != tt.wantStatus {
				t.Fatalf("got status %d (%s), want %d", got.status, got.body, tt.wantStatus)
			}
			e := mustDecode[errorJSON](t, got)
			if e.Error.Code != tt.wantCode {
				t.Errorf("got code %q, want %q", e.Error.Code, tt.wantCode)
			}
			if !strings.Contains(e.Error.Message, tt.wantMsg) {
				t.Errorf("got message %q, want it to contain %q", e.Error.Message, tt.wantMsg)
			}
			if active := f.in.Active(); len(active) != 0 {
				t.Errorf("got active %+v after a refusal, want none", active)
			}
		})
	}
}

func TestFaultRoutesRefuseOtherMethodsWith405(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, path, wantAllow string
	}{
		{http.MethodPost, "/admin/faults", "GET, HEAD, DELETE"},
		{http.MethodPut, "/admin/faults", "GET, HEAD, DELETE"},
		{http.MethodPost, "/admin/faults/send_errors", "GET, HEAD, PUT, DELETE"},
		{http.MethodPatch, "/admin/faults/send_errors", "GET, HEAD, PUT, DELETE"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			f := newFaultsAdmin(t)
			got := serve(t, f.h, tt.method, tt.path, `{}`)
			if got.status != http.StatusMethodNotAllowed {
				t.Fatalf("got status %d (%s), want 405", got.status, got.body)
			}
			if allow := got.header.Get("Allow"); allow != tt.wantAllow {
				t.Errorf("got Allow %q, want %q", allow, tt.wantAllow)
			}
			if code := mustDecode[errorJSON](t, got).Error.Code; code != "bad_request" {
				t.Errorf("got code %q, want bad_request", code)
			}
		})
	}
}

func TestFaultRoutesAfterCloseAnswerUnavailable(t *testing.T) {
	t.Parallel()
	f := newFaultsAdmin(t)
	f.in.Close()
	got := serve(t, f.h, http.MethodPut, "/admin/faults/"+faults.SendErrors, `{}`)
	if got.status != http.StatusServiceUnavailable || mustDecode[errorJSON](t, got).Error.Code != "unavailable" {
		t.Errorf("got %d %s, want 503 unavailable", got.status, got.body)
	}
}
