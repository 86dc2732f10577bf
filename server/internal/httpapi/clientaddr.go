package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is the address a request comes from, the key of the
// per-address limits. It is the socket's peer, unless the peer is one of
// Config.TrustedProxies (the load balancer, the cluster's ingress): then it
// is the right-most X-Forwarded-For entry that is not a trusted proxy
// itself. Entries further left were written by whoever sent the request and
// can be forged; the right-most ones were appended by proxies we run.
// Without this rule every user behind a proxy would share its address.
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	peer := remoteAddr(r)
	if !s.trusted(peer) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		entries := strings.Split(hops[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			addr, err := netip.ParseAddr(strings.TrimSpace(entries[j]))
			if err != nil {
				// A proxy we trust wrote garbage, or the chain is broken:
				// the last proxy that spoke is the best we know.
				return peer
			}
			addr = addr.Unmap()
			if !s.trusted(addr) {
				return addr
			}
			peer = addr
		}
	}
	return peer
}

// addrKey is the key a client address counts under in every per-address
// limit. An IPv6 host is routinely given a whole /64 and may use any
// address in it (it would otherwise have 2^64 keys), so its /64 is one
// client; an IPv4 address is one client by itself.
func addrKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// remoteAddr is the request's socket peer. net/http sets RemoteAddr to
// "ip:port"; a test or a unix socket may leave something else, which counts
// as one unspecified address.
func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.IPv6Unspecified()
	}
	return addr.Unmap()
}
