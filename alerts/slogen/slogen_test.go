package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleychat/parley/internal/testenv"
)

const (
	specPath     = "../slos.yaml"
	generatedDir = "../generated"
)

// The committed files are what the spec generates: an edit to the spec
// without `make alerts`, or a hand edit of a generated file, fails here.
func TestGeneratedFilesAreFresh(t *testing.T) {
	t.Parallel()
	s, err := loadSpec(specPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := stale(generatedDir, generate(s, 1)); err != nil {
		t.Fatal(err)
	}
}

func TestStaleFilesAreNamed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{"a.yml": "a\n", "b.yml": "b\n"}
	os.WriteFile(filepath.Join(dir, "a.yml"), []byte("a\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.yml"), []byte("edited\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "old.yml"), []byte("x\n"), 0o644)
	err := stale(dir, files)
	if err == nil || !strings.Contains(err.Error(), "b.yml") || !strings.Contains(err.Error(), "old.yml (no longer generated)") || strings.Contains(err.Error(), "a.yml") {
		t.Fatalf("got %v, want b.yml and old.yml named and a.yml not", err)
	}
}

func TestSpecErrorsNameTheField(t *testing.T) {
	t.Parallel()
	good := func() Spec {
		s, err := loadSpec(specPath)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name  string
		spoil func(*Spec)
		want  string
	}{
		{"objective of one", func(s *Spec) { s.SLOs[0].Objective = 1 }, "objective"},
		{"no window placeholder", func(s *Spec) { s.SLOs[0].Errors = "sum(rate(x[5m]))" }, "errors must contain"},
		{"a window other than 30d", func(s *Spec) { s.Window = "7d" }, "window"},
		{"a name with capitals", func(s *Spec) { s.SLOs[1].Name = "Latency" }, "name must be"},
		{"a name used twice", func(s *Spec) { s.SLOs[1].Name = s.SLOs[0].Name }, "used twice"},
		{"no absent series", func(s *Spec) { s.SLOs[2].Absent = "" }, "absent"},
		{"no test series", func(s *Spec) { s.SLOs[0].Test.Bad = nil }, "test.good and test.bad"},
		{"nothing said of what it counts", func(s *Spec) { s.SLOs[1].Counts = " " }, "counts and leaves_out are required"},
		{"nothing said of what it leaves out", func(s *Spec) { s.SLOs[1].LeavesOut = "" }, "counts and leaves_out are required"},
		{"a test rate under the guard", func(s *Spec) { s.SLOs[0].Test.Rate = s.SLOs[0].MinRate / 2 }, "test.rate must be above min_rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good()
			tt.spoil(&s)
			if err := s.validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error about %q", err, tt.want)
			}
		})
	}
}

// promtool checks the generated rules and runs the generated unit tests: a
// 15x burn pages, a 0.9x burn never alerts, a trickle does not page,
// traffic the SLI leaves out changes nothing, pages fire and resolve at the
// real windows when the timings say, no data raises the absent alert.
func TestGeneratedRulesPassPromtool(t *testing.T) {
	t.Parallel()
	promtool := testenv.Find(t, "promtool", "prometheus")
	rules, _ := filepath.Glob(filepath.Join(generatedDir, "*.rules.yml"))
	tests, _ := filepath.Glob(filepath.Join(generatedDir, "*.test.yml"))
	if len(rules) == 0 || len(rules) != len(tests) {
		t.Fatalf("got %d rule files and %d test files, want one of each per SLO", len(rules), len(tests))
	}
	if out, err := exec.Command(promtool, append([]string{"check", "rules"}, rules...)...).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	for _, f := range tests {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(promtool, "test", "rules", filepath.Base(f))
			cmd.Dir = generatedDir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("promtool test rules %s: %v\n%s", f, err, out)
			}
		})
	}
}

// Every alert's runbook link leads to a runbook in alerts/runbooks.
func TestEveryRunbookLinkHasARunbook(t *testing.T) {
	t.Parallel()
	s, err := loadSpec(specPath)
	if err != nil {
		t.Fatal(err)
	}
	links := 0
	for _, content := range generate(s, 1) {
		for line := range strings.SplitSeq(content, "\n") {
			_, url, ok := strings.Cut(line, "runbook_url: ")
			if !ok {
				continue
			}
			url = strings.TrimRight(strings.Fields(url)[0], "},")
			name, ok := strings.CutPrefix(url, runbookBase)
			if !ok {
				t.Errorf("runbook link %s is not under %s", url, runbookBase)
				continue
			}
			if _, err := os.Stat(filepath.Join("../runbooks", name)); err != nil {
				t.Errorf("runbook link %s: %v", url, err)
			}
			links++
		}
	}
	if links == 0 {
		t.Fatal("found no runbook links in the generated rules")
	}
}

func TestScaledDurations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in    string
		scale int
		want  string
	}{
		{"5m", 1, "5m"},
		{"5m", 60, "5s"},
		{"3d", 60, "4320s"},
		{"2m", 60, "2s"},
		{"1m", 120, "500ms"},
		{"30d", 60, "43200s"},
	}
	for _, tt := range tests {
		if got := scaled(tt.in, tt.scale); got != tt.want {
			t.Errorf("scaled(%q, %d) = %q, want %q", tt.in, tt.scale, got, tt.want)
		}
	}
}

// A time-scaled copy keeps every series and alert name, so dashboards and
// tests read it as they read the real rules, and shrinks only the windows
// and holds.
func TestScaledRulesKeepNamesAndShrinkWindows(t *testing.T) {
	t.Parallel()
	s, err := loadSpec(specPath)
	if err != nil {
		t.Fatal(err)
	}
	real, fast := generate(s, 1), generate(s, 60)
	for name, content := range fast {
		if strings.HasSuffix(name, ".test.yml") {
			t.Errorf("a scaled copy holds unit tests (%s), which assume the real windows", name)
			continue
		}
		names := func(content string) (out []string) {
			for line := range strings.SplitSeq(content, "\n") {
				if f := strings.Fields(line); len(f) == 3 && (f[1] == "record:" || f[1] == "alert:") {
					out = append(out, f[2])
				}
			}
			return out
		}
		if got, want := names(content), names(real[name]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: scaled names %v, want %v", name, got, want)
		}
		for _, want := range []string{"[5s]", "[60s]", "[4320s]", "[43200s]", "for: 2s"} {
			if !strings.Contains(content, want) {
				t.Errorf("%s: no %s in the scaled rules", name, want)
			}
		}
		if strings.Contains(content, "[1h]") || strings.Contains(content, "for: 2m") {
			t.Errorf("%s: an unscaled window or hold survived", name)
		}
	}
}

// run checks, writes a time-scaled copy where it is told, and refuses
// what would overwrite the real rules with a scaled copy.
func TestRun(t *testing.T) {
	t.Parallel()
	if err := run(t.Context(), []string{"-spec", specPath, "-out", generatedDir, "-check"}, env(nil), io.Discard, io.Discard); err != nil {
		t.Errorf("-check of the committed files: %v", err)
	}
	out := filepath.Join(t.TempDir(), "scaled")
	if err := run(t.Context(), []string{"-spec", specPath, "-out", out, "-scale", "60"}, env(nil), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	written, _ := filepath.Glob(filepath.Join(out, "*"))
	rules, _ := filepath.Glob(filepath.Join(out, "*.rules.yml"))
	if len(written) == 0 || len(rules) != len(written) {
		t.Errorf("-scale wrote %v, want rule files only", written)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-scale", "0"}, "-scale must be between 1 and 3600"},
		{[]string{"-spec", specPath, "-scale", "60"}, "give it an -out of its own"},
		{[]string{"-spec", specPath, "-out", out, "-scale", "60", "-check"}, "and no -check"},
		{[]string{"extra"}, `unexpected arguments ["extra"]`},
	} {
		if err := run(t.Context(), tt.args, env(nil), io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want an error containing %q", tt.args, err, tt.want)
		}
	}
}

// env is an environment of the variables in m alone, for run's getenv.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// Every generated file says, in comments, what its SLO counts and what it
// leaves out, in the spec's words.
func TestGeneratedFilesSayWhatTheSLICounts(t *testing.T) {
	t.Parallel()
	s, err := loadSpec(specPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, scale := range []int{1, 60} {
		files := generate(s, scale)
		for _, slo := range s.SLOs {
			for name, content := range files {
				if !strings.HasPrefix(name, "slo-"+slo.Name+".") {
					continue
				}
				var comments []string
				for line := range strings.SplitSeq(content, "\n") {
					if text, ok := strings.CutPrefix(line, "#"); ok {
						comments = append(comments, strings.TrimSpace(text))
					}
				}
				said := strings.Join(comments, " ")
				for _, want := range []string{"Counts: " + strings.Join(strings.Fields(slo.Counts), " "), "Leaves out: " + strings.Join(strings.Fields(slo.LeavesOut), " ")} {
					if !strings.Contains(said, want) {
						t.Errorf("%s (scale %d): the comments do not say %q", name, scale, want)
					}
				}
			}
		}
	}
}
