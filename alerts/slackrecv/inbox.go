package main

import (
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"sync"
	"time"
)

// message is one post, as Slack's incoming webhooks take it: the fields
// Alertmanager sends, and the raw body for anything else. Channel is the
// channel the hook is bound to, never the payload's: a Slack incoming
// webhook posts only to the channel it was created for.
type message struct {
	Received    time.Time       `json:"received"`
	Hook        string          `json:"hook"`
	Channel     string          `json:"channel"`
	Username    string          `json:"username,omitempty"`
	Text        string          `json:"text,omitempty"`
	Attachments []attachment    `json:"attachments,omitempty"`
	Raw         json.RawMessage `json:"raw"`
}

type attachment struct {
	Color     string `json:"color,omitempty"`
	Title     string `json:"title,omitempty"`
	TitleLink string `json:"title_link,omitempty"`
	Text      string `json:"text,omitempty"`
	Fallback  string `json:"fallback,omitempty"`
}

// maxBody bounds a post: Slack itself refuses much smaller ones, and a
// grouped notification of many alerts stays well under it.
const maxBody = 1 << 20

// inbox keeps the newest posts, at most keep of them, for the hooks it
// serves: hook id -> the channel it posts to, as Slack binds each
// incoming webhook to one channel when it is created.
type inbox struct {
	keep  int
	hooks map[string]string
	mu    sync.Mutex
	msgs  []message // oldest first
}

func newInbox(keep int, hooks map[string]string) *inbox { return &inbox{keep: keep, hooks: hooks} }

func (in *inbox) add(m message) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.msgs = append(in.msgs, m)
	if over := len(in.msgs) - in.keep; over > 0 {
		in.msgs = append([]message(nil), in.msgs[over:]...)
	}
}

// newest returns the kept posts, newest first.
func (in *inbox) newest() []message {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]message, len(in.msgs))
	for i, m := range in.msgs {
		out[len(in.msgs)-1-i] = m
	}
	return out
}

func (in *inbox) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hooks/{hook...}", in.post)
	mux.HandleFunc("GET /messages", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"messages": in.newest()})
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = page.Execute(w, in.newest())
	})
	return mux
}

// post takes a webhook call. Slack answers "ok" in plain text, and so does
// this stand-in; a hook it does not serve, and a body that is not a JSON
// object, are refused as Slack refuses them (404 no_service for a webhook
// that does not exist or was removed, 400 invalid_payload, 400 no_text).
// The payload's channel, if any, is ignored: the message goes to the
// hook's channel.
func (in *inbox) post(w http.ResponseWriter, r *http.Request) {
	channel, ok := in.hooks[r.PathValue("hook")]
	if !ok {
		http.Error(w, "no_service", http.StatusNotFound)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	var raw json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "request_too_large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	var m message
	if err := json.Unmarshal(raw, &m); err != nil {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	m.Received, m.Hook, m.Channel, m.Raw = time.Now().UTC(), r.PathValue("hook"), channel, raw
	if m.Text == "" && len(m.Attachments) == 0 {
		http.Error(w, "no_text", http.StatusBadRequest)
		return
	}
	in.add(m)
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok"))
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Slack stand-in</title>
<meta http-equiv="refresh" content="5">
<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}
.msg{border-left:6px solid #ccc;padding:.3em .8em;margin:1em 0}
.danger{border-color:#d00}.warning{border-color:#e90}.good{border-color:#2a2}
pre{white-space:pre-wrap;margin:.3em 0}small{color:#666}</style></head>
<body><h1>Slack stand-in</h1><p>{{len .}} message(s), newest first. JSON at <a href="/messages">/messages</a>.</p>
{{range .}}<div class="msg"><small>{{.Received.Format "2006-01-02 15:04:05Z"}} · hook {{.Hook}}{{with .Channel}} · {{.}}{{end}}</small>
{{with .Text}}<pre>{{.}}</pre>{{end}}
{{range .Attachments}}<div class="msg {{.Color}}">{{if .TitleLink}}<a href="{{.TitleLink}}"><b>{{.Title}}</b></a>{{else}}<b>{{.Title}}</b>{{end}}<pre>{{.Text}}</pre></div>{{end}}
</div>{{end}}</body></html>
`))
