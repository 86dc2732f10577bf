package httpapi

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/internal/testenv"
	"github.com/parleychat/parley/server/internal/memstore"
)

// A client past its address's cap of sockets is refused with 429 and a
// Retry-After, counted by limit, for sockets and REST alike; the probes
// still answer; and a socket that closes gives its slot back.
func TestConnsPerAddrPastTheCapAreRefused(t *testing.T) {
	t.Parallel()
	api := startAPI(t, memstore.New(memstore.Options{}), Config{MaxConnsPerAddr: 3})
	token := api.mustRegister("crowd")
	from := clientAt(api, "127.0.0.1", "")
	open := from.dialN(t, token, 3)

	resp := from.mustBeRefused(t, token)
	if got := resp.Header.Get("Retry-After"); got != "5" {
		t.Errorf("got Retry-After %q, want 5", got)
	}
	if got := api.metric("parley_rate_limited_total", "limit", limitConnsPerAddr); got != 1 {
		t.Errorf("got parley_rate_limited_total{limit=%q} %v, want 1", limitConnsPerAddr, got)
	}
	for path, want := range map[string]int{
		"/api/v1/rooms": http.StatusTooManyRequests,
		"/healthz":      http.StatusOK,
		"/readyz":       http.StatusOK,
	} {
		if got := from.get(t, token, path); got != want {
			t.Errorf("GET %s at the cap: got %d, want %d", path, got, want)
		}
	}

	open[0].ws.Close()
	open[0].waitEnded()
	waitSlotFreed(t, from, token)
}

// The cap is per address: another address, a real peer or one a trusted
// proxy names in X-Forwarded-For, has its own; X-Forwarded-For from a peer
// that is not a trusted proxy is ignored, so a client cannot spread itself
// over made-up addresses.
func TestConnsPerAddrCountEachClientApart(t *testing.T) {
	t.Parallel()
	loopback := netip.MustParsePrefix("127.0.0.1/32")
	tests := []struct {
		name           string
		trusted        []netip.Prefix
		first, second  *testClient
		secondRefused  bool
		firstForwarded string
	}{
		{name: "another peer address", first: &testClient{local: "127.0.0.1"}, second: &testClient{local: "127.0.0.2"}},
		{
			name: "another forwarded address behind a trusted proxy", trusted: []netip.Prefix{loopback},
			first: &testClient{local: "127.0.0.1", forwardedFor: "198.51.100.7"}, second: &testClient{local: "127.0.0.1", forwardedFor: "198.51.100.8"},
		},
		{
			name: "the trusted proxy's own requests", trusted: []netip.Prefix{loopback},
			first: &testClient{local: "127.0.0.1", forwardedFor: "198.51.100.7"}, second: &testClient{local: "127.0.0.1"},
		},
		{
			name:  "a forged forwarded address from an untrusted peer",
			first: &testClient{local: "127.0.0.1", forwardedFor: "198.51.100.7"}, second: &testClient{local: "127.0.0.1", forwardedFor: "198.51.100.8"},
			secondRefused: true,
		},
		{
			name: "a forged entry left of the trusted proxy's", trusted: []netip.Prefix{loopback},
			first: &testClient{local: "127.0.0.1", forwardedFor: "198.51.100.7"}, second: &testClient{local: "127.0.0.1", forwardedFor: "203.0.113.1, 198.51.100.7"},
			secondRefused: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := startAPI(t, memstore.New(memstore.Options{}), Config{MaxConnsPerAddr: 2, TrustedProxies: tt.trusted})
			token := api.mustRegister("crowd")
			first, second := clientAt(api, tt.first.local, tt.first.forwardedFor), clientAt(api, tt.second.local, tt.second.forwardedFor)
			first.dialN(t, token, 2)
			first.mustBeRefused(t, token)
			if tt.secondRefused {
				second.mustBeRefused(t, token)
				return
			}
			second.dialN(t, token, 2)
		})
	}
}

// testClient reaches a test API from the loopback address local, through a
// proxy that says the request is for forwardedFor when that is set.
type testClient struct {
	api          *testAPI
	local        string
	forwardedFor string
}

func clientAt(api *testAPI, local, forwardedFor string) *testClient {
	return &testClient{api: api, local: local, forwardedFor: forwardedFor}
}

func (c *testClient) dialer() *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(c.local)}, Timeout: waitFor}
}

func (c *testClient) header(token string) http.Header {
	h := http.Header{"Authorization": {"Bearer " + token}}
	if c.forwardedFor != "" {
		h.Set("X-Forwarded-For", c.forwardedFor)
	}
	return h
}

func (c *testClient) dial(token string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: waitFor, NetDialContext: c.dialer().DialContext}
	return d.Dial(c.api.wsURL(), c.header(token))
}

// dialN opens n sockets that the test's cleanup closes.
func (c *testClient) dialN(t *testing.T, token string, n int) []*wsClient {
	t.Helper()
	var open []*wsClient
	for i := range n {
		ws, resp, err := c.dial(token)
		if err != nil {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Fatalf("socket %d of %d from %s (forwarded for %q): %v (status %d), want it open", i+1, n, c.local, c.forwardedFor, err, status)
		}
		open = append(open, newWSClient(t, ws))
	}
	return open
}

// mustBeRefused dials once more and wants a 429.
func (c *testClient) mustBeRefused(t *testing.T, token string) *http.Response {
	t.Helper()
	ws, resp, err := c.dial(token)
	if err == nil {
		ws.Close()
		t.Fatalf("from %s (forwarded for %q): got a socket past the cap, want 429", c.local, c.forwardedFor)
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("from %s (forwarded for %q): got %v (%v), want 429", c.local, c.forwardedFor, resp, err)
	}
	return resp
}

func (c *testClient) get(t *testing.T, token, path string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.api.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = c.header(token)
	client := &http.Client{Transport: &http.Transport{DialContext: c.dialer().DialContext}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitSlotFreed waits until from may open a socket again: the handler of a
// closed socket returns, and gives its slot back, just after the client
// sees the close.
func waitSlotFreed(t *testing.T, from *testClient, token string) {
	t.Helper()
	testenv.Eventually(t, "a slot freed by a closed socket", func() bool {
		ws, _, err := from.dial(token)
		if err != nil {
			return false
		}
		newWSClient(t, ws)
		return true
	})
}
