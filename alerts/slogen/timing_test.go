package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/parleychat/parley/internal/testenv"
)

// The timings, worked out by hand from the burn conditions for a 99.9%
// SLO (budget 0.1%) and a 99.5% one at the canary's rate.
func TestPageTimingsFollowTheBurnConditions(t *testing.T) {
	t.Parallel()
	s, err := loadSpec(specPath)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]SLO{}
	for _, slo := range s.SLOs {
		byName[slo.Name] = slo
	}
	tests := []struct {
		slo       string
		fault     fault
		fire, res int
	}{
		// One failed minute of sixty is 1.7% > 14.4 x 0.1% over 1h (and
		// 5m): the condition holds at minute 1 and the page fires 2m later.
		// Three failed minutes of 360 are 0.8% > 6 x 0.1% over 6h, so the
		// 6x condition holds until the 30m window has no failure left.
		{"ack-availability", fault{"full outage", 1, 0}, 3, 30},
		// 10% errors: 14.4x over 1h needs 9 minutes (0.1 x 9/60 = 1.5%),
		// then 2m. Eleven minutes of 10% are 0.3% of 6h, under 6x, so the
		// page ends with the 5m window's 14.4x: 0.1 x k/5 > 1.44% needs
		// k >= 1, gone at 5 minutes.
		{"ack-availability", fault{"10% errors", 0.1, 0}, 11, 5},
		// An hour more of them: 71 minutes of 10% are 2% of 6h, over 6x,
		// and the 30m window's 0.1 x k/30 > 0.6% needs k >= 2: gone at 29.
		{"ack-availability", fault{"10% errors", 0.1, 60}, 11, 29},
		// The canary's 99.5%: 14.4 x 0.5% = 7.2% of an hour is 4.32
		// minutes, so 5 failed minutes, then 2m. Seven minutes of 360 are
		// under 6 x 0.5% = 3%, so the 5m window ends it.
		{"canary", fault{"full outage", 1, 0}, 7, 5},
		// An hour more of the outage: 6x over 6h holds, and the 30m window
		// clears after 30 minutes (3% of 30m is 0.9 minutes).
		{"canary", fault{"full outage", 1, 60}, 7, 30},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s lasting %s", tt.slo, tt.fault.name, tt.fault.lasting()), func(t *testing.T) {
			t.Parallel()
			tm := pageTiming(byName[tt.slo], tt.fault)
			if !tm.paged || tm.fireLo != tt.fire || tm.fireHi != tt.fire || tm.resolveLo != tt.res || tm.resolveHi != tt.res {
				t.Fatalf("got %+v, want a page %d min after the fault began, resolved %d min after it ended", tm, tt.fire, tt.res)
			}
		})
	}
}

// alerts/README.md lists the timings the generator works out and the
// unit tests prove: an edit to the spec or the severities that changes
// them fails here until the README says so too.
func TestReadmeListsThePageTimings(t *testing.T) {
	t.Parallel()
	s, err := loadSpec(specPath)
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), timingTable(s)) {
		t.Fatalf("alerts/README.md does not hold the page timings; paste the output of go run ./alerts/slogen -table:\n%s", timingTable(s))
	}
}

// The timing tests are tight: moved by one minute, each of their four
// checks fails under promtool. So they prove the figures, not merely
// something near them.
func TestTimingTestsFailOneMinuteOff(t *testing.T) {
	t.Parallel()
	promtool := testenv.Find(t, "promtool", "prometheus")
	s, err := loadSpec(specPath)
	if err != nil {
		t.Fatal(err)
	}
	slo := s.SLOs[0]
	tm := pageTiming(slo, faults[0])
	if tm.fireLo != tm.fireHi || tm.resolveLo != tm.resolveHi {
		t.Fatalf("the full outage of %s has no exact timing (%+v); pick a case without ties", slo.Name, tm)
	}
	dir := t.TempDir()
	rulesFile := "slo-" + slo.Name + ".rules.yml"
	if err := os.WriteFile(filepath.Join(dir, rulesFile), []byte(rules(s, slo, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	labels := fmt.Sprintf("    external_labels: {grafana_url: %q}\n", testGrafanaURL)
	test := timingTest(s, slo, tm, labels)
	header := fmt.Sprintf("rule_files: [%s]\nevaluation_interval: 1m\ngroup_eval_order: [slo-%[2]s-recording, slo-%[2]s-budget, slo-%[2]s-alerts]\ntests:\n", rulesFile, slo.Name)
	run := func(name, content string) error {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(header+content), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(promtool, "test", "rules", name)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w\n%s", err, out)
		}
		return nil
	}
	// The test as generated passes: TestGeneratedRulesPassPromtool runs it.
	evalTime := regexp.MustCompile(`eval_time: (\d+)m`)
	checks := evalTime.FindAllStringSubmatchIndex(test, -1)
	if len(checks) != 4 {
		t.Fatalf("got %d checks in the timing test, want 4:\n%s", len(checks), test)
	}
	// Quiet before the page and still firing before the resolve move one
	// minute later; firing by the page and quiet by the resolve one
	// minute earlier.
	for i, shift := range []int{1, -1, 1, -1} {
		at := checks[i]
		m, _ := strconv.Atoi(test[at[2]:at[3]])
		moved := test[:at[2]] + strconv.Itoa(m+shift) + test[at[3]:]
		if err := run(fmt.Sprintf("moved-%d.test.yml", i), moved); err == nil {
			t.Errorf("check %d moved from minute %d to %d still passes", i+1, m, m+shift)
		}
	}
}
