package main

// The five boards. Conventions every query follows (the tests check them,
// and the metric contract test in the server relies on them):
//
//   - Rate windows are [$__rate_interval], which Grafana keeps at least
//     four scrapes wide whatever the zoom.
//   - Variables appear only as label=~"$var" matchers, so a tool can put
//     .+ in their place and get valid PromQL.
//   - Every selector of a server series is filtered by the instance
//     variable; go_*, process_* and up are also filtered by job="parley",
//     because other jobs (Prometheus itself, Loki, Tempo) have them too.
//   - Recording rules (names with a colon) and ALERTS are aggregates with
//     no instance label, so they take no instance filter.
//   - Queries of the load generator's own metrics (parley_loadtest_*) live
//     only in the collapsed row titled loadGeneratorRow.
//   - Queries of the canary's metrics (parley_canary_*) live only in the
//     Overview's row titled canaryRow and take no instance filter: the
//     canary is not a replica (canary.go).

// loadGeneratorRow is the title of the one row whose queries read the load
// generator's metrics rather than the server's. Contract tests that check
// metric names against a running server skip every panel inside it.
const loadGeneratorRow = "Load generator"

func boards() []board {
	return []board{overview(), slos(), realtime(), storeRuntime(), loadTest()}
}

// instanceVariable selects replicas by their scrape address. All is ".+"
// rather than a list of every value, so the queries stay short and a
// replica that appears later is included.
func instanceVariable() obj {
	return queryVariable("instance", "Replica", `label_values(up{job="parley"}, instance)`)
}

// sloVariable selects SLOs by the names the recording rules carry.
func sloVariable() obj {
	return queryVariable("slo", "SLO", `label_values(slo:objective:ratio, slo)`)
}

func queryVariable(name, label, query string) obj {
	return obj{
		"name":       name,
		"label":      label,
		"type":       "query",
		"datasource": prometheus,
		"definition": query,
		"query":      obj{"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
		"refresh":    2, // on time range change: replicas come and go
		"regex":      "",
		"sort":       1,
		"multi":      true,
		"includeAll": true,
		"allValue":   ".+",
		"current":    obj{"selected": true, "text": []string{"All"}, "value": []string{"$__all"}},
		"options":    []obj{},
		"hide":       0,
	}
}

// Links shared by several panels.
var (
	// logsOfReplica opens the log lines of the series' replica: Loki's
	// instance label carries the same value as Prometheus's (README.md).
	logsOfReplica = exploreLogs(`{service="parley", instance="${__field.labels.instance}"}`)
	errorLogs     = exploreLogs(`{service="parley"} | json | level="ERROR"`)
	errorTraces   = exploreTraces(`{resource.service.name="parley" && status=error}`)
	// slowSends are sends, over the WebSocket or REST, slower than the
	// delivery SLO's 250 ms.
	slowSends = exploreTraces(`{resource.service.name="parley" && (name="chat.send" || name="POST /api/v1/rooms/{room}/messages") && duration > 250ms}`)
)

func overview() board {
	return board{
		uid:         "parley-overview",
		title:       "Parley / Overview",
		description: "Is Parley healthy? Requests, connections, messages and their latency, with the error logs and traces behind them.",
		from:        "now-1h",
		variables:   []obj{instanceVariable()},
		sections: []section{
			{title: "Alerts", panels: []*Panel{
				firingAlerts().size(24, 5),
			}},
			{title: "Service", panels: []*Panel{
				replicasUp("Replicas up").
					size(3, 5),
				// No limit stands behind a connection count (the HPA's
				// per-pod target is a scaling signal, not a ceiling).
				stat("WebSocket connections", unitNone,
					q(`sum(parley_ws_connections{instance=~"$instance"})`, "")).
					size(3, 5).
					neutral().
					desc("Open WebSocket connections on the selected replicas. No count is good or bad in itself: compare with the same hour yesterday, and see the HPA for scaling."),
				stat("Sends/s", unitNone,
					q(`sum(rate(parley_sends_total{instance=~"$instance"}[$__rate_interval]))`, "")).
					size(3, 5).
					neutral().
					desc("Messages clients tried to send, whatever became of them."),
				stat("Ack error ratio", unitRatio, q(ackErrorRatio, "")).
					size(3, 5).
					decimals(3).
					thresholds(step{"green", nil}, step{"orange", at(0.001)}, step{"red", at(0.01)}).
					noValue("No sends").
					desc("Failed sends against acked plus failed: the ack availability SLI. Rejections are the client's doing and count on neither side. The SLO allows 0.1%. No sends: nothing to have an error ratio of."),
				stat("Error budget remaining (30d)", unitRatio,
					q(`1 - (slo:sli_error:ratio_rate30d / on(slo) slo:error_budget:ratio)`, "{{slo}}")).
					size(6, 5).
					decimals(1).
					thresholds(step{"red", nil}, step{"orange", at(0)}, step{"green", at(0.25)}).
					dataLink("SLO details", "/d/parley-slo?var-slo=${__field.labels.slo}&${__url_time_range}").
					desc("Share of each SLO's 30-day error budget not yet spent, across all replicas. Below zero the SLO is missed."),
				table("Versions",
					instant(`parley_build_info{instance=~"$instance"}`),
					"Time", "Value", "__name__", "job").
					size(6, 5).
					desc("The build each replica runs. Two versions at once means a rollout is under way."),
			}},
			canarySection(),
			{title: "HTTP", panels: []*Panel{
				timeseries("Requests/s by route and code", unitReqps,
					q(`sum by (route, code) (rate(parley_http_requests_total{instance=~"$instance"}[$__rate_interval]))`, "{{route}} {{code}}")).
					desc("Requests answered by the main listener, except the WebSocket upgrade."),
				// The 5xx series of a route exists only after its first
				// server error: errorRatio reads 0 for a route with
				// traffic and none, and leaves a gap where there was no
				// traffic (ratios.go).
				timeseries("Server error ratio by route", unitRatio,
					q(errorRatio("route",
						`rate(parley_http_requests_total{code="5xx", instance=~"$instance"}[$__rate_interval])`,
						`rate(parley_http_requests_total{instance=~"$instance"}[$__rate_interval])`), "{{route}}")).
					noValue("No requests").
					panelLink("Error traces in Tempo", errorTraces).
					panelLink("Error logs in Loki", errorLogs).
					desc("Share of each route's requests answered with a 5xx. 0 is a route with traffic and no server error; a gap is a route with no traffic then, which has no error ratio. The API availability SLI is this ratio over the routes that alerts/slos.yaml counts."),
				timeseries("Request latency p50 and p99 by route", unitSeconds,
					q(`histogram_quantile(0.99, sum by (le, route) (rate(parley_http_request_duration_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`, "p99 {{route}}"),
					q(`histogram_quantile(0.5, sum by (le, route) (rate(parley_http_request_duration_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`, "p50 {{route}}")).
					withExemplars().
					desc("Exemplars (diamonds) are traces of single requests: pick a high one to see where its time went."),
			}},
			{title: "WebSocket and messages", panels: []*Panel{
				timeseries("WebSocket connections by replica", unitNone,
					q(`sum by (instance) (parley_ws_connections{instance=~"$instance"})`, "{{instance}}")).
					dataLink("Logs of this replica", logsOfReplica).
					desc("Open connections on each replica. Uneven numbers after a restart are normal: clients reconnect to whichever replica the load balancer picks."),
				timeseries("Sends/s by outcome", unitNone,
					q(`sum by (outcome) (rate(parley_sends_total{instance=~"$instance"}[$__rate_interval]))`, "{{outcome}}")).
					desc("acked: stored. rejected: the client's fault. failed: the server's fault, which spends the ack error budget."),
				timeseries("Refused sends/s by reason", unitNone,
					q(`sum by (outcome, reason) (rate(parley_sends_total{outcome!="acked", instance=~"$instance"}[$__rate_interval]))`, "{{outcome}} {{reason}}")).
					panelLink("Error logs in Loki", errorLogs).
					desc("failed unavailable: the store did not answer. failed internal: a bug, also reported to Sentry. rejected: protocol error codes sent back to the client."),
			}},
			{title: "Latency", panels: []*Panel{
				heatmap("Delivery latency", unitSeconds,
					`sum by (le) (rate(parley_delivery_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval]))`).
					panelLink("Slow sends in Tempo", slowSends).
					desc("Time from a message's arrival at the server to its write on each recipient's socket. Exemplars are the traces of single sends; backfilled and caught-up deliveries carry none."),
				timeseries("Ack and delivery latency", unitSeconds,
					q(`histogram_quantile(0.99, sum by (le) (rate(parley_ack_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`, "ack p99"),
					q(`histogram_quantile(0.5, sum by (le) (rate(parley_ack_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`, "ack p50"),
					q(`histogram_quantile(0.99, sum by (le) (rate(parley_delivery_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`, "delivery p99"),
					q(`histogram_quantile(0.5, sum by (le) (rate(parley_delivery_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`, "delivery p50")).
					size(12, 9).
					withExemplars().
					thresholdLines(step{"transparent", nil}, step{"red", at(0.25)}).
					panelLink("Slow sends in Tempo", slowSends).
					desc("Ack: from reading a send to queueing its ack. Delivery: from arrival to the recipient's socket. The dashed line is the delivery SLO's 250 ms (no SLO covers ack latency)."),
			}},
			{title: "Replicas", panels: []*Panel{
				timeseries("Replicas up and ready", unitNone,
					q(`up{job="parley", instance=~"$instance"}`, "up {{instance}}"),
					q(`parley_ready{instance=~"$instance"}`, "ready {{instance}}")).
					size(12, 8).
					stepped().
					minMax(0, 1).
					dataLink("Logs of this replica", logsOfReplica).
					desc("up: Prometheus reached the replica. ready: its /readyz answered ready (0 while draining or when the store is unreachable)."),
				timeseries("CPU by replica", unitNone,
					q(`sum by (instance) (rate(process_cpu_seconds_total{job="parley", instance=~"$instance"}[$__rate_interval]))`, "{{instance}}")).
					size(12, 8).
					dataLink("Logs of this replica", logsOfReplica).
					desc("CPU cores in use."),
			}},
			{title: "Logs and traces", panels: []*Panel{
				logs("Error logs", `{service="parley", instance=~"$instance"} | json | level="ERROR"`).
					desc("request failed, frame failed and panic recovered lines. Open a line's details for its trace."),
				traceSearch("Error traces", `{resource.service.name="parley" && status=error}`).
					desc("Traces with a span in error: 5xx responses, frames that met an internal or unavailable error, failed publishes."),
			}},
		},
	}
}

// ackErrorRatio is the ack availability SLI over the selected replicas:
// failed sends against acked plus failed, nothing while there are no sends.
var ackErrorRatio = errorRatio("",
	`rate(parley_sends_total{outcome="failed", instance=~"$instance"}[$__rate_interval])`,
	`rate(parley_sends_total{outcome=~"acked|failed", instance=~"$instance"}[$__rate_interval])`)

// burnWindows are the windows of the burn-rate recording rules, shortest
// first, as alerts/slogen writes them.
var burnWindows = []string{"5m", "30m", "1h", "2h", "6h", "1d", "3d"}

// burnThresholds are the alerts' burn-rate factors (alerts/slogen): 14.4
// over 1h and 5m and 6 over 6h and 30m page; 3 over 1d and 2h and 1 over
// 3d and 6h open a ticket.
var burnThresholds = []step{{"green", nil}, {"yellow", at(1)}, {"orange", at(3)}, {"dark-orange", at(6)}, {"red", at(14.4)}}

// burnRate is how many times faster than the budget allows the SLO's
// errors arrived over a window.
func burnRate(window string) string {
	return `slo:sli_error:ratio_rate` + window + `{slo=~"$slo"} / on(slo) slo:error_budget:ratio{slo=~"$slo"}`
}

func slos() board {
	var burnRates []Target
	for _, w := range burnWindows {
		burnRates = append(burnRates, q(burnRate(w), w))
	}
	return board{
		uid:         "parley-slo",
		title:       "Parley / SLOs",
		description: "Each SLO's objective, its error budget and how fast it burns, against the thresholds of the burn-rate alerts.",
		from:        "now-24h",
		variables:   []obj{sloVariable()},
		sections: []section{
			{title: "Alerts", panels: []*Panel{
				firingAlerts().size(24, 6),
			}},
			{title: "$slo", repeat: "slo", panels: []*Panel{
				stat("Objective", unitRatio, q(`slo:objective:ratio{slo=~"$slo"}`, "")).
					decimals(2).
					neutral().
					desc("The share of good events the SLO promises over 30 days (alerts/slos.yaml)."),
				// Its colour is the budget's, beside it: each SLO has its
				// own objective, which a fixed threshold cannot follow.
				stat("SLI over 30 days", unitRatio, q(`1 - slo:sli_error:ratio_rate30d{slo=~"$slo"}`, "")).
					decimals(3).
					neutral().
					desc("The share of good events over the last 30 days. Against the objective, it is the error budget remaining beside it."),
				stat("Error budget remaining", unitRatio, q(`1 - (slo:sli_error:ratio_rate30d{slo=~"$slo"} / on(slo) slo:error_budget:ratio{slo=~"$slo"})`, "")).
					decimals(1).
					thresholds(step{"red", nil}, step{"orange", at(0)}, step{"green", at(0.25)}).
					desc("The share of the 30-day error budget not yet spent. Below zero the objective is missed."),
				bargauge("Burn rate now", unitNone, burnRates...).
					size(12, 5).
					decimals(2).
					minMax(0, 20).
					thresholds(burnThresholds...).
					desc("Errors over each window as a multiple of what the budget allows: 1 spends exactly the budget in 30 days. The alerts page at 14.4 (1h and 5m) and 6 (6h and 30m) and open a ticket at 3 (1d and 2h) and 1 (3d and 6h)."),
				timeseries("Burn rate by window", unitNone, burnRates...).
					size(12, 8).
					thresholdLines(burnThresholds...).
					desc("The dashed lines are the alerts' factors. An alert needs both of its windows above its line: the long one proves the burn matters, the short one that it is still going on."),
				timeseries("Error budget remaining over time", unitRatio,
					q(`1 - (slo:sli_error:ratio_rate30d{slo=~"$slo"} / on(slo) slo:error_budget:ratio{slo=~"$slo"})`, "remaining")).
					size(12, 8).
					thresholdLines(step{"transparent", nil}, step{"red", at(0)}).
					desc("Budget left over the 30 days ending at each point. A steady slope is normal spending; a cliff is an incident."),
				timeseries("Error ratio against budget", unitRatio,
					q(`slo:sli_error:ratio_rate1h{slo=~"$slo"}`, "error ratio 1h"),
					q(`slo:sli_error:ratio_rate5m{slo=~"$slo"}`, "error ratio 5m"),
					q(`slo:error_budget:ratio{slo=~"$slo"}`, "budget")).
					size(12, 8).
					desc("Error ratio above the budget line spends budget faster than 30 days allow."),
				timeseries("Events/s", unitNone,
					q(`slo:sli_total:rate5m{slo=~"$slo"}`, "5m"),
					q(`slo:sli_total:rate1h{slo=~"$slo"}`, "1h")).
					size(12, 8).
					desc("Traffic the SLI counts. The alerts ignore burns on a trickle of traffic (min_rate in alerts/slos.yaml)."),
			}},
		},
	}
}

func realtime() board {
	return board{
		uid:         "parley-realtime",
		title:       "Parley / Realtime internals",
		description: "How messages move: WebSocket connections and frames, the hub, the Redis bus between replicas, PostgreSQL group commit, and injected faults.",
		from:        "now-1h",
		variables:   []obj{instanceVariable()},
		sections: []section{
			{title: "Connections", panels: []*Panel{
				timeseries("Upgrades/s by result", unitNone,
					q(`sum by (result) (rate(parley_ws_upgrades_total{instance=~"$instance"}[$__rate_interval]))`, "{{result}}")).
					desc("WebSocket upgrade attempts on GET /ws. draining: the replica is shutting down; unauthorized: bad token or ticket."),
				timeseries("Disconnects/s by close code", unitNone,
					q(`sum by (code) (rate(parley_ws_disconnects_total{instance=~"$instance"}[$__rate_interval]))`, "{{code}}")).
					desc("4008: too slow. 4029: rate-limited too long. 1001: draining or going away. 1006: lost without a close frame. 1011: internal error."),
				timeseries("Slow consumers and rate limiting", unitNone,
					q(`sum by (instance) (rate(parley_ws_slow_consumer_closes_total{instance=~"$instance"}[$__rate_interval]))`, "slow consumer closes {{instance}}"),
					q(`sum by (instance) (rate(parley_ws_rate_limited_frames_total{instance=~"$instance"}[$__rate_interval]))`, "rate-limited frames {{instance}}")).
					dataLink("Logs of this replica", logsOfReplica).
					desc("A full send queue closes the connection (4008) rather than drop a frame, so slow consumer closes are also the send-queue drops. The client resumes with since."),
			}},
			{title: "Rate limits", panels: []*Panel{
				timeseries("Refusals/s by limit", unitNone,
					q(`sum by (limit) (rate(parley_rate_limited_total{instance=~"$instance"}[$__rate_interval]))`, "{{limit}}")).
					size(24, 8).
					desc("Requests and frames refused by each limit: 429 rate_limited with Retry-After over HTTP, an error frame or a close on the WebSocket. Each limit is per replica. signup, login: per client address; login_backoff: failed logins of one account from one address; rooms_create, history: per user and per address; conns_per_user, conns_per_addr: open sockets; ws_frames, ws_joins, ws_typing, sends: frames. A steady line from one limit is a client that does not back off, or a limit set too low for the traffic: docs/operations.md, Rate limits, gives each setting."),
			}},
			{title: "Frames", panels: []*Panel{
				timeseries("Frames in/s by type", unitNone,
					q(`sum by (type) (rate(parley_ws_frames_in_total{instance=~"$instance"}[$__rate_interval]))`, "{{type}}")).
					size(12, 8).
					desc("Frames read from clients. invalid: did not decode."),
				timeseries("Frames out/s by type", unitNone,
					q(`sum by (type) (rate(parley_ws_frames_out_total{instance=~"$instance"}[$__rate_interval]))`, "{{type}}")).
					size(12, 8).
					desc("Frames written to clients. message out against send in is the fan-out."),
			}},
			{title: "Hub", panels: []*Panel{
				timeseries("Rooms and memberships by replica", unitNone,
					q(`sum by (instance) (parley_hub_rooms{instance=~"$instance"})`, "rooms {{instance}}"),
					q(`sum by (instance) (parley_hub_members{instance=~"$instance"})`, "memberships {{instance}}")).
					dataLink("Logs of this replica", logsOfReplica).
					desc("Rooms with members on each replica, and memberships (a connection in two rooms counts twice)."),
				timeseries("Resumes/s by result", unitNone,
					q(`sum by (result) (rate(parley_ws_resumes_total{instance=~"$instance"}[$__rate_interval]))`, "{{result}}")).
					desc("Joins with since: clients catching up after a reconnect."),
				timeseries("Backfills", unitNone,
					q(`sum(rate(parley_backfills_total{instance=~"$instance"}[$__rate_interval]))`, "backfills/s"),
					q(`sum(rate(parley_backfilled_messages_total{instance=~"$instance"}[$__rate_interval]))`, "messages/s")).
					desc("Gaps in a room's sequence filled from the store. A steady rise means the broker is losing events."),
				timeseries("Catch-ups/s by result", unitNone,
					q(`sum by (result) (rate(parley_catchups_total{instance=~"$instance"}[$__rate_interval]))`, "{{result}}")).
					desc("Periodic comparisons of the replica's rooms with the store. error: the store is unreachable."),
				timeseries("Resyncs/s", unitNone,
					q(`sum(rate(parley_resyncs_total{instance=~"$instance"}[$__rate_interval]))`, "resyncs")).
					desc("Room subscriptions started or restarted, each followed by a read from the store."),
				timeseries("Presence rosters expired/s", unitNone,
					q(`sum(rate(parley_presence_rosters_expired_total{instance=~"$instance"}[$__rate_interval]))`, "expired")).
					desc("Another replica fell silent about a room and its users were taken offline."),
			}},
			{title: "Broker (Redis)", panels: []*Panel{
				timeseries("Events published and received/s", unitNone,
					q(`sum(rate(parley_bus_published_total{instance=~"$instance"}[$__rate_interval]))`, "published"),
					q(`sum(rate(parley_bus_received_total{instance=~"$instance"}[$__rate_interval]))`, "received")).
					desc("With n replicas and rooms spread over all of them, received approaches (n-1) times published."),
				timeseries("Publishes dropped/s by reason", unitNone,
					q(`sum by (reason) (rate(parley_bus_publish_dropped_total{instance=~"$instance"}[$__rate_interval]))`, "{{reason}}"),
					q(`sum(rate(parley_bus_malformed_total{instance=~"$instance"}[$__rate_interval]))`, "malformed received")).
					desc("error: Redis refused or was unreachable. queue_full: the publisher fell behind. Catch-ups make up for the lost messages."),
				timeseries("Bus lag p50 and p99", unitSeconds,
					q(`histogram_quantile(0.99, sum by (le) (rate(parley_bus_lag_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`, "p99"),
					q(`histogram_quantile(0.5, sum by (le) (rate(parley_bus_lag_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`, "p50")).
					desc("From a message's timestamp on the sending replica to its receipt here, including the replicas' clock difference."),
				timeseries("Reconnects/s", unitNone,
					q(`sum by (instance) (rate(parley_bus_reconnects_total{instance=~"$instance"}[$__rate_interval]))`, "{{instance}}")).
					dataLink("Logs of this replica", logsOfReplica).
					desc("Subscription connections made again after one failed."),
				timeseries("Subscribed channels by replica", unitNone,
					q(`sum by (instance) (parley_bus_subscribed_channels{instance=~"$instance"})`, "{{instance}}")).
					desc("Room channels subscribed, as Redis last confirmed. It should follow the hub's rooms."),
			}},
			{title: "Group commit (PostgreSQL)", panels: []*Panel{
				timeseries("Commit batch size p50 and p99", unitNone,
					q(`histogram_quantile(0.99, sum by (le) (rate(parley_store_commit_batch_size_bucket{instance=~"$instance"}[$__rate_interval])))`, "p99"),
					q(`histogram_quantile(0.5, sum by (le) (rate(parley_store_commit_batch_size_bucket{instance=~"$instance"}[$__rate_interval])))`, "p50")).
					desc("Messages per group commit. Batches grow with load: that is what keeps commits per second flat."),
				timeseries("Average commit batch size", unitNone,
					q(`sum(rate(parley_store_commit_batch_size_sum{instance=~"$instance"}[$__rate_interval])) / sum(rate(parley_store_commit_batch_size_count{instance=~"$instance"}[$__rate_interval]))`, "average")).
					desc("Messages stored per commit, on average."),
				timeseries("Commits/s", unitNone,
					q(`sum by (instance) (rate(parley_store_commit_batch_size_count{instance=~"$instance"}[$__rate_interval]))`, "{{instance}}")).
					desc("Group commits attempted by each replica's writers."),
			}},
			{title: "Faults", panels: []*Panel{
				timeseries("Active faults", unitNone,
					q(`max by (instance, fault) (parley_fault_active{instance=~"$instance"})`, "{{fault}} {{instance}}")).
					size(12, 8).
					stepped().
					minMax(0, 1).
					desc("1 while a fault is switched on. Only on servers started with PARLEY_FAULTS=on: a game day breaks Parley here on purpose."),
				timeseries("Fault hits/s", unitNone,
					q(`sum by (fault) (rate(parley_fault_injections_total{instance=~"$instance"}[$__rate_interval]))`, "{{fault}}")).
					size(12, 8).
					desc("Calls the active faults actually hit."),
			}},
		},
	}
}

func storeRuntime() board {
	return board{
		uid:         "parley-store-runtime",
		title:       "Parley / Store and runtime",
		description: "The store's calls and PostgreSQL pool, PostgreSQL and Redis as their exporters see them, then the Go runtime and the process of each replica.",
		from:        "now-1h",
		variables:   []obj{instanceVariable()},
		sections: []section{
			{title: "Store", panels: []*Panel{
				timeseries("Store call p99 by op", unitSeconds,
					q(`histogram_quantile(0.99, sum by (le, op) (rate(parley_store_operation_duration_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`, "{{op}}")).
					desc("On PostgreSQL, append includes waiting for its group commit."),
				timeseries("Store calls/s by op and outcome", unitNone,
					q(`sum by (op, outcome) (rate(parley_store_operation_duration_seconds_count{instance=~"$instance"}[$__rate_interval]))`, "{{op}} {{outcome}}")).
					desc("not_found, conflict, invalid and too_large are answers, not failures."),
				timeseries("Store failures/s by op", unitNone,
					q(`sum by (op, outcome) (rate(parley_store_operation_duration_seconds_count{outcome=~"unavailable|error", instance=~"$instance"}[$__rate_interval]))`, "{{op}} {{outcome}}")).
					panelLink("Error logs in Loki", errorLogs).
					panelLink("Error traces in Tempo", errorTraces).
					desc("unavailable includes timeouts and cancellations. These fail sends and spend the ack error budget."),
			}},
			{title: "PostgreSQL pool", panels: []*Panel{
				timeseries("Pool connections", unitNone,
					q(`sum by (instance, state) (parley_db_pool_connections{instance=~"$instance"})`, "{{state}} {{instance}}"),
					q(`sum by (instance) (parley_db_pool_max_connections{instance=~"$instance"})`, "max {{instance}}")).
					dataLink("Logs of this replica", logsOfReplica).
					desc("acquired close to max means requests queue for a connection."),
				timeseries("Acquires/s", unitNone,
					q(`sum by (instance) (rate(parley_db_pool_acquires_total{instance=~"$instance"}[$__rate_interval]))`, "all {{instance}}"),
					q(`sum by (instance) (rate(parley_db_pool_empty_acquires_total{instance=~"$instance"}[$__rate_interval]))`, "had to wait {{instance}}")).
					desc("Acquires that found no idle connection had to wait for one."),
				timeseries("Average acquire wait", unitSeconds,
					q(`sum by (instance) (rate(parley_db_pool_acquire_wait_seconds_total{instance=~"$instance"}[$__rate_interval])) / sum by (instance) (rate(parley_db_pool_acquires_total{instance=~"$instance"}[$__rate_interval]))`, "{{instance}}")).
					desc("Time spent waiting for a connection, per acquire."),
			}},
			postgresServer(),
			redisServer(),
			{title: "Go runtime", panels: []*Panel{
				timeseries("Goroutines", unitNone,
					q(`sum by (instance) (go_goroutines{job="parley", instance=~"$instance"})`, "{{instance}}")).
					dataLink("Logs of this replica", logsOfReplica).
					desc("Two per WebSocket connection plus a steady base. Growth without connections is a leak."),
				timeseries("Heap in use", unitBytes,
					q(`sum by (instance) (go_memstats_heap_inuse_bytes{job="parley", instance=~"$instance"})`, "in use {{instance}}"),
					q(`sum by (instance) (go_memstats_next_gc_bytes{job="parley", instance=~"$instance"})`, "next GC {{instance}}")).
					desc("Heap spans in use, and the heap size at which the next GC starts."),
				timeseries("Allocations", unitBytesPerSec,
					q(`sum by (instance) (rate(go_memstats_alloc_bytes_total{job="parley", instance=~"$instance"}[$__rate_interval]))`, "{{instance}}")).
					desc("Bytes allocated per second: what drives GC work."),
				timeseries("GC pause", unitSeconds,
					// A scrape in OpenMetrics (which exemplar storage asks
					// for) writes quantile="1.0", a text one quantile="1".
					q(`max by (instance) (go_gc_duration_seconds{quantile=~"1(\\.0)?", job="parley", instance=~"$instance"})`, "max {{instance}}"),
					q(`max by (instance) (go_gc_duration_seconds{quantile="0.5", job="parley", instance=~"$instance"})`, "median {{instance}}")).
					desc("Stop-the-world pause of recent GC cycles."),
				timeseries("GC cycles/s", unitNone,
					q(`sum by (instance) (rate(go_gc_duration_seconds_count{job="parley", instance=~"$instance"}[$__rate_interval]))`, "{{instance}}")),
				timeseries("OS threads", unitNone,
					q(`sum by (instance) (go_threads{job="parley", instance=~"$instance"})`, "{{instance}}")).
					desc("Threads the runtime created. A climb means goroutines blocked in system calls or cgo."),
			}},
			{title: "Process", panels: []*Panel{
				timeseries("CPU", unitNone,
					q(`sum by (instance) (rate(process_cpu_seconds_total{job="parley", instance=~"$instance"}[$__rate_interval]))`, "{{instance}}")).
					dataLink("Logs of this replica", logsOfReplica).
					desc("CPU cores in use."),
				timeseries("Resident memory", unitBytes,
					q(`sum by (instance) (process_resident_memory_bytes{job="parley", instance=~"$instance"})`, "{{instance}}")),
				timeseries("File descriptors", unitNone,
					q(`sum by (instance) (process_open_fds{job="parley", instance=~"$instance"})`, "open {{instance}}"),
					q(`sum by (instance) (process_max_fds{job="parley", instance=~"$instance"})`, "max {{instance}}")).
					desc("Every WebSocket holds one. Running out refuses new connections."),
				timeseries("Panics recovered/s", unitNone,
					q(`sum by (where) (rate(parley_panics_recovered_total{instance=~"$instance"}[$__rate_interval]))`, "{{where}}")).
					size(24, 6).
					panelLink("Error logs in Loki", errorLogs).
					desc("Panics in an HTTP handler or a frame's handling. Each is logged with its stack and sent to Sentry."),
			}},
		},
	}
}

func loadTest() board {
	return board{
		uid:         "parley-loadtest",
		title:       "Parley / Load test",
		description: "A load test as the servers see it, and, in the collapsed row at the bottom, as the load generator sees it.",
		from:        "now-30m",
		variables:   []obj{instanceVariable()},
		sections: []section{
			{title: "Servers", panels: []*Panel{
				replicasUp("Replicas up"),
				stat("Connections", unitNone, q(`sum(parley_ws_connections{instance=~"$instance"})`, "")).
					neutral(),
				stat("Sends/s", unitNone, q(`sum(rate(parley_sends_total{instance=~"$instance"}[$__rate_interval]))`, "")).
					neutral(),
				stat("Deliveries/s", unitNone, q(`sum(rate(parley_delivery_latency_seconds_count{instance=~"$instance"}[$__rate_interval]))`, "")).
					neutral().
					desc("Messages written to recipients' sockets: sends times the room size."),
				stat("Ack error ratio", unitRatio, q(ackErrorRatio, "")).
					decimals(3).
					thresholds(step{"green", nil}, step{"orange", at(0.001)}, step{"red", at(0.01)}).
					noValue("No sends"),
				stat("Delivery p99", unitSeconds, q(`histogram_quantile(0.99, sum by (le) (rate(parley_delivery_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`, "")).
					thresholds(step{"green", nil}, step{"red", at(0.25)}),
				timeseries("Sends/s by outcome", unitNone,
					q(`sum by (outcome) (rate(parley_sends_total{instance=~"$instance"}[$__rate_interval]))`, "{{outcome}}")).
					size(12, 8),
				timeseries("Ack error ratio", unitRatio,
					q(ackErrorRatio, "failed / (acked + failed)")).
					size(12, 8).
					thresholdLines(step{"transparent", nil}, step{"red", at(0.001)}).
					panelLink("Error logs in Loki", errorLogs).
					desc("The dashed line is the ack availability SLO's budget, 0.1%."),
				timeseries("Ack latency", unitSeconds,
					q(`histogram_quantile(0.999, sum by (le) (rate(parley_ack_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`, "p99.9"),
					q(`histogram_quantile(0.99, sum by (le) (rate(parley_ack_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`, "p99"),
					q(`histogram_quantile(0.5, sum by (le) (rate(parley_ack_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`, "p50")).
					size(12, 8).
					withExemplars().
					panelLink("Slow sends in Tempo", slowSends),
				timeseries("Delivery latency", unitSeconds,
					q(`histogram_quantile(0.999, sum by (le) (rate(parley_delivery_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`, "p99.9"),
					q(`histogram_quantile(0.99, sum by (le) (rate(parley_delivery_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`, "p99"),
					q(`histogram_quantile(0.5, sum by (le) (rate(parley_delivery_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`, "p50")).
					size(12, 8).
					withExemplars().
					thresholdLines(step{"transparent", nil}, step{"red", at(0.25)}).
					panelLink("Slow sends in Tempo", slowSends).
					desc("The dashed line is the delivery SLO's 250 ms."),
				timeseries("Connections by replica", unitNone,
					q(`sum by (instance) (parley_ws_connections{instance=~"$instance"})`, "{{instance}}")).
					size(12, 8).
					dataLink("Logs of this replica", logsOfReplica),
				timeseries("CPU by replica", unitNone,
					q(`sum by (instance) (rate(process_cpu_seconds_total{job="parley", instance=~"$instance"}[$__rate_interval]))`, "{{instance}}")).
					size(12, 8).
					dataLink("Logs of this replica", logsOfReplica).
					desc("CPU cores in use. A replica at its limit while others idle means the load is not spread."),
				timeseries("Slow consumers and rate limiting", unitNone,
					q(`sum(rate(parley_ws_slow_consumer_closes_total{instance=~"$instance"}[$__rate_interval]))`, "slow consumer closes"),
					q(`sum(rate(parley_ws_rate_limited_frames_total{instance=~"$instance"}[$__rate_interval]))`, "rate-limited frames")).
					size(24, 6).
					desc("Nonzero means the generator is pushing harder than PARLEY_CONN_RATE or PARLEY_USER_RATE allow, or its clients read too slowly."),
			}},
			// The load generator's own metrics do not exist yet on any
			// server, so their panels stay in a collapsed row, which
			// contract tests skip by its title.
			{title: loadGeneratorRow, collapsed: true, panels: []*Panel{
				timeseries("Generator sends/s by outcome", unitNone,
					q(`sum by (outcome) (rate(parley_loadtest_sends_total[$__rate_interval]))`, "{{outcome}}")).
					size(12, 8).
					desc("Load generator metric. Sends as the generator saw them end."),
				timeseries("Generator connections", unitNone,
					q(`sum(parley_loadtest_connections)`, "open")).
					size(12, 8).
					desc("Load generator metric. WebSockets the generator holds open."),
				timeseries("Ack latency seen by clients", unitSeconds,
					q(`histogram_quantile(0.999, sum by (le) (rate(parley_loadtest_ack_latency_seconds_bucket[$__rate_interval])))`, "p99.9"),
					q(`histogram_quantile(0.99, sum by (le) (rate(parley_loadtest_ack_latency_seconds_bucket[$__rate_interval])))`, "p99"),
					q(`histogram_quantile(0.5, sum by (le) (rate(parley_loadtest_ack_latency_seconds_bucket[$__rate_interval])))`, "p50")).
					size(12, 8).
					withExemplars().
					desc("Load generator metric. From writing a send to reading its ack, network included: compare with the server's view above."),
				timeseries("Delivery latency seen by clients", unitSeconds,
					q(`histogram_quantile(0.999, sum by (le) (rate(parley_loadtest_delivery_latency_seconds_bucket[$__rate_interval])))`, "p99.9"),
					q(`histogram_quantile(0.99, sum by (le) (rate(parley_loadtest_delivery_latency_seconds_bucket[$__rate_interval])))`, "p99"),
					q(`histogram_quantile(0.5, sum by (le) (rate(parley_loadtest_delivery_latency_seconds_bucket[$__rate_interval])))`, "p50")).
					size(12, 8).
					withExemplars().
					desc("Load generator metric. From writing a send to reading the message on another client."),
			}},
		},
	}
}
