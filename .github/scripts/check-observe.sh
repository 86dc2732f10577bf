#!/usr/bin/env bash
# check-observe.sh proves, through each component's own API, that the stack
# `make observe` started is wired end to end: every service is up (and
# healthy where it has a healthcheck), Grafana has its provisioned dashboards
# and data sources (and can reach them), Prometheus scrapes both replicas and
# has loaded the rules, the Watchdog went through Alertmanager to the
# heartbeat receiver (the dead man's switch) without it raising its alarm,
# Tempo holds a trace of the server and Loki a log line of the
# load generator's traffic.
#
#   make observe && bash .github/scripts/check-observe.sh
#
# Each check is retried (ATTEMPTS times, INTERVAL seconds apart), since
# the first scrape, trace and log line take a while to land; the script
# exits 1 naming the first check that never passed. The addresses are those
# make observe publishes and can be overridden from the environment.
set -euo pipefail

COMPOSE_FILE=${COMPOSE_FILE:-compose/compose.yaml}
CHAT_URL=${CHAT_URL:-http://localhost:8080}
GRAFANA_URL=${GRAFANA_URL:-http://localhost:3000}
GRAFANA_AUTH=${GRAFANA_AUTH:-admin:${GRAFANA_ADMIN_PASSWORD:-admin}}
PROMETHEUS_URL=${PROMETHEUS_URL:-http://localhost:9090}
ALERTMANAGER_URL=${ALERTMANAGER_URL:-http://localhost:9093}
SLACKRECV_URL=${SLACKRECV_URL:-http://localhost:8099}
HEARTBEAT_URL=${HEARTBEAT_URL:-http://localhost:8098}
LOKI_URL=${LOKI_URL:-http://localhost:3100}
TEMPO_URL=${TEMPO_URL:-http://localhost:3200}
GLITCHTIP_URL=${GLITCHTIP_URL:-http://localhost:8000}
ATTEMPTS=${ATTEMPTS:-60}
INTERVAL=${INTERVAL:-5}

# The long-running services of compose/compose.yaml; the one-shot ones
# (tempo-init, glitchtip-setup) may have exited, but only with status 0.
EXPECT_SERVICES=${EXPECT_SERVICES:-postgres redis parley-1 parley-2 lb prometheus alertmanager slackrecv heartbeat grafana loki alloy tempo glitchtip glitchtip-worker loadgen}
DASHBOARDS=(parley-overview parley-slo parley-realtime parley-store-runtime parley-loadtest)
DATASOURCES=(prometheus loki tempo)
# Sign-ups, room joins and history reads of the load generator; probes (at
# debug level, and excluded in case LOG_LEVEL=debug) are not its traffic.
# Per replica: the instance label must be the one Prometheus gives it, or
# the dashboards' $instance selects no logs (dashboards/README.md).
LOKI_INSTANCES=${LOKI_INSTANCES:-parley-1:9091 parley-2:9091}
LOKI_FILTER='|= "http request" != "/readyz" != "/healthz"'

# The reason the last attempt of a check failed, kept in a file because
# most checks call get inside a command substitution (a subshell).
reason_file=$(mktemp)
trap 'rm -f "$reason_file"' EXIT

# fail REASON records why the current attempt failed, and fails.
fail() {
	printf '%s' "$*" >"$reason_file"
	return 1
}

# retry NAME CHECK [ARGS...] runs CHECK until it succeeds, at most ATTEMPTS
# times, and exits the script with CHECK's last reason if it never does.
retry() {
	local name=$1 i
	shift
	for ((i = 1; i <= ATTEMPTS; i++)); do
		: >"$reason_file"
		if "$@"; then
			echo "ok: $name"
			return 0
		fi
		sleep "$INTERVAL"
	done
	echo "FAIL: $name, after $ATTEMPTS attempts: $(cat "$reason_file")" >&2
	exit 1
}

# get URL [CURL ARGS...] prints the body of a successful GET, or fails.
get() {
	local url=$1 body
	shift
	if ! body=$(curl -fsS --max-time 10 "$@" "$url" 2>&1); then
		fail "GET $url: $body"
		return 1
	fi
	printf '%s' "$body"
}

grafana() { get "$GRAFANA_URL$1" -u "$GRAFANA_AUTH"; }

check_services() {
	local ps bad missing svc
	# docker compose ps prints a JSON array (older releases) or one object
	# a line (newer ones); -s and the first test take either.
	ps=$(docker compose -f "$COMPOSE_FILE" ps --all --format json | jq -s 'if length == 1 and (.[0] | type) == "array" then .[0] else . end') ||
		{ fail "docker compose ps failed"; return 1; }
	bad=$(jq -r '.[] | select(
		(.State == "running" and (.Health // "") != "" and .Health != "healthy") or
		(.State == "exited" and .ExitCode != 0) or
		(.State != "running" and .State != "exited"))
		| "\(.Service): \(.State) \(.Health // "") exit \(.ExitCode)"' <<<"$ps")
	[[ -z "$bad" ]] || { fail "not healthy: $bad"; return 1; }
	missing=()
	for svc in $EXPECT_SERVICES; do
		jq -e --arg s "$svc" 'any(.[]; .Service == $s and .State == "running")' <<<"$ps" >/dev/null || missing+=("$svc")
	done
	((${#missing[@]} == 0)) || fail "not running: ${missing[*]}"
}

check_chat() { get "$CHAT_URL/readyz" >/dev/null; }

check_grafana_dashboards() {
	local uids uid
	uids=$(grafana '/api/search?type=dash-db&limit=5000' | jq -r '.[].uid') || return 1
	for uid in "${DASHBOARDS[@]}"; do
		grep -qx "$uid" <<<"$uids" || { fail "dashboard $uid missing; have: $(tr '\n' ' ' <<<"$uids")"; return 1; }
	done
}

check_grafana_datasources() {
	local uids uid health
	uids=$(grafana /api/datasources | jq -r '.[].uid') || return 1
	for uid in "${DATASOURCES[@]}"; do
		grep -qx "$uid" <<<"$uids" || { fail "data source $uid missing; have: $(tr '\n' ' ' <<<"$uids")"; return 1; }
	done
	# Grafana reaches Prometheus and Loki (their health checks query them).
	for uid in prometheus loki; do
		health=$(grafana "/api/datasources/uid/$uid/health" | jq -r .status) || return 1
		[[ "$health" == OK ]] || { fail "data source $uid health: $health"; return 1; }
	done
}

# The links between signals: exemplars and log lines open traces, spans
# open their logs.
check_grafana_links() {
	local ds
	ds=$(grafana /api/datasources/uid/prometheus) || return 1
	jq -e 'any(.jsonData.exemplarTraceIdDestinations[]?; .datasourceUid == "tempo")' <<<"$ds" >/dev/null ||
		{ fail "Prometheus exemplars do not link to tempo"; return 1; }
	ds=$(grafana /api/datasources/uid/loki) || return 1
	jq -e 'any(.jsonData.derivedFields[]?; .datasourceUid == "tempo")' <<<"$ds" >/dev/null ||
		{ fail "Loki's derived fields do not link to tempo"; return 1; }
	ds=$(grafana /api/datasources/uid/tempo) || return 1
	jq -e '.jsonData.tracesToLogsV2.datasourceUid == "loki"' <<<"$ds" >/dev/null ||
		fail "Tempo's traces do not link to loki"
}

check_prometheus_targets() {
	local up
	up=$(get "$PROMETHEUS_URL/api/v1/targets?state=active" |
		jq '[.data.activeTargets[] | select(.labels.job == "parley" and .health == "up") | .labels.instance] | unique | length') || return 1
	((up >= 2)) || fail "$up parley targets up, want 2"
}

check_prometheus_rules() {
	local groups ams
	groups=$(get "$PROMETHEUS_URL/api/v1/rules" | jq '.data.groups | length') || return 1
	((groups > 0)) || { fail "no rule groups loaded"; return 1; }
	ams=$(get "$PROMETHEUS_URL/api/v1/alertmanagers" | jq '.data.activeAlertmanagers | length') || return 1
	((ams > 0)) || fail "no Alertmanager discovered"
}

check_alertmanager() { get "$ALERTMANAGER_URL/-/ready" >/dev/null; }

# The dead man's switch always fires: the heartbeat receiver hearing it
# proves Prometheus -> Alertmanager -> webhook, and its alarm not raised
# that it keeps coming. (Its alarm, and every page and ticket, go to
# Slack: the local receiver unless SLACK_WEBHOOK_URL_PAGES and _TICKETS
# are set.)
check_watchdog() {
	local status
	status=$(get "$HEARTBEAT_URL/") || return 1
	jq -e '.heartbeats > 0' <<<"$status" >/dev/null ||
		{ fail "the heartbeat receiver has heard no Watchdog yet"; return 1; }
	jq -e '.alarm == false' <<<"$status" >/dev/null ||
		fail "the heartbeat receiver's alarm is raised: the Watchdog stopped coming"
}

check_tempo() {
	local search id
	# tags= is Tempo's logfmt search; q= the TraceQL one.
	search=$(get "$TEMPO_URL/api/search?tags=service.name%3Dparley&limit=5") || return 1
	id=$(jq -r '.traces[0].traceID // empty' <<<"$search")
	if [[ -z "$id" ]]; then
		search=$(get "$TEMPO_URL/api/search" -G --data-urlencode 'q={resource.service.name="parley"}' --data-urlencode limit=5) || return 1
		id=$(jq -r '.traces[0].traceID // empty' <<<"$search")
	fi
	[[ -n "$id" ]] || { fail "no trace of service.name=parley yet"; return 1; }
	get "$TEMPO_URL/api/traces/$id" >/dev/null
}

check_loki() {
	local now lines instance query
	now=$(date +%s)
	for instance in $LOKI_INSTANCES; do
		query="{service=\"parley\", instance=\"$instance\"} $LOKI_FILTER"
		lines=$(get "$LOKI_URL/loki/api/v1/query_range" -G \
			--data-urlencode "query=$query" \
			--data-urlencode "start=$(((now - 3600) * 1000000000))" \
			--data-urlencode "end=$(((now + 60) * 1000000000))" \
			--data-urlencode limit=5 |
			jq '[.data.result[].values[]] | length') || return 1
		((lines > 0)) || fail "no log line for $query yet"
	done
}

check_glitchtip() { get "$GLITCHTIP_URL/" -L >/dev/null; }

retry "compose services running and healthy" check_services
retry "chat answers through the load balancer" check_chat
retry "Grafana has the dashboards ${DASHBOARDS[*]}" check_grafana_dashboards
retry "Grafana has the data sources ${DATASOURCES[*]}" check_grafana_datasources
retry "Grafana links metrics, logs and traces" check_grafana_links
retry "Prometheus scrapes both replicas (job=parley)" check_prometheus_targets
retry "Prometheus has its rules and Alertmanager" check_prometheus_rules
retry "Alertmanager is ready" check_alertmanager
retry "the Watchdog reached the heartbeat receiver" check_watchdog
retry "Tempo holds a trace of parley" check_tempo
retry "Loki holds a log line of the load generator's traffic" check_loki
retry "GlitchTip answers" check_glitchtip
echo "check-observe: every check passed"
