// Package workflows tests the GitHub Actions workflows in .github/workflows
// (Go skips dot directories, so the tests live here): actionlint accepts
// them, every action is pinned to a commit, and every job has least
// permissions and a timeout. What only GitHub can run is proven on GitHub.
package workflows

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/parleychat/parley/internal/testenv"
)

// actionlintVersion is what CI installs; a different one may judge
// differently.
const actionlintVersion = "v1.7.12"

var (
	root         = filepath.Join("..", "..")
	workflowsDir = filepath.Join(root, ".github", "workflows")
)

func TestActionlintAcceptsTheWorkflows(t *testing.T) {
	t.Parallel()
	actionlint := findActionlint(t)
	files := workflowFiles(t)
	rel := make([]string, len(files))
	for i, f := range files {
		rel[i] = filepath.Join(".github", "workflows", filepath.Base(f))
	}
	// From the repository's root, so that local reusable workflows and
	// actions resolve. actionlint runs shellcheck on the run: scripts when
	// it is installed (GitHub's runners have it).
	cmd := exec.Command(actionlint, append([]string{"-no-color"}, rel...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("actionlint: %v\n%s", err, out)
	}
}

func TestActionsArePinnedToACommit(t *testing.T) {
	t.Parallel()
	for _, w := range loadWorkflows(t) {
		for _, ref := range w.actionRefs() {
			t.Run(w.name+"/"+ref.where, func(t *testing.T) {
				if msg := pinProblem(ref.uses, ref.comment); msg != "" {
					t.Errorf("%s:%d: uses: %s: %s", w.name, ref.line, strings.TrimSpace(ref.uses+" "+ref.comment), msg)
				}
			})
		}
	}
}

func TestPinProblem(t *testing.T) {
	t.Parallel()
	const sha = "08c6903cd8c0fde910a37f88322edcfb5dd907a8"
	tests := []struct {
		uses, comment string
		ok            bool
	}{
		{"actions/checkout@" + sha, "# v5.0.0", true},
		{"aquasecurity/trivy-action@" + sha, "# 0.35.0", true},
		{"github/codeql-action/init@" + sha, "# v3.29.5", true},
		{"./.github/workflows/ci.yml", "", true},
		{"./.github/actions/setup", "", true},
		{"docker://alpine@sha256:" + strings.Repeat("a", 64), "", true},
		{"actions/checkout@v5", "", false},
		{"actions/checkout@v5.0.0", "# v5.0.0", false},
		{"actions/checkout@main", "", false},
		{"actions/checkout@08c6903", "# v5.0.0", false},
		{"actions/checkout@" + strings.ToUpper(sha), "# v5.0.0", false},
		{"actions/checkout@" + sha, "", false},
		{"actions/checkout@" + sha, "# main", false},
		{"actions/checkout", "", false},
		{"docker://alpine:3.22", "", false},
	}
	for _, tt := range tests {
		got := pinProblem(tt.uses, tt.comment)
		if (got == "") != tt.ok {
			t.Errorf("pinProblem(%q, %q) = %q, want ok %v", tt.uses, tt.comment, got, tt.ok)
		}
	}
}

func TestPermissionsAreLeast(t *testing.T) {
	t.Parallel()
	for _, w := range loadWorkflows(t) {
		t.Run(w.name, func(t *testing.T) {
			// Without a top-level block every job gets the repository's
			// default token, which may be read-write.
			if w.Permissions.Kind == 0 {
				t.Errorf("%s: no top-level permissions (want {} or contents: read, widened per job)", w.name)
			}
			if isWriteAll(w.Permissions) {
				t.Errorf("%s:%d: top-level permissions: write-all", w.name, w.Permissions.Line)
			}
			for _, id := range w.jobIDs() {
				if p := w.Jobs[id].Permissions; isWriteAll(p) {
					t.Errorf("%s:%d: job %s has permissions: write-all", w.name, p.Line, id)
				}
			}
		})
	}
}

func TestJobsHaveATimeout(t *testing.T) {
	t.Parallel()
	for _, w := range loadWorkflows(t) {
		for _, id := range w.jobIDs() {
			j := w.Jobs[id]
			// A job that calls a reusable workflow may not set one; the
			// called workflow's jobs do, and are checked in their own file.
			if j.Uses.Value != "" {
				continue
			}
			if j.TimeoutMinutes.Kind == 0 {
				t.Errorf("%s: job %s has no timeout-minutes (the default is six hours)", w.name, id)
			}
		}
	}
}

func TestScriptsParse(t *testing.T) {
	t.Parallel()
	scripts, err := filepath.Glob(filepath.Join(root, ".github", "scripts", "*.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scripts {
		if out, err := exec.Command("bash", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", s, err, out)
		}
	}
}

// workflow is what the tests read of a workflow file.
type workflow struct {
	name        string         // file name
	Permissions yaml.Node      `yaml:"permissions"`
	Jobs        map[string]job `yaml:"jobs"`
}

type job struct {
	Uses           yaml.Node `yaml:"uses"` // a reusable workflow
	Permissions    yaml.Node `yaml:"permissions"`
	TimeoutMinutes yaml.Node `yaml:"timeout-minutes"`
	Steps          []step    `yaml:"steps"`
}

type step struct {
	Uses yaml.Node `yaml:"uses"`
}

// actionRef is one uses: of a workflow, with the comment beside it.
type actionRef struct {
	where   string // job, and step when it is one
	uses    string
	comment string
	line    int
}

func (w workflow) jobIDs() []string { return slices.Sorted(maps.Keys(w.Jobs)) }

func (w workflow) actionRefs() []actionRef {
	var refs []actionRef
	for _, id := range w.jobIDs() {
		j := w.Jobs[id]
		if j.Uses.Value != "" {
			refs = append(refs, actionRef{id, j.Uses.Value, j.Uses.LineComment, j.Uses.Line})
		}
		for i, s := range j.Steps {
			if s.Uses.Value != "" {
				refs = append(refs, actionRef{id + "/step" + strconv.Itoa(i+1), s.Uses.Value, s.Uses.LineComment, s.Uses.Line})
			}
		}
	}
	return refs
}

var (
	commitRef     = regexp.MustCompile(`^[^@\s]+@[0-9a-f]{40}$`)
	dockerDigest  = regexp.MustCompile(`^docker://[^@\s]+@sha256:[0-9a-f]{64}$`)
	versionRemark = regexp.MustCompile(`^#\s*v?\d+\.\d+\.\d+$`)
)

// pinProblem says what is wrong with a uses: value and the comment beside
// it, or "" when nothing is. A tag or branch can be moved to other code
// after review (as trivy-action's tags were in March 2026); a full commit
// cannot, and the version comment says which release it is, for people
// and for update bots.
func pinProblem(uses, comment string) string {
	switch {
	case strings.HasPrefix(uses, "./"):
		return "" // this repository, at this commit
	case strings.HasPrefix(uses, "docker://"):
		if !dockerDigest.MatchString(uses) {
			return "pin the image by digest (@sha256:...)"
		}
		return ""
	case !commitRef.MatchString(uses):
		return "pin the action to a full 40-hex commit SHA"
	case !versionRemark.MatchString(strings.TrimSpace(comment)):
		return `follow the SHA with the release it is, like "# v1.2.3"`
	}
	return ""
}

func isWriteAll(n yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Value == "write-all"
}

func workflowFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"*.yml", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join(workflowsDir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatalf("no workflows in %s", workflowsDir)
	}
	slices.Sort(files)
	return files
}

func loadWorkflows(t *testing.T) []workflow {
	t.Helper()
	var ws []workflow
	for _, f := range workflowFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		w := workflow{name: filepath.Base(f)}
		if err := yaml.Unmarshal(data, &w); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		if len(w.Jobs) == 0 {
			t.Fatalf("%s: no jobs", w.name)
		}
		ws = append(ws, w)
	}
	return ws
}

// findActionlint returns actionlint's path, or skips the test (fails it
// under CI=true) saying how to install it.
func findActionlint(t *testing.T) string {
	t.Helper()
	return testenv.FindGo(t, "actionlint", "github.com/rhysd/actionlint/cmd/actionlint@"+actionlintVersion)
}
