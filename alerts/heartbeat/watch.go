package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// alarmName is what the alarm is called in Slack, and the name of its
// runbook in alerts/runbooks/.
const alarmName = "WatchdogMissing"

// runbookURL is the alarm's runbook, linked from its Slack message.
const runbookURL = "https://github.com/parleychat/parley/blob/main/alerts/runbooks/" + alarmName + ".md"

// watcher is the dead man's switch: it expects a heartbeat (the Watchdog,
// which Alertmanager sends every minute or so) at least every expect, and
// when none has come for that long it posts an alarm itself; when
// heartbeats come back it posts a recovery. A post that fails is tried
// again every retry until it goes through or is overtaken: a heartbeat
// that comes back before the alarm got through cancels it (there is
// nothing to recover from in Slack), and a new silence replaces a
// recovery not yet delivered.
type watcher struct {
	expect, retry time.Duration
	post          func(context.Context, slackPost) error
	log           *slog.Logger

	beats chan time.Time // one pending beat is enough: a newer one overtakes it

	mu     sync.Mutex
	status status
}

// status is what the watcher knows, for GET / and its tests.
type status struct {
	ExpectEvery   string     `json:"expect_every"`
	Started       time.Time  `json:"started"`
	LastHeartbeat *time.Time `json:"last_heartbeat"`
	Heartbeats    int        `json:"heartbeats"`
	Alarm         bool       `json:"alarm"`   // silent longer than expect_every
	Alarms        int        `json:"alarms"`  // alarms delivered to Slack
	Pending       bool       `json:"pending"` // a post to Slack not yet delivered
}

func newWatcher(expect, retry time.Duration, post func(context.Context, slackPost) error, log *slog.Logger) *watcher {
	return &watcher{
		expect: expect, retry: retry, post: post, log: log,
		beats:  make(chan time.Time, 1),
		status: status{ExpectEvery: expect.String()},
	}
}

// beat records a heartbeat; it never blocks.
func (w *watcher) beat(at time.Time) {
	w.mu.Lock()
	w.status.LastHeartbeat = &at
	w.status.Heartbeats++
	w.mu.Unlock()
	select {
	case w.beats <- at:
	default:
	}
}

func (w *watcher) snapshot() status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status
}

// run watches until ctx ends. The silence is counted from run's start
// too, so a receiver that never hears a first heartbeat raises the alarm.
func (w *watcher) run(ctx context.Context) {
	start := time.Now()
	w.mu.Lock()
	w.status.Started = start
	w.mu.Unlock()
	last := start
	deadline := time.NewTimer(w.expect)
	defer deadline.Stop()
	retry := time.NewTimer(w.retry)
	retry.Stop()
	defer retry.Stop()
	var (
		pending   *slackPost // the post still to deliver
		alarmed   bool       // silent past expect
		delivered bool       // the alarm reached Slack, so its recovery must too
	)
	for {
		select {
		case <-ctx.Done():
			return
		case at := <-w.beats:
			if alarmed {
				alarmed, pending = false, nil
				if delivered {
					p := recoveryPost(last, at)
					pending, delivered = &p, false
				}
				w.log.Info("heartbeat back", "silent_for", at.Sub(last).Round(time.Second).String())
			}
			last = at
			deadline.Reset(w.expect)
		case now := <-deadline.C:
			alarmed = true
			p := alarmPost(w.expect, last, now, start)
			pending = &p
			w.log.Warn("no heartbeat", "expect_every", w.expect.String(), "last", last)
		case <-retry.C:
		}
		w.mu.Lock()
		w.status.Alarm = alarmed
		w.mu.Unlock()
		if pending == nil {
			continue
		}
		if err := w.post(ctx, *pending); err != nil {
			if ctx.Err() != nil {
				return
			}
			w.log.Error("posting to Slack failed; will retry", "err", err, "retry_in", w.retry.String())
			retry.Reset(w.retry)
		} else {
			if alarmed {
				delivered = true
				w.mu.Lock()
				w.status.Alarms++
				w.mu.Unlock()
			}
			pending = nil
			retry.Stop()
		}
		w.mu.Lock()
		w.status.Pending = pending != nil
		w.mu.Unlock()
	}
}

// slackPost is the body of a Slack incoming-webhook post, shaped like
// Alertmanager's (alerts/templates/slack.tmpl), so that the alarm reads
// like every other page.
type slackPost struct {
	Username    string       `json:"username"`
	Attachments []attachment `json:"attachments"`
}

type attachment struct {
	Color     string `json:"color"`
	Title     string `json:"title"`
	TitleLink string `json:"title_link"`
	Text      string `json:"text"`
	Fallback  string `json:"fallback"`
}

func alarmPost(expect time.Duration, last, now, start time.Time) slackPost {
	heard := "since this receiver started " + now.Sub(start).Round(time.Second).String() + " ago"
	if last != start {
		heard = "since " + last.UTC().Format(time.RFC3339) + " (" + now.Sub(last).Round(time.Second).String() + " ago)"
	}
	title := "[FIRING:1] " + alarmName + " (critical)"
	text := fmt.Sprintf("*No Watchdog from Alertmanager %s; expected at least every %s.*\n"+
		"Prometheus, Alertmanager or the path between them is down: alerts may not reach anyone.\n"+
		"Runbook: %s", heard, expect, runbookURL)
	return slackPost{Username: "heartbeat", Attachments: []attachment{{
		Color: "danger", Title: title, TitleLink: runbookURL, Text: text, Fallback: title,
	}}}
}

func recoveryPost(last, now time.Time) slackPost {
	title := "[RESOLVED] " + alarmName + " (critical)"
	text := fmt.Sprintf("*The Watchdog is arriving again* after %s of silence.\nRunbook: %s",
		now.Sub(last).Round(time.Second), runbookURL)
	return slackPost{Username: "heartbeat", Attachments: []attachment{{
		Color: "good", Title: title, TitleLink: runbookURL, Text: text, Fallback: title,
	}}}
}
