package main

// How an error ratio reads when nothing went wrong, or nothing happened.
//
// A labelled error counter's series exists only after its first error (the
// 5xx series of a route, say), so errors/total is empty, "No data", exactly
// when all is well. The numerator therefore falls back to 0 times the
// total: a zero for each group that has series, with the same labels. But a
// group with no traffic in the window must not read 0% errors either: 0 of 0
// is not a success rate. The denominator keeps only groups with traffic
// (total > 0), so such a group has no point, a gap, instead of 0 or NaN. A
// panel where no group had traffic says so through noValue.

// errorRatio is sum(errors)/sum(total) by the labels in by (none for one
// ratio), where errors and total are rate expressions: 0 for a group with
// traffic and no errors, nothing for a group without traffic.
func errorRatio(by, errors, total string) string {
	sum := "sum"
	if by != "" {
		sum = "sum by (" + by + ")"
	}
	return "(" + sum + " (" + errors + ") or 0 * " + sum + " (" + total + ")) / (" + sum + " (" + total + ") > 0)"
}
