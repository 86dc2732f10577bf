// Command heartbeat is a dead man's switch for the alerting path: Alertmanager
// sends it the Watchdog (an alert that always fires) every minute or so, and
// when the Watchdog has not come for -expect-every it posts an alarm to the
// page channel's Slack webhook itself, and a recovery once it comes back.
// A message that stops arriving is noticed by nobody; an alarm is.
//
//	heartbeat -addr :8098 -expect-every 5m -webhook-file /run/secrets/slack-pages
//
// Alertmanager posts to http://host:8098/watchdog (a webhook_config); GET /
// shows what it has heard, as JSON. It watches Prometheus and Alertmanager
// only as well as it is independent of them: run it where their failure
// does not take it down too, or use a hosted heartbeat service
// (alerts/README.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/parleychat/parley/internal/httpserve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "heartbeat:", err)
		os.Exit(1)
	}
}

// run is the whole program, for main and for tests: it serves until ctx
// ends, logging JSON lines to stdout. It reads no environment (the
// webhook, a secret, comes from a file), and takes getenv to have every
// command's shape.
func run(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("heartbeat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", ":8098", "listen address")
	expect := fs.Duration("expect-every", 5*time.Minute, "raise the alarm when no Watchdog has come for this long (Alertmanager's Watchdog repeat interval, with margin)")
	retry := fs.Duration("retry-every", 30*time.Second, "how often a post to Slack that failed is tried again")
	webhookFile := fs.String("webhook-file", "", "a file holding the page channel's Slack webhook URL (read at each post, so a rotated secret is picked up)")
	webhook := fs.String("webhook", "", "the page channel's Slack webhook URL, when not in a file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var errs []error
	if *expect <= 0 {
		errs = append(errs, errors.New("-expect-every must be positive"))
	}
	if *retry <= 0 {
		errs = append(errs, errors.New("-retry-every must be positive"))
	}
	if (*webhookFile == "") == (*webhook == "") {
		errs = append(errs, errors.New("give one of -webhook-file and -webhook: where to raise the alarm"))
	}
	if *webhookFile != "" {
		if _, err := webhookURL(*webhookFile, ""); err != nil {
			errs = append(errs, fmt.Errorf("-webhook-file: %w", err))
		}
	}
	if *webhook != "" {
		if _, err := webhookURL("", *webhook); err != nil {
			errs = append(errs, fmt.Errorf("-webhook: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stdout, nil))
	slack := &slackClient{file: *webhookFile, url: *webhook, client: &http.Client{Timeout: 10 * time.Second}}
	return serve(ctx, *addr, newWatcher(*expect, *retry, slack.post, log), log)
}

// serve runs the watcher and its HTTP side on addr until ctx ends.
func serve(ctx context.Context, addr string, w *watcher, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler(w, log),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	log.Info("listening", "addr", ln.Addr().String(), "expect_every", w.expect.String())
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); w.run(watchCtx) }()
	defer func() { stopWatch(); <-watched }()
	return httpserve.Serve(ctx, ln, srv)
}
