package systemtest

import (
	"bufio"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/parleychat/parley/internal/testenv"
)

// newerPostgresSettings are series that the rules read for settings of a
// newer PostgreSQL than the test server, by the major version that added
// the setting. postgres_exporter exposes every numeric row of pg_settings
// as pg_settings_<name> (0.11.1 on PostgreSQL 15: 248 rows, 248 series),
// so the series exists wherever the setting does, and the rules fall back
// to 0 where it does not.
var newerPostgresSettings = map[string]int{
	"pg_settings_reserved_connections": 16,
}

// postgresSettingsNotHere returns the names of newerPostgresSettings that
// the test PostgreSQL is too old to have, by its server_version_num as
// Debian's postgres_exporter reports it: TestMetricContract excuses those.
// On a server new enough none is excused, and the contract checks them
// like any other series.
func postgresSettingsNotHere(t *testing.T) map[string]bool {
	t.Helper()
	bin := testenv.Find(t, "prometheus-postgres-exporter", "prometheus-postgres-exporter")
	pg := exec.Command(bin, "--web.listen-address=127.0.0.1:0")
	pg.Env = []string{"DATA_SOURCE_NAME=" + testenv.PostgresURL(t)}
	addr := startDaemon(t, "postgres_exporter", pg, promListening)

	version := 0
	testenv.Eventually(t, "pg_settings_server_version_num on postgres_exporter", func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "pg_settings_server_version_num{"); ok {
				_, value, _ := strings.Cut(rest, "} ")
				v, err := strconv.ParseFloat(value, 64)
				version = int(v)
				return err == nil && version > 0
			}
		}
		return false
	})
	notHere := map[string]bool{}
	for name, major := range newerPostgresSettings {
		if version/10000 < major {
			notHere[name] = true
			t.Logf("%s is not checked: the test PostgreSQL is %d, the setting came in %d", name, version, major)
		}
	}
	return notHere
}
