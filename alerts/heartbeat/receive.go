package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"
)

// maxBody bounds a post: a Watchdog notification is a few kilobytes.
const maxBody = 1 << 20

// watchdogPost is the part of Alertmanager's webhook payload (version 4)
// the receiver reads.
type watchdogPost struct {
	Status string `json:"status"`
	Alerts []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

// handler serves POST /watchdog (Alertmanager's webhook) and GET / (what
// the receiver has heard, as JSON).
func handler(w *watcher, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /watchdog", func(rw http.ResponseWriter, r *http.Request) {
		var p watchdogPost
		if err := json.NewDecoder(http.MaxBytesReader(rw, r.Body, maxBody)).Decode(&p); err != nil {
			http.Error(rw, "not an Alertmanager webhook payload: "+err.Error(), http.StatusBadRequest)
			return
		}
		// A firing alert is a heartbeat. A resolved Watchdog (only with
		// send_resolved) means Prometheus stopped sending it: no beat.
		for _, a := range p.Alerts {
			if a.Status == "firing" {
				w.beat(time.Now())
				rw.WriteHeader(http.StatusOK)
				return
			}
		}
		log.Warn("a post without a firing alert is no heartbeat", "status", p.Status, "alerts", len(p.Alerts))
		rw.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("GET /{$}", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(w.snapshot())
	})
	return mux
}
