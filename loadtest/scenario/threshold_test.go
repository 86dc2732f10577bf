package scenario

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestParseThreshold(t *testing.T) {
	tests := []struct {
		text string
		want Threshold
	}{
		{"delivery_p99 < 250ms", Threshold{Metric: "delivery_p99", Op: "<", Value: 0.25}},
		{"ack_p999 <= 1.5s", Threshold{Metric: "ack_p999", Op: "<=", Value: 1.5}},
		{"ack_max < 2m", Threshold{Metric: "ack_max", Op: "<", Value: 120}},
		{"ack_error_rate < 0.1%", Threshold{Metric: "ack_error_rate", Op: "<", Value: 0.001}},
		{"ack_error_rate <= 0.001", Threshold{Metric: "ack_error_rate", Op: "<=", Value: 0.001}},
		{"ack_error_rate == 0", Threshold{Metric: "ack_error_rate", Op: "==", Value: 0}},
		{"ack_error_rate < 100 %", Threshold{Metric: "ack_error_rate", Op: "<", Value: 1}},
		{"lost == 0", Threshold{Metric: "lost", Op: "==", Value: 0}},
		{"sent >= 1e3", Threshold{Metric: "sent", Op: ">=", Value: 1000}},
		{"duplicates != 1", Threshold{Metric: "duplicates", Op: "!=", Value: 1}},
		{"send_rate>=500", Threshold{Metric: "send_rate", Op: ">=", Value: 500}},
		{"  connect_errors > 2  ", Threshold{Metric: "connect_errors", Op: ">", Value: 2}},
	}
	for _, tt := range tests {
		got, err := ParseThreshold(tt.text)
		if err != nil {
			t.Errorf("ParseThreshold(%q): %v", tt.text, err)
			continue
		}
		tt.want.Text = strings.TrimSpace(tt.text)
		if math.Abs(got.Value-tt.want.Value) > 1e-12 {
			t.Errorf("ParseThreshold(%q).Value = %v, want %v", tt.text, got.Value, tt.want.Value)
		}
		got.Value = tt.want.Value
		if got != tt.want {
			t.Errorf("ParseThreshold(%q) = %+v, want %+v", tt.text, got, tt.want)
		}
	}
}

func TestParseThresholdRejects(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"unknown metric", "deliver_p99 < 250ms", `unknown metric "deliver_p99" (known: ack_p50, `},
		{"latency without unit", "delivery_p99 < 250", "delivery_p99 is a latency: give a duration like 250ms"},
		{"latency as percentage", "ack_p99 < 5%", "ack_p99 is a latency: give a duration like 250ms"},
		{"ratio as duration", "ack_error_rate < 1s", "ack_error_rate is a ratio: give a percentage like 0.1% or a fraction like 0.001"},
		{"ratio above one", "ack_error_rate < 5", "ack_error_rate is a ratio: 5 is more than 1 (100%); for 5 percent write 5%"},
		{"bad percentage", "ack_error_rate < x%", `ack_error_rate is a ratio: "x%" is not a percentage`},
		{"count as duration", "lost < 1s", "lost is a count: give a plain number like 0"},
		{"count as percentage", "lost < 1%", "lost is a count: give a plain number like 0"},
		{"rate as percentage", "send_rate > 90%", "send_rate is messages a second: give a plain number like 500"},
		{"not a number", "lost == NaN", "lost is a count: give a plain number like 0"},
		{"infinite", "sent < Inf", "sent is a count"},
		{"negative", "lost > -1", "lost: -1 is negative, and no metric is"},
		{"no operator", "lost 0", `want "<metric> <op> <value>" with op one of <= >= == != < >, like "delivery_p99 < 250ms"; got "lost 0"`},
		{"single equals", "lost = 0", `want "<metric> <op> <value>"`},
		{"no metric", "< 5", `want "<metric> <op> <value>"`},
		{"empty", "  ", `want "<metric> <op> <value>"`},
		{"no value", "lost ==", "lost ==: the value is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseThreshold(tt.text)
			if err == nil {
				t.Fatalf("ParseThreshold(%q) = %+v, want an error", tt.text, got)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseThreshold(%q): %q, want it to contain %q", tt.text, err, tt.want)
			}
		})
	}
}

func TestThresholdHolds(t *testing.T) {
	tests := []struct {
		text string
		got  float64
		want bool
	}{
		{"delivery_p99 < 250ms", 0.249, true},
		{"delivery_p99 < 250ms", 0.25, false},
		{"delivery_p99 <= 250ms", 0.25, true},
		{"sent > 10", 11, true},
		{"sent > 10", 10, false},
		{"sent >= 10", 10, true},
		{"lost == 0", 0, true},
		{"lost == 0", 1, false},
		{"duplicates != 0", 1, true},
		{"duplicates != 0", 0, false},
		{"ack_error_rate < 0.1%", 0.0009, true},
		{"ack_error_rate < 0.1%", 0.001, false},
		// A metric the run could not measure passes nothing.
		{"delivery_p99 < 250ms", math.NaN(), false},
		{"lost != 1", math.NaN(), false},
	}
	for _, tt := range tests {
		th, err := ParseThreshold(tt.text)
		if err != nil {
			t.Fatal(err)
		}
		if got := th.Holds(tt.got); got != tt.want {
			t.Errorf("%q.Holds(%v) = %v, want %v", tt.text, tt.got, got, tt.want)
		}
	}
}

func TestThresholdTextRoundTrips(t *testing.T) {
	th, err := ParseThreshold(" delivery_p99 < 250ms ")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := th.MarshalText()
	var back Threshold
	if err := back.UnmarshalText(text); err != nil || back != th {
		t.Errorf("round trip through %q gave %+v, %v; want %+v", text, back, err, th)
	}
	if got, want := (Threshold{Metric: "lost", Op: "==", Value: 0}).String(), "lost == 0"; got != want {
		t.Errorf("String() of a threshold built in code = %q, want %q", got, want)
	}
}

func TestMetricsListsEveryKind(t *testing.T) {
	for _, m := range []string{"ack_p99", "delivery_max", "lost", "ack_error_rate", "send_rate"} {
		if !slices.Contains(Metrics(), m) {
			t.Errorf("Metrics() lacks %s", m)
		}
	}
	// Zero reads the same in every unit.
	for _, m := range Metrics() {
		if _, err := ParseThreshold(m + " >= 0"); err != nil {
			t.Errorf("%s >= 0: %v", m, err)
		}
	}
}
