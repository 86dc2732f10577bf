package scenario

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Threshold is a pass/fail bar on one metric of a run, written
// "delivery_p99 < 250ms": the run passes it when the metric's value, op,
// Value holds.
type Threshold struct {
	Metric string // one of Metrics()
	Op     string // <, <=, >, >=, == or !=
	// Value is in the metric's unit: seconds for a latency, a fraction
	// (0.001, not 0.1) for a ratio, messages a second for send_rate, and a
	// plain number for a count.
	Value float64
	Text  string // as written, trimmed
}

// kind is what a metric measures, which decides how its value is written.
type kind int

const (
	latency   kind = iota // a duration: 250ms
	count                 // a plain number: 0
	ratio                 // a percentage or a fraction: 0.1% or 0.001
	perSecond             // a plain number of messages a second: 500
)

// metrics are the values the ledger reports for a run, in the order they
// are listed to a person who named an unknown one.
var metrics = []struct {
	name string
	kind kind
}{
	{"ack_p50", latency}, {"ack_p90", latency}, {"ack_p99", latency}, {"ack_p999", latency}, {"ack_max", latency},
	{"delivery_p50", latency}, {"delivery_p90", latency}, {"delivery_p99", latency}, {"delivery_p999", latency}, {"delivery_max", latency},
	{"sent", count}, {"acked", count}, {"delivered", count}, {"lost", count}, {"duplicates", count},
	{"reordered", count}, {"unanswered", count}, {"ack_errors", count}, {"connect_errors", count},
	{"ack_error_rate", ratio},
	{"send_rate", perSecond},
}

// Metrics lists the metric names a threshold may name.
func Metrics() []string {
	names := make([]string, len(metrics))
	for i, m := range metrics {
		names[i] = m.name
	}
	return names
}

func kindOf(metric string) (kind, bool) {
	for _, m := range metrics {
		if m.name == metric {
			return m.kind, true
		}
	}
	return 0, false
}

// ops are the comparisons a threshold may use, two-character ones first so
// that "<=" is not read as "<" followed by "=".
var ops = []string{"<=", ">=", "==", "!=", "<", ">"}

// ParseThreshold reads "<metric> <op> <value>", such as "delivery_p99 <
// 250ms", "ack_error_rate < 0.1%" or "lost == 0". A latency takes a duration
// (compared in seconds), a ratio a percentage or a fraction, and a count or
// send_rate a plain number; a value in the wrong form is an error rather
// than a guess, since "delivery_p99 < 250" could mean milliseconds or
// seconds.
func ParseThreshold(s string) (Threshold, error) {
	text := strings.TrimSpace(s)
	t := Threshold{Text: text}
	end := strings.IndexFunc(text, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_'
	})
	if end < 0 {
		end = len(text)
	}
	t.Metric = text[:end]
	rest := strings.TrimSpace(text[end:])
	for _, op := range ops {
		if strings.HasPrefix(rest, op) {
			t.Op = op
			break
		}
	}
	if t.Metric == "" || t.Op == "" {
		return Threshold{}, fmt.Errorf(`want "<metric> <op> <value>" with op one of %s, like "delivery_p99 < 250ms"; got %q`, strings.Join(ops, " "), text)
	}
	k, ok := kindOf(t.Metric)
	if !ok {
		return Threshold{}, fmt.Errorf("unknown metric %q (known: %s)", t.Metric, strings.Join(Metrics(), ", "))
	}
	value := strings.TrimSpace(rest[len(t.Op):])
	if value == "" {
		return Threshold{}, fmt.Errorf("%s %s: the value is missing", t.Metric, t.Op)
	}
	v, err := parseValue(t.Metric, k, value)
	if err != nil {
		return Threshold{}, err
	}
	if v < 0 {
		return Threshold{}, fmt.Errorf("%s: %s is negative, and no metric is", t.Metric, value)
	}
	t.Value = v
	return t, nil
}

func parseValue(metric string, k kind, value string) (float64, error) {
	switch k {
	case latency:
		d, err := time.ParseDuration(value)
		if err != nil {
			return 0, fmt.Errorf("%s is a latency: give a duration like 250ms, not %q", metric, value)
		}
		return d.Seconds(), nil
	case ratio:
		if num, ok := strings.CutSuffix(value, "%"); ok {
			v, err := parseNumber(strings.TrimSpace(num))
			if err != nil {
				return 0, fmt.Errorf("%s is a ratio: %q is not a percentage", metric, value)
			}
			return v / 100, nil
		}
		v, err := parseNumber(value)
		if err != nil {
			return 0, fmt.Errorf("%s is a ratio: give a percentage like 0.1%% or a fraction like 0.001, not %q", metric, value)
		}
		if v > 1 {
			// Most likely a percentage without its sign.
			return 0, fmt.Errorf("%s is a ratio: %s is more than 1 (100%%); for %s percent write %s%%", metric, value, value, value)
		}
		return v, nil
	case perSecond:
		v, err := parseNumber(value)
		if err != nil {
			return 0, fmt.Errorf("%s is messages a second: give a plain number like 500, not %q", metric, value)
		}
		return v, nil
	default:
		v, err := parseNumber(value)
		if err != nil {
			return 0, fmt.Errorf("%s is a count: give a plain number like 0, not %q", metric, value)
		}
		return v, nil
	}
}

// parseNumber is strconv.ParseFloat without NaN and the infinities, which
// no threshold means.
func parseNumber(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a finite number", s)
	}
	return v, nil
}

// Holds reports whether a run whose metric came out as got passes the
// threshold. A NaN (a metric the run could not measure) passes none.
func (t Threshold) Holds(got float64) bool {
	switch t.Op {
	case "<":
		return got < t.Value
	case "<=":
		return got <= t.Value
	case ">":
		return got > t.Value
	case ">=":
		return got >= t.Value
	case "==":
		return got == t.Value
	case "!=":
		return got != t.Value && !math.IsNaN(got)
	}
	return false
}

// String is the threshold as written.
func (t Threshold) String() string {
	if t.Text != "" {
		return t.Text
	}
	return fmt.Sprintf("%s %s %v", t.Metric, t.Op, t.Value)
}

// MarshalText writes the threshold as a scenario file does.
func (t Threshold) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText parses a threshold written as a scenario file does; YAML
// decoders call it for each string in a thresholds list.
func (t *Threshold) UnmarshalText(b []byte) error {
	parsed, err := ParseThreshold(string(b))
	if err != nil {
		return err
	}
	*t = parsed
	return nil
}
