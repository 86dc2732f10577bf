package alerts

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/parleychat/parley/internal/testenv"
)

// The canary's alerts pass promtool and their unit tests, and each links
// to a runbook that exists.
func TestCanaryRulesPassPromtoolAndHaveRunbooks(t *testing.T) {
	promtool := testenv.Find(t, "promtool", "prometheus")
	if out, err := exec.Command(promtool, "check", "rules", "rules/canary.rules.yml").CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	cmd := exec.Command(promtool, "test", "rules", "canary.test.yml")
	cmd.Dir = "rules"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	raw, err := os.ReadFile("rules/canary.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for line := range strings.SplitSeq(string(raw), "\n") {
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "- alert: "); ok {
			alerts = append(alerts, name)
			if _, err := os.Stat("runbooks/" + name + ".md"); err != nil {
				t.Errorf("alert %s has no runbook: %v", name, err)
			}
			if !strings.Contains(string(raw), "runbooks/"+name+".md") {
				t.Errorf("alert %s does not link its runbook", name)
			}
		}
	}
	if len(alerts) != 2 {
		t.Fatalf("found alerts %v in rules/canary.rules.yml, want the canary down and failing", alerts)
	}
}
