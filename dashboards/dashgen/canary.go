package main

// The canary's row on the Overview: chat as a user sees it through the
// public entry point. The canary (canary/, job "canary") signs in, sends a
// message every few seconds and waits for it on a second connection; its
// parley_canary_* series are its own, not a replica's, so these queries take
// no instance filter (the instance variable lists replicas, and selecting
// one would blank the row), and they live only in the row titled canaryRow.

// canaryRow is the title of the one row whose queries read the canary's
// metrics.
const canaryRow = "Canary"

// canaryThreshold is the canary SLO's bound (alerts/slos.yaml): a probe is
// good when its message reaches the second connection within 1 s.
const canaryThreshold = 1.0

func canarySection() section {
	return section{title: canaryRow, panels: []*Panel{
		// Failures are created at zero for every step, so with probes
		// finishing and none failing this reads 1, not "No data".
		stat("Canary probe success", unitRatio,
			q(`1 - sum(rate(parley_canary_failures_total[$__rate_interval])) / (sum(rate(parley_canary_probes_total[$__rate_interval])) > 0)`, "")).
			size(4, 7).
			decimals(1).
			// Green while fewer than 1 probe in 100 fails, red beyond 1 in
			// 10. At a probe every few seconds a rate window holds only
			// tens of probes, so a single failure already leaves green.
			thresholds(step{"red", nil}, step{"orange", at(0.9)}, step{"green", at(0.99)}).
			noValue("No probes finished").
			desc("Share of the canary's probes that got their message to the second connection, slow or not. No probes finished means the canary is not running, not scraped or stuck; an alert fires when that lasts."),
		stat("Since the canary's last success", unitSeconds,
			q(`time() - max(parley_canary_last_success_timestamp_seconds)`, "")).
			size(4, 7).
			decimals(0).
			// Healthy, this stays under a scrape interval (15 s) plus a
			// probe interval. A minute is several probes in a row failing.
			thresholds(step{"green", nil}, step{"orange", at(60)}, step{"red", at(180)}).
			noValue("No canary data").
			desc("Time since a probe last succeeded, as of Prometheus's last scrape of the canary. It grows by the second while every probe fails."),
		timeseries("Canary end-to-end latency by path", unitSeconds,
			q(`histogram_quantile(0.99, sum by (le, path) (rate(parley_canary_latency_seconds_bucket[$__rate_interval])))`, "p99 {{path}}"),
			q(`histogram_quantile(0.5, sum by (le, path) (rate(parley_canary_latency_seconds_bucket[$__rate_interval])))`, "p50 {{path}}")).
			size(8, 7).
			withExemplars().
			thresholdLines(step{"transparent", nil}, step{"red", at(canaryThreshold)}).
			desc("From just before the canary's send to the message's arrival on its second connection, successful probes only. cross_replica: the two connections were served by different replicas, so the message crossed the Redis bus. The dashed line is the canary SLO's 1 s. Exemplars are the traces of single probes."),
		timeseries("Canary failures/s by step", unitNone,
			q(`sum by (step) (rate(parley_canary_failures_total[$__rate_interval]))`, "{{step}}")).
			size(8, 7).
			panelLink("Error logs in Loki", errorLogs).
			desc("Failed probes by the step that failed. login: the sign-in API. connect: the WebSocket upgrade through the load balancer. join, send, ack: a replica or its store. receive: the message was acked, so stored, but did not reach the second connection in time."),
	}}
}
