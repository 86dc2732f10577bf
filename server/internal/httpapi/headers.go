package httpapi

import "net/http"

// contentSecurityPolicy lets a page of this server run only its own
// script and style, talk only to its own origin ('self' covers its
// WebSocket too), and be framed by no one. Nothing inline: an injected
// <script> or onerror= attribute would not run even if it reached the DOM.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// securityHeaders sets the browser security headers on every response,
// the API's included: a JSON error opened in a tab is a page too. HSTS is
// left to the TLS terminator (the Ingress), which knows the scheme.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		next.ServeHTTP(w, r)
	})
}

// replicaHeader names the replica that answered a WebSocket upgrade: behind
// a load balancer a client cannot otherwise tell which one serves its
// socket (docs/protocol.md). It is on the 101 alone, which only a signed-in
// user gets, and on no other answer: the id carries the pod's host name,
// which /healthz, a refused upgrade or a 404 would show to anyone.
const replicaHeader = "X-Parley-Replica"
