package systemtest

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/parleychat/parley/internal/testenv"
)

// The exporter versions whose series names are the contract
// (dashboards/README.md): Debian's packages, and the images that compose
// and Kubernetes pin.
var exporterVersions = map[string]*regexp.Regexp{
	"prometheus-postgres-exporter": regexp.MustCompile(`version 0\.11\.1\b`),
	"prometheus-redis-exporter":    regexp.MustCompile(`Exporter 1\.45\.0\b`),
}

// exporterNames returns every series name that Debian's postgres_exporter
// and redis_exporter expose against the test PostgreSQL and Redis, with a
// standby streaming from that PostgreSQL so that the replication series
// exist too. TestMetricContract adds them to the replicas' names: every
// exporter series a panel or rule names must be among them.
func exporterNames(t *testing.T) map[string]bool {
	t.Helper()
	ex := startExporters(t)
	names := map[string]bool{}
	for _, addr := range []string{ex.postgres, ex.redis} {
		for name := range exposedNames(t, "http://"+addr+"/metrics") {
			names[name] = true
		}
	}
	return names
}

// exporters are the /metrics addresses (host:port) of running exporters.
type exporters struct{ postgres, redis string }

// startExporters runs Debian's exporters, as the compose stack runs the
// images of the same versions (defaults but for the addresses), against a
// fresh database on the test PostgreSQL and against the test Redis, with a
// standby streaming from that PostgreSQL. It returns once both answer and
// the replication series are on the PostgreSQL exporter's page; the test's
// end stops all three.
func startExporters(t *testing.T) exporters {
	t.Helper()
	pgBin := testenv.Find(t, "prometheus-postgres-exporter", "prometheus-postgres-exporter")
	redisBin := testenv.Find(t, "prometheus-redis-exporter", "prometheus-redis-exporter")
	for bin, want := range map[string]*regexp.Regexp{pgBin: exporterVersions["prometheus-postgres-exporter"], redisBin: exporterVersions["prometheus-redis-exporter"]} {
		out, _ := exec.Command(bin, "--version").CombinedOutput()
		if !want.Match(out) {
			t.Fatalf("%s --version says %q, want %s: the pinned images and dashboards/README.md name the contract's version", bin, out, want)
		}
	}
	dsn := testenv.PostgresURL(t)
	testenv.StartStandby(t, dsn)

	var ex exporters
	pg := exec.Command(pgBin, "--web.listen-address=127.0.0.1:0")
	pg.Env = []string{"DATA_SOURCE_NAME=" + dsn}
	ex.postgres = startDaemon(t, "postgres_exporter", pg, promListening)

	// redis_exporter logs the address it was given, not the one it got, so
	// it gets a port where nothing listened a moment ago.
	ex.redis = startDaemon(t, "redis_exporter", exec.Command(redisBin,
		"-redis.addr", testenv.RedisURL(t), "-web.listen-address", testenv.ClosedAddr(t)), redisExporterListening)

	testenv.Eventually(t, "the exporters answer, the standby in pg_stat_replication", func() bool {
		resp, err := http.Get("http://" + ex.redis + "/metrics")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK &&
			exposedNames(t, "http://"+ex.postgres+"/metrics")["pg_stat_replication_pg_wal_lsn_diff"]
	})
	return ex
}

var redisExporterListening = regexp.MustCompile(`msg="Providing metrics at ([^/]+)/metrics"`)

// scrapeExporters starts the exporters and has the Prometheus whose file_sd
// directory is targets scrape them as jobs postgres and redis, as
// alerts/prometheus.yml expects.
func scrapeExporters(t *testing.T, targets string) {
	t.Helper()
	ex := startExporters(t)
	writeTargets(t, filepath.Join(targets, "postgres.yml"), ex.postgres)
	writeTargets(t, filepath.Join(targets, "redis.yml"), ex.redis)
}
