package main

import (
	"fmt"
	"strings"
)

// leftOutTests are the promtool tests of the traffic slo's SLI leaves out
// (its test.ignored series): probes, static files, unknown paths and the
// client's own errors must be in neither side of the ratio. Alone, at ten
// times the SLO's test rate and failing where their series say so, they
// record no events and no errors, and page nobody; beside healthy traffic
// they leave the error ratio at zero and the event rate at the healthy
// traffic's.
func leftOutTests(s Spec, slo SLO, externalLabels string) string {
	var b strings.Builder
	rate := slo.testRate()
	sel := fmt.Sprintf(`{slo=%q}`, slo.Name)
	burnAlert := alertName(s.Service, slo.Name, "BudgetBurn")
	const length = 90
	flood := func() {
		for _, n := range slo.Test.Ignored {
			fmt.Fprintf(&b, "      - series: '%s'\n        values: '%s'\n", n, counter(segment{length, 10 * rate * 60}))
		}
	}
	noAlert := func() {
		for _, at := range []string{"10m", "1h", "90m"} {
			fmt.Fprintf(&b, "      - alertname: %s\n        eval_time: %s\n        exp_alerts: []\n", burnAlert, at)
		}
	}

	b.WriteString("  - name: traffic the SLI leaves out, alone, records no events and pages nobody\n    interval: 1m\n" + externalLabels)
	b.WriteString("    input_series:\n")
	flood()
	b.WriteString("    promql_expr_test:\n")
	for _, rec := range []string{"slo:sli_total:rate5m", "slo:sli_total:rate1h", "slo:sli_error:ratio_rate5m", "slo:sli_error:ratio_rate1h"} {
		// Nothing above zero: the SLI has no events (an empty or zero
		// total, and no ratio, or a NaN one, which no alert compares true).
		fmt.Fprintf(&b, "      - expr: %s%s > 0\n        eval_time: 1h\n        exp_samples: []\n", rec, sel)
	}
	b.WriteString("    alert_rule_test:\n")
	noAlert()

	b.WriteString("  - name: traffic the SLI leaves out changes neither side of a healthy SLI\n    interval: 1m\n" + externalLabels)
	b.WriteString("    input_series:\n")
	for _, n := range slo.Test.Good {
		fmt.Fprintf(&b, "      - series: '%s'\n        values: '%s'\n", n, counter(segment{length, rate * 60}))
	}
	flood()
	b.WriteString("    promql_expr_test:\n")
	for _, want := range []struct {
		rec   string
		value float64
	}{{"slo:sli_error:ratio_rate1h", 0}, {"slo:sli_total:rate1h", rate}, {"slo:sli_total:rate5m", rate}} {
		fmt.Fprintf(&b, "      - expr: %s%s\n        eval_time: 1h\n", want.rec, sel)
		fmt.Fprintf(&b, "        exp_samples:\n          - labels: '%s{service=%q, slo=%q}'\n            value: %s\n", want.rec, s.Service, slo.Name, num(want.value))
	}
	b.WriteString("    alert_rule_test:\n")
	noAlert()
	return b.String()
}
