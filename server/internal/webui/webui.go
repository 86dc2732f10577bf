// Package webui is Parley's web client: static files embedded in the
// server (no build step, nothing fetched from elsewhere at run time) that
// speak only the public protocol. The page is index.html; app.js and
// app.css are served under /assets/.
package webui

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// Handler serves the client: the page at "/", its files at "/assets/...".
// Anything else is not found. The caller adds the security headers every
// response of the server carries (see httpapi).
func Handler() http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	assets := http.StripPrefix("/assets/", http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/":
			// The page changes with every release; revalidate it.
			w.Header().Set("Cache-Control", "no-cache")
			http.ServeFileFS(w, r, files, "index.html")
		case r.URL.Path == "/assets/index.html" || strings.HasSuffix(r.URL.Path, "/"):
			http.NotFound(w, r) // no second copy of the page, no directory listings
		default:
			w.Header().Set("Cache-Control", "no-cache")
			assets.ServeHTTP(w, r)
		}
	})
}
