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

// replicaHeader names the replica that answered: behind a load balancer a
// client cannot otherwise tell which one it reached (docs/protocol.md).
const replicaHeader = "X-Parley-Replica"

// replicaHeaders sets replicaHeader on every response; an empty replica
// sets nothing.
func replicaHeaders(replica string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if replica == "" {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(replicaHeader, replica)
			next.ServeHTTP(w, r)
		})
	}
}
