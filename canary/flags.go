package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// config is the canary's settings, from flags and, for the password, the
// environment.
type config struct {
	target      string
	username    string
	password    string
	room        string
	interval    time.Duration
	timeout     time.Duration
	redial      time.Duration
	metricsAddr string
	logLevel    slog.Level
}

// usernamePattern is the API's rule for usernames.
var usernamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,32}$`)

// parseConfig reads the command line and the environment, and reports
// every bad setting at once, by name. The password comes from
// CANARY_PASSWORD, or the file CANARY_PASSWORD_FILE names, never from a
// flag, which any user of the machine could read.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	var level string
	fs := flag.NewFlagSet("parley-canary", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.target, "target", "", "the public entry point (the load balancer), e.g. http://lb:8080 or https://chat.example.com")
	fs.StringVar(&c.username, "username", "parley-canary", "the canary user, signed up on first use (password from $CANARY_PASSWORD or $CANARY_PASSWORD_FILE)")
	fs.StringVar(&c.room, "room", "canary", "the room the probes go through, created on first use")
	fs.DurationVar(&c.interval, "interval", 5*time.Second, "time between probes")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "each probe's bound, sign-in and connections included")
	fs.DurationVar(&c.redial, "redial", time.Minute, "each connection's life before it is dialled again, so probes cross replicas and stay on one in turn")
	fs.StringVar(&c.metricsAddr, "metrics-addr", ":9103", "serve /metrics (and /healthz) on this address")
	fs.StringVar(&level, "log-level", "info", "debug (a line per probe), info, warn or error")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if u, err := url.Parse(c.target); c.target == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("-target: want an http(s) URL such as http://lb:8080, got %q", c.target))
	}
	if !usernamePattern.MatchString(c.username) {
		errs = append(errs, fmt.Errorf("-username: want 3 to 32 of A-Za-z0-9_.- (the API's rule), got %q", c.username))
	}
	if c.room == "" || len([]rune(c.room)) > 64 {
		errs = append(errs, fmt.Errorf("-room: want 1 to 64 characters, got %q", c.room))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"-interval", c.interval}, {"-timeout", c.timeout}, {"-redial", c.redial}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: want a positive duration, got %v", d.name, d.v))
		}
	}
	if err := c.logLevel.UnmarshalText([]byte(level)); err != nil {
		errs = append(errs, fmt.Errorf("-log-level: want debug, info, warn or error, got %q", level))
	}
	password, err := readPassword(getenv)
	if err != nil {
		errs = append(errs, err)
	}
	c.password = password
	return c, errors.Join(errs...)
}

// readPassword reads CANARY_PASSWORD or the file CANARY_PASSWORD_FILE
// names (a mounted Secret), and checks it against the API's rule.
func readPassword(getenv func(string) string) (string, error) {
	name, password := "CANARY_PASSWORD", getenv("CANARY_PASSWORD")
	if file := getenv("CANARY_PASSWORD_FILE"); file != "" {
		if password != "" {
			return "", errors.New("CANARY_PASSWORD and CANARY_PASSWORD_FILE are both set; set one")
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("CANARY_PASSWORD_FILE: %w", err)
		}
		name, password = "CANARY_PASSWORD_FILE", strings.TrimRight(string(raw), "\r\n")
	}
	if n := len([]rune(password)); n < 8 || n > 128 {
		return "", fmt.Errorf("%s: the canary user's password must have 8 to 128 characters (the API's rule), got %d", name, n)
	}
	return password, nil
}
