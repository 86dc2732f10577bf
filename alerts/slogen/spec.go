package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Spec is alerts/slos.yaml: the service's objectives over one window.
type Spec struct {
	Service string `yaml:"service"`
	Window  string `yaml:"window"`
	SLOs    []SLO  `yaml:"slos"`
}

// SLO is one objective: the share of good events, errors over total, that
// must hold over the spec's window.
type SLO struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Counts and LeavesOut say whose experience the SLI measures: which
	// events it counts, good and bad, and which it leaves out and why.
	// The generated files repeat them as comments.
	Counts    string  `yaml:"counts"`
	LeavesOut string  `yaml:"leaves_out"`
	Objective float64 `yaml:"objective"`
	// Errors and Total are PromQL rates of events, with {{window}} where
	// the rate's window goes.
	Errors string `yaml:"errors"`
	Total  string `yaml:"total"`
	// MinRate is the least traffic, in events per second over an alert's
	// long window, that may page or open a ticket.
	MinRate float64 `yaml:"min_rate"`
	// Absent names the series whose absence means the SLI cannot be
	// computed.
	Absent string `yaml:"absent"`
	// Test says which series the unit tests feed good and bad events to,
	// and at what steady rate.
	Test struct {
		// Rate is the tests' steady traffic in events a second; 0 means
		// defaultTestRate. An SLI fed by a prober sets the prober's rate.
		Rate float64  `yaml:"rate"`
		Good []string `yaml:"good"`
		Bad  []string `yaml:"bad"`
		// Ignored are series of events the SLI must leave out (probes,
		// the client's own errors): the tests flood them, failures
		// included, and require that nothing changes.
		Ignored []string `yaml:"ignored"`
	} `yaml:"test"`
}

// defaultTestRate is the tests' steady traffic, in events a second, for an
// SLO that sets no test.rate.
const defaultTestRate = 10

// testRate is the steady traffic of slo's tests, in events a second.
func (slo SLO) testRate() float64 {
	if slo.Test.Rate == 0 {
		return defaultTestRate
	}
	return slo.Test.Rate
}

// windowPlaceholder marks where a rate's window goes in an SLI expression.
const windowPlaceholder = "{{window}}"

var sloName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,40}$`)

// loadSpec reads and checks the spec at path. Every problem is reported,
// each naming the SLO and field.
func loadSpec(path string) (Spec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, err
	}
	var s Spec
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, s.validate()
}

func (s Spec) validate() error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.Service == "" {
		fail("service is required")
	}
	if s.Window != "30d" {
		fail("window: only 30d is supported (the burn-rate factors assume it), got %q", s.Window)
	}
	if len(s.SLOs) == 0 {
		fail("slos: at least one is required")
	}
	seen := map[string]bool{}
	for i, slo := range s.SLOs {
		where := fmt.Sprintf("slos[%d] (%s)", i, slo.Name)
		if !sloName.MatchString(slo.Name) {
			fail("%s: name must be lower-case letters, digits and dashes", where)
		}
		if seen[slo.Name] {
			fail("%s: name is used twice", where)
		}
		seen[slo.Name] = true
		if !(slo.Objective > 0 && slo.Objective < 1) {
			fail("%s: objective must be between 0 and 1, got %v", where, slo.Objective)
		}
		for field, expr := range map[string]string{"errors": slo.Errors, "total": slo.Total} {
			if !strings.Contains(expr, windowPlaceholder) {
				fail("%s: %s must contain %s", where, field, windowPlaceholder)
			}
		}
		if slo.MinRate < 0 {
			fail("%s: min_rate must not be negative", where)
		}
		if strings.TrimSpace(slo.Counts) == "" || strings.TrimSpace(slo.LeavesOut) == "" {
			fail("%s: counts and leaves_out are required: say which events the SLI counts and which it leaves out", where)
		}
		if slo.Test.Rate < 0 || (slo.Test.Rate > 0 && slo.Test.Rate <= slo.MinRate) {
			fail("%s: test.rate must be above min_rate (%v), or unset, got %v", where, slo.MinRate, slo.Test.Rate)
		}
		if slo.Absent == "" {
			fail("%s: absent is required", where)
		}
		if len(slo.Test.Good) == 0 || len(slo.Test.Bad) == 0 {
			fail("%s: test.good and test.bad are required", where)
		}
	}
	return errors.Join(errs...)
}
