# Developer and CI entry points. Integration tests read TEST_DATABASE_URL and
# TEST_REDIS_URL from the environment (.ci/run sets them); nothing here does.

.PHONY: run build test lint bench bench-compare cluster alerts dashboards k8s loadtest observe observe-down observe-logs fuzz clean

# The server on :8080 with the embedded in-memory store.
run:
	go run ./server

# A static binary in bin/.
build:
	CGO_ENABLED=0 go build -trimpath -o bin/parley ./server

# A short fuzz of the frame decoder, then every test under the race detector,
# then the idle-memory bound without it.
# The fuzz budget is a count, not a duration: Go 1.26's fuzz coordinator can
# fail a timed run with "context deadline exceeded" at the deadline, having
# found nothing (go.dev/issue/75804, fixed in Go 1.27).
# The race detector changes what allocations and goroutines cost, so the
# memory test is built only without it (//go:build !race) and needs a run
# of its own.
test:
	go test -run='^$$' -fuzz=FuzzDecodeFrame -fuzztime=100000x ./server/internal/httpapi/
	go test -race -count=1 ./...
	go test -count=1 -run 'TestIdleMemory' ./server/internal/app/

# golangci-lint is pinned and built from source into bin/, so every machine
# lints with the same version (the first build takes a few minutes).
GOLANGCI_LINT_VERSION := v2.6.2
GOLANGCI_LINT := bin/tools/$(GOLANGCI_LINT_VERSION)/golangci-lint

# Vet, fail listing the files gofmt would change, then golangci-lint
# (.golangci.yml).
lint: $(GOLANGCI_LINT)
	go vet ./...
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt -w needed on:"; echo "$$unformatted"; exit 1; fi
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	GOBIN=$(CURDIR)/$(dir $@) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

bench:
	go test -run='^$$' -bench=. -benchmem -benchtime=2s ./server/... ./loadtest/...

# Parley beside a bare hub under the same load, in one table (docs/performance.md).
bench-compare:
	go run ./bench

# Recording rules, burn-rate alerts and promtool unit tests from
# alerts/slos.yaml into alerts/generated/ (commit the result: a test fails
# when it is stale).
alerts:
	go run ./alerts/slogen

# The Grafana dashboards from dashboards/dashgen into
# dashboards/*.json (commit the result: a test fails when it is stale).
dashboards:
	go run ./dashboards/dashgen

# The Kubernetes PrometheusRule and dashboard ConfigMaps from alerts/ and
# dashboards/ into k8s/base/generated/ (commit the result: a test fails
# when they differ).
k8s:
	go run ./k8s/k8sgen

# The whole stack on this machine with docker compose (compose/compose.yaml):
# two replicas behind a load balancer, PostgreSQL and Redis with their
# exporters, Prometheus, Alertmanager, the heartbeat, Grafana, Loki, Tempo,
# GlitchTip, the synthetic canary and a steady load. Set
# SLACK_WEBHOOK_URL_PAGES and SLACK_WEBHOOK_URL_TICKETS (one Slack webhook
# per channel) to page a real Slack; without them alerts go to the local
# receiver.
COMPOSE := docker compose -f compose/compose.yaml
observe:
	$(COMPOSE) up -d --build --wait
	@echo
	@echo "Parley (through the load balancer)  http://localhost:8080"
	@echo "Grafana (admin / admin)             http://localhost:3000"
	@echo "Prometheus                          http://localhost:9090"
	@echo "Alertmanager                        http://localhost:9093"
	@echo "Slack receiver (alerts posted)      http://localhost:8099/messages"
	@echo "Heartbeat (the Watchdog's switch)   http://localhost:8098/"
	@echo "GlitchTip (admin@localhost / parley-admin) http://localhost:8000"
	@echo "Loki / Tempo (for Grafana)          http://localhost:3100  http://localhost:3200"

observe-down:
	$(COMPOSE) down

observe-logs:
	$(COMPOSE) logs -f --tail=100

# The load generator against TARGET (one URL, or several comma-separated)
# with SCENARIO; EXTRA passes more flags, e.g. EXTRA="-max-rate 5000".
TARGET ?= http://127.0.0.1:8080
SCENARIO ?= loadtest/scenarios/smoke.yaml
loadtest:
	mkdir -p bin && go run ./loadtest -target $(TARGET) -scenario $(SCENARIO) -json bin/loadtest-result.json -html bin/loadtest-report.html $(EXTRA)

# Three replicas under chat load through each failure scenario, printing the
# ledger of every scenario (they also run in make test, quietly).
cluster:
	go test -race -count=1 -v -run='^TestCluster' ./server/systemtest/

# A longer fuzz run (a few minutes); new crashers land in testdata/fuzz/
# next to the test.
fuzz:
	go test -run='^$$' -fuzz=FuzzDecodeFrame -fuzztime=2000000x ./server/internal/httpapi/

clean:
	rm -rf bin/
