package main

// When a panel may be green. A colour is a claim: green says "as it should
// be", amber "look", red "act". A stat is coloured by thresholds only where
// a real limit or promise stands behind them (an SLO, the replicas every
// deployment runs); a count with no limit, such as connections or sends per
// second, is drawn in the text colour, because its size alone is neither
// good nor bad. The tests hold every stat to this.

// neutralColour is Grafana's name for the theme's text colour.
const neutralColour = "text"

// neutral draws a stat's value and sparkline in the text colour, with no
// threshold to turn it green.
func (p *Panel) neutral() *Panel {
	p.defaults()["color"] = obj{"mode": "fixed", "fixedColor": neutralColour}
	return p.thresholds(step{neutralColour, nil})
}

// noValue replaces Grafana's "No data" with what the absence means.
func (p *Panel) noValue(text string) *Panel {
	p.defaults()["noValue"] = text
	return p
}

// replicaFloor is the fewest replicas any deployment of Parley runs:
// compose runs two, and the Kubernetes HPA keeps at least two (minReplicas
// in k8s/base and staging; production keeps three). It is also the fewest
// with which losing a replica is not an outage, so fewer than this is amber
// everywhere. The tests read those files and fail if this stops being their
// minimum.
const replicaFloor = 2

// replicasUp counts the replicas that answered their last scrape. Prometheus
// knowing no replica at all means none is up: 0 and red, not "No data".
func replicasUp(title string) *Panel {
	return stat(title, unitNone,
		q(`sum(up{job="parley", instance=~"$instance"}) or vector(0)`, "")).
		decimals(0).
		thresholds(step{"red", nil}, step{"orange", at(1)}, step{"green", at(replicaFloor)}).
		desc("Selected replicas that answered Prometheus's last scrape. Red: none. Amber: fewer than two, the fewest any deployment runs and the fewest that survive losing one. Green says at least two answer, not that all do: production runs three or more.")
}
