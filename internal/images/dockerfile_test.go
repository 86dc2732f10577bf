// Package images checks the repository's Dockerfile for what its images
// promise: pinned bases, static binaries stamped with a version, runtimes
// with no shell that run as an unprivileged user. Docker does not run
// where these tests do; GitHub Actions builds the images for real.
package images

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

type stage struct {
	name, base string
	lines      []string // the instructions after FROM, continuation lines joined
}

// parse splits the Dockerfile into its stages.
func parse(t *testing.T, path string) []*stage {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(raw), "\\\n", " ")
	var stages []*stage
	from := regexp.MustCompile(`^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$`)
	inHeredoc := ""
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if inHeredoc != "" {
			if line == inHeredoc {
				inHeredoc = ""
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if m := regexp.MustCompile(`<<'?(\w+)'?`).FindStringSubmatch(line); m != nil {
			inHeredoc = m[1]
		}
		if m := from.FindStringSubmatch(line); m != nil {
			stages = append(stages, &stage{name: m[2], base: m[1]})
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %q before the first FROM", path, line)
		}
		s := stages[len(stages)-1]
		s.lines = append(s.lines, line)
	}
	return stages
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	stages := parse(t, "../../Dockerfile")
	byName := map[string]*stage{}
	for _, s := range stages {
		byName[s.name] = s
	}

	pinned := regexp.MustCompile(`^[a-z0-9./-]+:[^:@]*[0-9][^:@]*(@sha256:[0-9a-f]{64})?$`)
	for _, s := range stages {
		if _, isStage := byName[s.base]; isStage || s.base == "scratch" {
			continue
		}
		if !pinned.MatchString(s.base) || strings.Contains(s.base, "latest") {
			t.Errorf("stage %s: base image %q is not pinned to a version", s.name, s.base)
		}
	}

	build := byName["build"]
	if build == nil {
		t.Fatal("no build stage")
	}
	all := strings.Join(build.lines, "\n")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}"} {
		if !strings.Contains(all, want) {
			t.Errorf("the build stage lacks %q: binaries must be static, reproducible and stamped", want)
		}
	}
	for _, pkg := range regexp.MustCompile(`go build .*? (\./\S+)`).FindAllStringSubmatch(all, -1) {
		if _, err := os.Stat(filepath.Join("../..", pkg[1])); err != nil {
			t.Errorf("the build stage builds %s, which does not exist", pkg[1])
		}
	}

	// Each image, following its chain of stages to the first FROM outside.
	for _, target := range []string{"server", "loadtest", "slackrecv", "heartbeat", "canary"} {
		s := byName[target]
		if s == nil {
			t.Errorf("no %s target", target)
			continue
		}
		var user, entrypoint string
		root := s
		for chain := s; chain != nil; chain = byName[chain.base] {
			for _, l := range chain.lines {
				if v, ok := strings.CutPrefix(l, "USER "); ok && user == "" {
					user = v
				}
				if v, ok := strings.CutPrefix(l, "ENTRYPOINT "); ok && entrypoint == "" {
					entrypoint = v
				}
				if strings.HasPrefix(l, "RUN ") {
					t.Errorf("%s: %q runs at build time in a runtime stage, which has no shell", target, l)
				}
			}
			root = chain
		}
		if root.base != "scratch" && !strings.Contains(root.base, "distroless") {
			t.Errorf("%s: runtime image is based on %s, want scratch or distroless", target, root.base)
		}
		if !regexp.MustCompile(`^[1-9][0-9]*(:[1-9][0-9]*)?$`).MatchString(user) {
			t.Errorf("%s: USER %q, want a numeric non-root user (Kubernetes' runAsNonRoot can check only numbers)", target, user)
		}
		if !strings.HasPrefix(entrypoint, `["/`) {
			t.Errorf("%s: ENTRYPOINT %s, want the exec form (no shell to run a string)", target, entrypoint)
		}
	}

	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(".dockerignore:", err)
	}
	for _, want := range []string{".git", "bin"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).Match(ignore) {
			t.Errorf(".dockerignore does not leave out %s", want)
		}
	}
	// Local secrets (k8s/.gitignore's, an .env for compose) never reach
	// the build context, where COPY . . would put them in a layer.
	for _, secret := range []string{"k8s/overlays/staging/secrets.env", "k8s/overlays/production/slack-webhook.env", "compose/.env"} {
		if !ignored(string(ignore), secret) {
			t.Errorf(".dockerignore lets %s into the build context", secret)
		}
	}
}

// ignored reports whether a .dockerignore pattern matches path. It knows
// the two forms the file uses: filepath.Match patterns from the root, and
// **/name for a name anywhere.
func ignored(dockerignore, path string) bool {
	for line := range strings.SplitSeq(dockerignore, "\n") {
		pattern := strings.TrimSpace(line)
		if pattern == "" || strings.HasPrefix(pattern, "#") || strings.HasPrefix(pattern, "!") {
			continue
		}
		if name, ok := strings.CutPrefix(pattern, "**/"); ok {
			if m, _ := filepath.Match(name, filepath.Base(path)); m {
				return true
			}
			continue
		}
		if m, _ := filepath.Match(pattern, path); m {
			return true
		}
	}
	return false
}
