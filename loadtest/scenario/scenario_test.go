package scenario

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/loadtest/schedule"
)

// TestBadFilesNameTheLineAndField parses every file in testdata/bad, each of
// which lists the errors it must produce as "# want:" comments: all of
// them, in order, and nothing else.
func TestBadFilesNameTheLineAndField(t *testing.T) {
	paths, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no bad files in testdata/bad (%v)", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for line := range strings.Lines(string(data)) {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					want = append(want, strings.TrimSpace(w))
				}
			}
			s, err := Parse(data, filepath.Base(path))
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", s)
			}
			if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, want) {
				t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(want, "\n"))
			}
		})
	}
}

func TestDefaultsFillWhatTheFileLeavesOut(t *testing.T) {
	s := mustParse(t, "dir/minimal.yaml", `
users:
  count: 3
rooms:
  - count: 2
    members: 3
  - name: pair
    count: 1
    members: 2
stages:
  - duration: 1m30s
    rate: 2
`)
	checks := []struct {
		field     string
		got, want any
	}{
		{"name", s.Name, "minimal"},
		{"users.prefix", s.Users.Prefix, "lt"},
		{"users.token_file", s.Users.TokenFile, ""},
		{"rooms[0].name", s.Rooms[0].Name, "group0"},
		{"rooms[1].name", s.Rooms[1].Name, "pair"},
		{"message", s.Message, MessageSize{MinBytes: 20, MaxBytes: 200}},
		{"typing", s.Typing, 0.0},
		{"drain", s.Drain, 5 * time.Second},
		{"stages[0]", s.Stages[0], schedule.Stage{Duration: 90 * time.Second, Rate: 2}},
		{"thresholds", len(s.Thresholds), 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %#v, want %#v", c.field, c.got, c.want)
		}
	}
}

func TestParseReadsEveryField(t *testing.T) {
	s := mustParse(t, "/etc/parley/full.yaml", `
name: full
description: every field
users:
  count: 20
  prefix: soak.
  token_file: tokens.txt
rooms:
  - {name: big, count: 1, members: 20}
message: {min_bytes: 1, max_bytes: 4000}
typing: 0.25
stages:
  - name: warm
    shape: ramp
    from: 0
    to: 50
    duration: 1m
  - name: stairs
    shape: steps
    from: 50
    to: 100
    step: 25
    every: 20s
    duration: 1m
  - name: burst
    shape: spike
    rate: 100
    peak: 400
    at: 0
    for: 10s
    duration: 30s
    reconnect: 0.5
drain: 1m
thresholds:
  - delivery_p99 < 250ms
  - ack_error_rate <= 0.1%
  - lost == 0
`)
	if got, want := s.Users.TokenFile, "/etc/parley/tokens.txt"; got != want {
		t.Errorf("users.token_file = %q, want %q, relative to the scenario file", got, want)
	}
	if got, want := s.Message, (MessageSize{MinBytes: 1, MaxBytes: 4000}); got != want {
		t.Errorf("message = %+v, want %+v", got, want)
	}
	wantStages := []schedule.Stage{
		{Name: "warm", Shape: "ramp", To: 50, Duration: time.Minute},
		{Name: "stairs", Shape: "steps", From: 50, To: 100, Step: 25, Every: 20 * time.Second, Duration: time.Minute},
		{Name: "burst", Shape: "spike", Rate: 100, Peak: 400, For: 10 * time.Second, Duration: 30 * time.Second, Reconnect: 0.5},
	}
	if !slices.Equal(s.Stages, wantStages) {
		t.Errorf("stages = %+v\nwant %+v", s.Stages, wantStages)
	}
	wantThresholds := []Threshold{
		{Metric: "delivery_p99", Op: "<", Value: 0.25, Text: "delivery_p99 < 250ms"},
		{Metric: "ack_error_rate", Op: "<=", Value: 0.001, Text: "ack_error_rate <= 0.1%"},
		{Metric: "lost", Op: "==", Value: 0, Text: "lost == 0"},
	}
	if !slices.Equal(s.Thresholds, wantThresholds) {
		t.Errorf("thresholds = %+v\nwant %+v", s.Thresholds, wantThresholds)
	}
	if s.Typing != 0.25 || s.Drain != time.Minute || s.Description != "every field" {
		t.Errorf("typing, drain, description = %v, %v, %q; want 0.25, 1m0s, %q", s.Typing, s.Drain, s.Description, "every field")
	}
	if _, err := s.Plan(); err != nil {
		t.Errorf("Plan: %v", err)
	}
}

func TestAliasesRepeatAStage(t *testing.T) {
	s := mustParse(t, "alias.yaml", `
users: {count: 2}
rooms: [{count: 1, members: 2}]
stages:
  - &calm {name: calm, duration: 10s, rate: 5}
  - {name: busy, duration: 10s, rate: 50}
  - *calm
`)
	if len(s.Stages) != 3 || s.Stages[2] != s.Stages[0] {
		t.Errorf("stages = %+v, want the third to repeat the first", s.Stages)
	}
}

func TestOneMessageBoundGivesTheOtherDefaultWay(t *testing.T) {
	tests := []struct {
		message string
		want    MessageSize
	}{
		{"{max_bytes: 10}", MessageSize{MinBytes: 10, MaxBytes: 10}},
		{"{min_bytes: 500}", MessageSize{MinBytes: 500, MaxBytes: 500}},
		{"{min_bytes: 5}", MessageSize{MinBytes: 5, MaxBytes: 200}},
		{"{max_bytes: 3000}", MessageSize{MinBytes: 20, MaxBytes: 3000}},
	}
	for _, tt := range tests {
		s := mustParse(t, "m.yaml", "users: {count: 1}\nrooms: [{count: 1, members: 1}]\nstages: [{duration: 1s}]\nmessage: "+tt.message)
		if s.Message != tt.want {
			t.Errorf("message: %s gives %+v, want %+v", tt.message, s.Message, tt.want)
		}
	}
}

func TestLayoutDealsUsersRoundRobin(t *testing.T) {
	s := mustParse(t, "layout.yaml", `
users: {count: 5}
rooms:
  - {name: trio, count: 2, members: 3}
  - {name: all, count: 1, members: 5}
  - {name: pair, count: 2, members: 2}
stages: [{duration: 1s, rate: 1}]
`)
	want := []Room{
		{Name: "trio-0", Group: 0, Members: []int{0, 1, 2}},
		{Name: "trio-1", Group: 0, Members: []int{3, 4, 0}},
		{Name: "all-0", Group: 1, Members: []int{1, 2, 3, 4, 0}},
		{Name: "pair-0", Group: 2, Members: []int{1, 2}},
		{Name: "pair-1", Group: 2, Members: []int{3, 4}},
	}
	got := s.Layout()
	if len(got) != len(want) {
		t.Fatalf("Layout() = %+v, want %+v", got, want)
	}
	seats := make([]int, s.Users.Count)
	for i := range want {
		if got[i].Name != want[i].Name || got[i].Group != want[i].Group || !slices.Equal(got[i].Members, want[i].Members) {
			t.Errorf("room %d = %+v, want %+v", i, got[i], want[i])
		}
		for _, u := range got[i].Members {
			seats[u]++
		}
	}
	// 15 seats for 5 users: three rooms each.
	for u, n := range seats {
		if n != 3 {
			t.Errorf("user %d sits in %d rooms, want 3", u, n)
		}
	}
}

// TestShippedScenariosValidate loads every file in loadtest/scenarios: a
// scenario that no longer parses would fail only when someone runs it.
func TestShippedScenariosValidate(t *testing.T) {
	paths, err := filepath.Glob("../scenarios/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, path := range paths {
		s, err := Load(path)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		names = append(names, s.Name)
		if want := strings.TrimSuffix(filepath.Base(path), ".yaml"); s.Name != want {
			t.Errorf("%s: name is %q, want %q like its file", path, s.Name, want)
		}
		if len(s.Thresholds) == 0 {
			t.Errorf("%s: no thresholds, so the run cannot fail", path)
		}
		data, _ := os.ReadFile(path)
		if !strings.HasPrefix(string(data), "# "+s.Name+": ") {
			t.Errorf("%s: want a first comment saying what %s answers", path, s.Name)
		}
	}
	for _, want := range []string{"smoke", "steady", "ramp-to-knee", "spike", "soak", "reconnect-storm"} {
		if !slices.Contains(names, want) {
			t.Errorf("no valid %s.yaml in loadtest/scenarios (found %v)", want, names)
		}
	}
}

// TestSmokeStaysSmall keeps the CI scenario within what a two-core machine
// running two replicas under the race detector can carry.
func TestSmokeStaysSmall(t *testing.T) {
	s, err := Load("../scenarios/smoke.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Plan()
	if err != nil {
		t.Fatal(err)
	}
	if s.Users.Count > 20 || p.Duration() > 30*time.Second || p.Total() > 500 {
		t.Errorf("smoke has %d users and %d messages over %v; keep it to 20 users and 500 messages in 30s", s.Users.Count, p.Total(), p.Duration())
	}
}

func TestReconnectStormReconnects(t *testing.T) {
	s, err := Load("../scenarios/reconnect-storm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(s.Stages, func(st schedule.Stage) bool { return st.Reconnect > 0 }) {
		t.Error("reconnect-storm has no stage that reconnects")
	}
}

func TestLoadReportsAMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want a not-exist error", err)
	}
}

func mustParse(t *testing.T, source, yaml string) *Scenario {
	t.Helper()
	s, err := Parse([]byte(yaml), source)
	if err != nil {
		t.Fatalf("Parse(%s): %v", source, err)
	}
	return s
}
