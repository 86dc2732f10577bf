package main

// The store/runtime board's view of the datastores through their
// exporters: postgres_exporter 0.11 (job postgres) and redis_exporter 1.45
// (job redis), whose series names the metric contract test proves
// (README.md). Their series belong to the datastores, not to a replica, so
// they take the job filter and not the instance variable.

// upStat shows an exporter's up series (pg_up, redis_up) per target as
// "up" or "down", and says so when there is no series at all: an exporter
// that is not scraped must not look like an empty, quiet panel.
func upStat(title, expr string) *Panel {
	p := stat(title, unitNone, q(expr, "{{instance}}")).
		thresholds(step{"red", nil}, step{"green", at(1)})
	p.Options["graphMode"] = "none"
	d := p.defaults()
	d["noValue"] = "not scraped"
	d["mappings"] = []obj{{
		"type": "value",
		"options": obj{
			"0": obj{"text": "down", "color": "red", "index": 0},
			"1": obj{"text": "up", "color": "green", "index": 1},
		},
	}}
	return p
}

func postgresServer() section {
	return section{title: "PostgreSQL server", panels: []*Panel{
		upStat("PostgreSQL up", `min by (instance) (pg_up{job="postgres"})`).
			size(4, 8).
			desc("Whether postgres_exporter could connect to PostgreSQL at its last scrape. \"not scraped\": Prometheus has no exporter target (ParleyPostgresDown fires when one stops answering)."),
		timeseries("PostgreSQL connections", unitNone,
			q(`sum by (instance) (pg_stat_activity_count{job="postgres"})`, "open {{instance}}"),
			q(`sum by (instance, state) (pg_stat_activity_count{job="postgres", state=~"active|idle in transaction"})`, "{{state}} {{instance}}"),
			q(`max by (instance) (pg_settings_max_connections{job="postgres"} - pg_settings_superuser_reserved_connections{job="postgres"})`, "max for non-superusers {{instance}}")).
			size(10, 8).
			desc("Connections of every client (Parley's pools, other users of the server) against max_connections less the superuser reserve: past it new connections are refused. Long \"idle in transaction\" holds locks."),
		timeseries("Transactions/s", unitNone,
			q(`sum by (datname) (rate(pg_stat_database_xact_commit{job="postgres", datname!~"template0|template1"}[$__rate_interval]))`, "commit {{datname}}"),
			q(`sum by (datname) (rate(pg_stat_database_xact_rollback{job="postgres", datname!~"template0|template1"}[$__rate_interval]))`, "rollback {{datname}}")).
			size(10, 8).
			desc("Commits and rollbacks by database. Parley's transactions are in its own database; rollbacks rising with store failures point at PostgreSQL."),
		timeseries("Locks by mode", unitNone,
			q(`sum by (mode) (pg_locks_count{job="postgres"})`, "{{mode}}")).
			desc("Locks held, by mode, over every database. Exclusive locks that stay point at a migration or a long transaction blocking others."),
		timeseries("Longest open transaction", unitSeconds,
			q(`max by (instance) (pg_stat_activity_max_tx_duration{job="postgres"})`, "{{instance}}")).
			desc("Age of the oldest open transaction. A long one holds its locks and keeps vacuum from cleaning up."),
		timeseries("Replication lag", unitBytes,
			q(`max by (instance, application_name, client_addr) (pg_stat_replication_pg_wal_lsn_diff{job="postgres"})`, "{{application_name}} {{client_addr}}")).
			desc("WAL written on the primary that each standby has not replayed yet, from the primary's pg_stat_replication. No standby, no data: compose and staging run none; a managed database's console shows the lag of replicas it hides."),
	}}
}

func redisServer() section {
	return section{title: "Redis", panels: []*Panel{
		upStat("Redis up", `min by (instance) (redis_up{job="redis"})`).
			size(4, 8).
			desc("Whether redis_exporter could reach Redis at its last scrape. \"not scraped\": Prometheus has no exporter target (ParleyRedisDown fires when one stops answering)."),
		timeseries("Redis memory", unitBytes,
			q(`sum by (instance) (redis_memory_used_bytes{job="redis"})`, "used {{instance}}"),
			q(`sum by (instance) (redis_memory_max_bytes{job="redis"})`, "maxmemory {{instance}}")).
			size(10, 8).
			desc("Memory Redis has allocated against its maxmemory (0: no limit). Parley keeps no keys there, so growth is mostly subscribers' output buffers; at maxmemory, with noeviction, writes of keys are refused while pub/sub goes on."),
		timeseries("Redis clients", unitNone,
			q(`sum by (instance) (redis_connected_clients{job="redis"})`, "connected {{instance}}")).
			size(10, 8).
			desc("Each replica holds a publishing pool and one subscription connection; the exporter is one more."),
		timeseries("Pub/sub channels", unitNone,
			q(`sum by (instance) (redis_pubsub_channels{job="redis"})`, "{{instance}}")).
			size(12, 8).
			desc("Channels with at least one subscriber: one per room that has members on some replica (the bus subscribes per room)."),
		timeseries("Evicted keys and refused commands/s", unitNone,
			q(`sum by (instance) (rate(redis_evicted_keys_total{job="redis"}[$__rate_interval]))`, "evicted {{instance}}"),
			q(`sum by (instance) (rate(redis_commands_rejected_calls_total{job="redis"}[$__rate_interval]))`, "refused {{instance}}")).
			size(12, 8).
			desc("Evictions should stay at 0 under noeviction. Refused commands were rejected before running: OOM at maxmemory, and also bad arguments or ACL denials."),
	}}
}
