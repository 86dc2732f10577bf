package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientAddrBelievesOnlyTrustedProxies(t *testing.T) {
	t.Parallel()
	s := &Server{cfg: Config{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
	}}}
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"a direct client is its peer", "203.0.113.7:5000", nil, "203.0.113.7"},
		{"a direct client cannot forge its address", "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"behind a trusted proxy, the address it saw", "10.1.2.3:80", []string{"198.51.100.1"}, "198.51.100.1"},
		{"entries left of the proxy's are ignored", "10.1.2.3:80", []string{"192.0.2.66, 198.51.100.1"}, "198.51.100.1"},
		{"a chain of trusted proxies is walked", "10.1.2.3:80", []string{"198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"several header lines are one list", "10.1.2.3:80", []string{"192.0.2.66", "198.51.100.1"}, "198.51.100.1"},
		{"a trusted proxy without the header is the client", "10.1.2.3:80", nil, "10.1.2.3"},
		{"garbage stops at the last proxy", "10.1.2.3:80", []string{"198.51.100.1, not-an-ip"}, "10.1.2.3"},
		{"IPv6 peers", "[::1]:80", []string{"2001:db8::1"}, "2001:db8::1"},
		{"IPv4-mapped addresses are IPv4", "[::ffff:203.0.113.7]:5000", nil, "203.0.113.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := s.clientAddr(r); got.String() != tt.want {
				t.Errorf("got %v, want %s", got, tt.want)
			}
		})
	}
}

// IPv6 addresses count by their /64: a host picks any address in its
// block, and must not get a bucket for each.
func TestAddrKeyCountsIPv6ByItsSlash64(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		same bool
	}{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"192.0.2.1", "192.0.2.2", false},
		{"192.0.2.1", "192.0.2.1", true},
	}
	for _, tt := range tests {
		a, b := addrKey(netip.MustParseAddr(tt.a)), addrKey(netip.MustParseAddr(tt.b))
		if (a == b) != tt.same {
			t.Errorf("addrKey(%s) = %q, addrKey(%s) = %q: got same=%v, want %v", tt.a, a, tt.b, b, a == b, tt.same)
		}
	}
}
