package main

// The firing-alerts table, on the Overview and the SLO board: what is
// wrong now, most severe first, each alert one click from its runbook.

// runbookBase is where the runbooks live, the same address alerts/slogen
// and alerts/rules give in each alert's runbook_url. The table links a
// row to runbookBase + alertname + ".md": ALERTS carries an alert's labels
// but not its annotations, so the link is built from the name, and the
// tests check that every shipped alert's runbook_url is exactly that.
const runbookBase = "https://github.com/parleychat/parley/blob/main/alerts/runbooks/"

// watchdog is the alert that always fires, to prove that the path from
// Prometheus through Alertmanager works. It is not a problem, so no
// table of firing alerts shows it: a table that is never empty teaches
// people to stop reading it.
const watchdog = "Watchdog"

// firingAlertsQuery selects Parley's firing alerts, the Watchdog left out.
// Every Parley alert carries service="parley" (alerts/rules and the SLO
// rules; the tests check it), which keeps out the other alerts of a
// shared Prometheus.
const firingAlertsQuery = `ALERTS{service="parley", alertstate="firing", alertname!="` + watchdog + `"}`

// severityColours are the severities of alerts/alertmanager.yml's routes:
// critical pages, warning opens a ticket.
var severityColours = obj{
	"critical": obj{"color": "red", "index": 0},
	"warning":  obj{"color": "orange", "index": 1},
}

// firingAlerts is a table of the alerts firing now, one row per alert
// with its labels, pages first. Its alert names link to their runbooks.
func firingAlerts() *Panel {
	p := table("Firing alerts", instant(firingAlertsQuery),
		"Time", "Value", "__name__", "alertstate", "service")
	p.Transformations[0]["options"].(obj)["indexByName"] = obj{"alertname": 0, "severity": 1}
	// "critical" sorts before "warning".
	p.Options["sortBy"] = []obj{{"displayName": "severity", "desc": false}}
	p.FieldConfig["overrides"] = []obj{
		{
			"matcher": obj{"id": "byName", "options": "alertname"},
			"properties": []obj{{"id": "links", "value": []Link{{
				Title:       "Runbook",
				URL:         runbookBase + "${__value.raw}.md",
				TargetBlank: true,
			}}}},
		},
		{
			"matcher": obj{"id": "byName", "options": "severity"},
			"properties": []obj{
				{"id": "mappings", "value": []obj{{"type": "value", "options": severityColours}}},
				{"id": "custom.cellOptions", "value": obj{"type": "color-text"}},
			},
		},
	}
	return p.noValue("No alerts firing").
		desc("Parley's alerts firing in Prometheus now, pages (critical) before tickets (warning). An alert's name opens its runbook. The Watchdog, which always fires to prove that alerting works, is left out.")
}
