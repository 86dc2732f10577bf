package systemtest

import (
	"path/filepath"
	"testing"

	"github.com/parleychat/parley/internal/testenv"
)

// alertmanagerNames returns the series names that Debian's Alertmanager
// exposes running the shipped alertmanager.yml, for the metric contract:
// the rules read its notification counters (ParleyNotificationsFailing),
// which exist per integration from its start, at zero. The images that
// compose and Kubernetes run (0.27) keep these names and add labels
// (receiver_name, reason) that the rules sum away.
func alertmanagerNames(t *testing.T) map[string]bool {
	t.Helper()
	secrets := t.TempDir()
	nowhere := "http://" + testenv.ClosedAddr(t)
	for key := range webhookOfKey {
		writeFile(t, filepath.Join(secrets, key), nowhere+"/hooks/"+key)
	}
	am, _ := startAlertmanager(t, alertmanagerBinary(t), secrets, nowhere)
	return exposedNames(t, "http://"+am+"/metrics")
}
