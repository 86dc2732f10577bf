// Package webui is Parley's web client: static files embedded in the
// server (no build step, nothing fetched from elsewhere at run time) that
// speak only the public protocol. The page is index.html; its scripts
// and app.css are served under /assets/.
package webui

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
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
	etags := etagsOf(files)
	assets := http.StripPrefix("/assets/", http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/assets/")
		if r.URL.Path == "/" {
			name = "index.html"
		}
		tag, ok := etags[name]
		if !ok || r.URL.Path == "/assets/index.html" {
			http.NotFound(w, r) // no second copy of the page, no directory listings
			return
		}
		// Files change with every release: browsers revalidate, and the
		// ETag (a hash of the content) makes that a 304.
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", tag)
		if name == "index.html" {
			http.ServeFileFS(w, r, files, name)
			return
		}
		assets.ServeHTTP(w, r)
	})
}

// etagsOf hashes every embedded file once, at start.
func etagsOf(files fs.FS) map[string]string {
	tags := map[string]string{}
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(files, path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		tags[path] = `"` + hex.EncodeToString(sum[:12]) + `"`
		return nil
	})
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return tags
}
