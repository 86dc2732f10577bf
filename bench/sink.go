package main

import (
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// sink stands in for an OpenTelemetry collector: it takes OTLP/HTTP trace
// exports and counts them. It does not decode them; what matters is that
// Parley encodes and sends them as it would to a real collector, and gets
// the answer a collector gives: 200 with an empty
// ExportTraceServiceResponse, which encodes as no bytes at all.
type sink struct {
	srv      *http.Server
	url      string
	requests atomic.Int64
}

func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{url: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		s.requests.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute, IdleTimeout: time.Minute}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *sink) close() { s.srv.Close() }
