// Package schedule turns a run's stages into the intended send time of every
// message.
//
// The load generator follows the open model: messages arrive at a rate that
// does not depend on how fast the server answers, so a slow server meets more
// outstanding work rather than a politely slower client (which would hide its
// latency: coordinated omission). Every intended send time is computed from
// the run's start by inverting the integral of the rate, never by adding up
// sleeps, so a long run does not drift.
package schedule

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Shapes a stage's rate can take.
const (
	Constant = "constant" // Rate for the whole stage; the default
	Ramp     = "ramp"     // linear from From to To
	Steps    = "steps"    // From, then Step more every Every, holding at To
	Spike    = "spike"    // Rate, with Peak from At for For
)

// Shapes lists the valid values of Stage.Shape, for error messages.
func Shapes() []string { return []string{Constant, Ramp, Steps, Spike} }

// MaxRate bounds every rate a stage may name, in messages per second. No
// single load generator gets near it; a larger number is a typo, and the
// bound keeps arrivals at least a microsecond apart, far above the float
// error of computing them.
const MaxRate = 1e6

// maxSteps bounds the steps of one stage: each is a segment of the plan, and
// a stage of millions of tiny steps is a mistake better written as a ramp.
const maxSteps = 100_000

// Stage is one phase of a run's arrival rate, in messages per second over
// the whole run (all users together).
type Stage struct {
	// Name labels the stage in errors and reports; optional.
	Name string `yaml:"name"`
	// Duration is how long the stage lasts; it must be positive.
	Duration time.Duration `yaml:"duration"`
	// Shape is how the rate moves: constant (the default when empty), ramp,
	// steps or spike. Each shape reads only its own fields below; setting
	// another shape's field is an error, since it is most likely a mistake.
	Shape string `yaml:"shape"`
	// Rate is the rate of a constant stage and the base rate of a spike.
	Rate float64 `yaml:"rate"`
	// From and To bound a ramp (linear from From to To over Duration) or a
	// staircase (From, then Step more every Every until To, held to the end).
	From float64 `yaml:"from"`
	To   float64 `yaml:"to"`
	// Step is how much a staircase climbs (or descends, when To < From) each
	// Every.
	Step  float64       `yaml:"step"`
	Every time.Duration `yaml:"every"`
	// Peak is a spike's rate from At (an offset into the stage) for For.
	Peak float64       `yaml:"peak"`
	At   time.Duration `yaml:"at"`
	For  time.Duration `yaml:"for"`
	// Reconnect is the fraction (0 to 1) of users that drop their connection
	// at the stage's start and come back joining with `since`: a reconnect
	// storm. Zero means none. It does not change the arrival rate.
	Reconnect float64 `yaml:"reconnect"`
}

// FieldError is one problem with one field of a stage. Field is the field's
// YAML name, so a caller that knows where the stage came from can point at
// it (stages[2].to).
type FieldError struct {
	Field   string
	Problem string // reads after the field's name: "must be ≥ 0, got -5"
}

func (e *FieldError) Error() string { return e.Field + " " + e.Problem }

// Validate reports every problem with the stage, joined, each a *FieldError
// naming the field.
func (s Stage) Validate() error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	rate := func(field string, v float64) {
		switch {
		case math.IsNaN(v) || v < 0:
			fail(field, "must be ≥ 0, got %v", v)
		case v > MaxRate:
			fail(field, "must be ≤ %v messages a second, got %v", MaxRate, v)
		}
	}
	// unused flags another shape's fields: a spike with `from` set, say,
	// was meant to be something else.
	unused := func(fields map[string]bool) {
		for _, f := range []string{"rate", "from", "to", "step", "every", "peak", "at", "for"} {
			if fields[f] {
				fail(f, "is not used by a %s stage", s.shape())
			}
		}
	}

	if s.Duration <= 0 {
		fail("duration", "must be > 0, got %v", s.Duration)
	}
	if math.IsNaN(s.Reconnect) || s.Reconnect < 0 || s.Reconnect > 1 {
		fail("reconnect", "must be a fraction from 0 to 1, got %v", s.Reconnect)
	}
	switch s.shape() {
	case Constant:
		rate("rate", s.Rate)
		unused(map[string]bool{"from": s.From != 0, "to": s.To != 0, "step": s.Step != 0,
			"every": s.Every != 0, "peak": s.Peak != 0, "at": s.At != 0, "for": s.For != 0})
	case Ramp:
		rate("from", s.From)
		rate("to", s.To)
		unused(map[string]bool{"rate": s.Rate != 0, "step": s.Step != 0,
			"every": s.Every != 0, "peak": s.Peak != 0, "at": s.At != 0, "for": s.For != 0})
	case Steps:
		rate("from", s.From)
		rate("to", s.To)
		if math.IsNaN(s.Step) || s.Step <= 0 {
			fail("step", "must be > 0, got %v", s.Step)
		}
		if s.Every <= 0 {
			fail("every", "must be > 0, got %v", s.Every)
		} else if s.Duration > 0 && s.Duration/s.Every >= maxSteps {
			fail("every", "is too short: %v of %v is more than %d steps", s.Duration, s.Every, maxSteps)
		}
		unused(map[string]bool{"rate": s.Rate != 0, "peak": s.Peak != 0, "at": s.At != 0, "for": s.For != 0})
	case Spike:
		rate("rate", s.Rate)
		rate("peak", s.Peak)
		if s.At < 0 {
			fail("at", "must be ≥ 0, got %v", s.At)
		}
		if s.For <= 0 {
			fail("for", "must be > 0, got %v", s.For)
		} else if s.At >= 0 && s.Duration > 0 && s.At+s.For > s.Duration {
			fail("for", "runs past the stage's end: at (%v) + for (%v) is more than duration (%v)", s.At, s.For, s.Duration)
		}
		unused(map[string]bool{"from": s.From != 0, "to": s.To != 0, "step": s.Step != 0, "every": s.Every != 0})
	default:
		fail("shape", "must be one of %s, got %q", strings.Join(Shapes(), ", "), s.Shape)
	}
	return errors.Join(errs...)
}

// shape is the stage's shape with the default filled in.
func (s Stage) shape() string {
	if s.Shape == "" {
		return Constant
	}
	return s.Shape
}

// label names the stage in errors: its index as in a scenario file, and its
// name when it has one.
func (s Stage) label(i int) string {
	if s.Name == "" {
		return fmt.Sprintf("stages[%d]", i)
	}
	return fmt.Sprintf("stages[%d] (%s)", i, s.Name)
}
