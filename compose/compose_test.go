// Package compose holds the docker compose stack behind `make observe`.
// Docker does not run where these tests do, so they load compose.yaml with
// compose-spec/compose-go (the loader docker compose itself uses) and check
// what the stack promises: pinned images, health checks that gate start-up,
// memory limits, named volumes, config files that exist and agree with the
// configuration the rest of the repository ships.
package compose

import (
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

// load reads compose.yaml as docker compose would, with env as the
// environment (no .env file, no OS environment: the defaults are tested).
func load(t *testing.T, env ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"},
		cli.WithWorkingDirectory("."), cli.WithEnv(env), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("compose.yaml does not load: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("compose.yaml has no service %q (has %v)", name, slices.Sorted(maps.Keys(p.Services)))
	}
	return s
}

// The services the issue asks for are all there.
func TestStackHasEveryComponent(t *testing.T) {
	t.Parallel()
	p := load(t)
	for _, name := range []string{
		"postgres", "redis", "parley-1", "parley-2", "lb", "prometheus", "alertmanager", "slackrecv", "heartbeat",
		"grafana", "loki", "alloy", "tempo", "glitchtip", "glitchtip-worker", "glitchtip-setup", "loadgen",
		"postgres-exporter", "redis-exporter",
	} {
		service(t, p, name)
	}
	if p.Name != "parley" {
		t.Errorf("project name %q, want parley (make observe-down relies on it)", p.Name)
	}
}

// Images from elsewhere are pinned to a version; ours are built from the
// Dockerfile's targets.
func TestImagesArePinnedOrBuilt(t *testing.T) {
	t.Parallel()
	p := load(t)
	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	version := regexp.MustCompile(`^[^:@]+(:[^:@]*[0-9][^:@]*)(@sha256:[0-9a-f]{64})?$`)
	built := map[string]bool{}
	for _, s := range p.Services {
		if s.Build != nil {
			built[s.Image] = true
		}
	}
	for name, s := range p.Services {
		if s.Build == nil && s.PullPolicy == types.PullPolicyNever {
			if !built[s.Image] {
				t.Errorf("%s: never pulls %s, which no service builds", name, s.Image)
			}
			continue
		}
		if s.Build != nil {
			if !regexp.MustCompile(`(?m)^FROM .* AS `+regexp.QuoteMeta(s.Build.Target)+`$`).Match(dockerfile) || s.Build.Target == "" {
				t.Errorf("%s: builds target %q, which the Dockerfile does not have", name, s.Build.Target)
			}
			if !strings.HasPrefix(s.Image, "ghcr.io/parleychat/") {
				t.Errorf("%s: built image is named %q, want ghcr.io/parleychat/...", name, s.Image)
			}
			continue
		}
		m := version.FindStringSubmatch(s.Image)
		if m == nil || strings.Contains(s.Image, "latest") {
			t.Errorf("%s: image %q is not pinned to a version", name, s.Image)
		}
	}
}

// noHealthcheck lists the services whose images give a health check
// nothing to run (no shell, no HTTP client) or that are one-shot jobs:
// each says why, and nothing may wait for them to be healthy.
var noHealthcheck = map[string]string{
	"loki":             "distroless-style image with no HTTP client; Grafana waits for it to start",
	"tempo":            "nothing waits for it: the replicas' OTLP exporter retries until it accepts spans",
	"alloy":            "ships logs; nothing depends on it",
	"slackrecv":        "scratch image; Alertmanager retries its webhook",
	"heartbeat":        "scratch image; Alertmanager retries its webhook",
	"glitchtip-worker": "a Celery worker with no port",
	"glitchtip-setup":  "a one-shot job: waited for with service_completed_successfully",
	"tempo-init":       "a one-shot job: waited for with service_completed_successfully",
	"loadgen":          "the last to start; nothing depends on it",
	// Prometheus's up{job} and the datastore alerts watch the exporters.
	"postgres-exporter": "nothing depends on it; ParleyPostgresDown fires when it cannot be scraped",
	"redis-exporter":    "scratch image; ParleyRedisDown fires when it cannot be scraped",
	"canary":            "scratch image; its failures and absence are alerts of their own",
}

// oneShot are the jobs that run to completion before others start.
var oneShot = map[string]bool{"glitchtip-setup": true, "tempo-init": true}

func TestHealthchecksGateStartUp(t *testing.T) {
	t.Parallel()
	p := load(t)
	for name, s := range p.Services {
		_, exempt := noHealthcheck[name]
		if oneShot[name] && s.Restart != "" && s.Restart != "no" {
			t.Errorf("%s is a one-shot job but restarts (%s)", name, s.Restart)
		}
		has := s.HealthCheck != nil && !s.HealthCheck.Disable && len(s.HealthCheck.Test) > 0
		switch {
		case has && exempt:
			t.Errorf("%s has a health check but is listed in noHealthcheck", name)
		case !has && !exempt:
			t.Errorf("%s has no health check (or say why in noHealthcheck)", name)
		}
		if has && s.HealthCheck.Test[0] == "CMD-SHELL" && (s.Build != nil) {
			t.Errorf("%s: our images have no shell, so CMD-SHELL cannot run", name)
		}
		for dep, d := range s.DependsOn {
			target := service(t, p, dep)
			want := "service_healthy"
			if target.HealthCheck == nil {
				want = "service_started"
				if oneShot[dep] {
					want = "service_completed_successfully"
				}
			}
			if d.Condition != want {
				t.Errorf("%s depends on %s with %q, want %q", name, dep, d.Condition, want)
			}
		}
	}
	// Our replicas are checked by their own binary, not a shell.
	for _, name := range []string{"parley-1", "parley-2"} {
		if got := service(t, p, name).HealthCheck.Test; !slices.Equal(got, types.HealthCheckTest{"CMD", "/parley", "healthcheck"}) {
			t.Errorf("%s: health check %v, want /parley healthcheck", name, got)
		}
	}
}

func TestEveryServiceHasAMemoryLimit(t *testing.T) {
	t.Parallel()
	for name, s := range load(t).Services {
		if s.Deploy == nil || s.Deploy.Resources.Limits == nil || s.Deploy.Resources.Limits.MemoryBytes <= 0 {
			t.Errorf("%s has no memory limit", name)
		}
	}
}

// Every file or directory mounted from the repository exists, stateful
// services keep their data in named volumes, and every named volume used
// is declared.
func TestMountsExistAndDataIsInNamedVolumes(t *testing.T) {
	t.Parallel()
	p := load(t)
	dataDirs := map[string]string{
		"postgres": "/var/lib/postgresql/data", "redis": "/data", "prometheus": "/prometheus",
		"alertmanager": "/alertmanager", "grafana": "/var/lib/grafana", "loki": "/loki", "tempo": "/var/tempo",
	}
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			switch v.Type {
			case types.VolumeTypeBind:
				if v.Source == "/var/run/docker.sock" {
					continue // the host's Docker socket, for Alloy
				}
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s mounts %s, which does not exist: %v", name, v.Source, err)
				}
				if !v.ReadOnly {
					t.Errorf("%s mounts %s writable; configuration is mounted read-only", name, v.Source)
				}
			case types.VolumeTypeVolume:
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("%s uses volume %q, which is not declared", name, v.Source)
				}
			}
		}
		if dir, ok := dataDirs[name]; ok {
			if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
				return v.Type == types.VolumeTypeVolume && v.Target == dir
			}) {
				t.Errorf("%s keeps %s outside a named volume", name, dir)
			}
		}
	}
}

func TestPublishedPorts(t *testing.T) {
	t.Parallel()
	p := load(t)
	for name, port := range map[string]string{
		"lb": "8080", "grafana": "3000", "prometheus": "9090", "alertmanager": "9093",
		"slackrecv": "8099", "heartbeat": "8098", "glitchtip": "8000", "loki": "3100", "tempo": "3200",
	} {
		if !slices.ContainsFunc(service(t, p, name).Ports, func(pc types.ServicePortConfig) bool { return pc.Published == port }) {
			t.Errorf("%s does not publish port %s (make observe prints it)", name, port)
		}
	}
	// The replicas are reached only through the load balancer.
	for _, name := range []string{"parley-1", "parley-2"} {
		if ports := service(t, p, name).Ports; len(ports) > 0 {
			t.Errorf("%s publishes %v; clients go through lb", name, ports)
		}
	}
}

// hostOf returns the host:port a URL in the environment points at.
func hostOf(t *testing.T, service, variable, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		t.Fatalf("%s: %s=%q is not a URL", service, variable, raw)
	}
	return u
}

// The replicas' environment points at the services of this file, and is
// what the server accepts (lengths the server checks at start-up).
func TestServerEnvironmentPointsAtTheStack(t *testing.T) {
	t.Parallel()
	p := load(t)
	bootstrap, err := os.ReadFile("glitchtip/bootstrap.py")
	if err != nil {
		t.Fatal(err)
	}
	key := regexp.MustCompile(`PUBLIC_KEY = uuid.UUID\("([0-9a-f]{32})"\)`).FindSubmatch(bootstrap)
	if key == nil {
		t.Fatal("glitchtip/bootstrap.py sets no PUBLIC_KEY")
	}
	var secrets []string
	for _, name := range []string{"parley-1", "parley-2"} {
		env := service(t, p, name).Environment
		get := func(k string) string {
			if v := env[k]; v != nil {
				return *v
			}
			t.Errorf("%s: %s is not set", name, k)
			return ""
		}
		for variable, want := range map[string]string{
			"DATABASE_URL": "postgres:5432", "REDIS_URL": "redis:6379",
			"OTEL_EXPORTER_OTLP_ENDPOINT": "tempo:4318", "SENTRY_DSN": "glitchtip:8000",
		} {
			u := hostOf(t, name, variable, get(variable))
			if u.Host != want {
				t.Errorf("%s: %s points at %s, want %s", name, variable, u.Host, want)
			}
			if _, ok := p.Services[u.Hostname()]; !ok {
				t.Errorf("%s: %s names %s, which is not a service", name, variable, u.Hostname())
			}
		}
		if dsn := hostOf(t, name, "SENTRY_DSN", get("SENTRY_DSN")); dsn.User.Username() != string(key[1]) || dsn.Path != "/1" {
			t.Errorf("%s: SENTRY_DSN key %q project %q; bootstrap.py makes key %s in project 1", name, dsn.User.Username(), dsn.Path, key[1])
		}
		if got := get("OTEL_EXPORTER_OTLP_PROTOCOL"); got != "http/protobuf" {
			t.Errorf("%s: OTLP protocol %q, want http/protobuf for Tempo's port 4318", name, got)
		}
		if len(get("PARLEY_JWT_SECRET")) < 32 || len(get("PARLEY_ADMIN_TOKEN")) < 16 {
			t.Errorf("%s: the JWT secret needs 32 bytes and the admin token 16", name)
		}
		secrets = append(secrets, get("PARLEY_JWT_SECRET"))
	}
	if secrets[0] != secrets[1] {
		t.Error("the replicas sign tokens with different secrets: a token from one is refused by the other")
	}
}

// Prometheus runs the repository's one configuration, with the rule files
// and targets where that configuration looks for them, and the targets
// name the services and ports of this file.
func TestPrometheusRunsTheSharedConfiguration(t *testing.T) {
	t.Parallel()
	p := load(t)
	prom := service(t, p, "prometheus")
	mounts := map[string]string{}
	for _, v := range prom.Volumes {
		if v.Type == types.VolumeTypeBind {
			rel, err := filepath.Rel(mustAbs(t, ".."), v.Source)
			if err != nil {
				t.Fatal(err)
			}
			mounts[v.Target] = filepath.ToSlash(rel)
		}
	}
	want := map[string]string{
		"/etc/prometheus/prometheus.yml": "alerts/prometheus.yml",
		"/etc/prometheus/rules":          "alerts/rules",
		"/etc/prometheus/generated":      "alerts/generated",
		"/etc/prometheus/targets":        "compose/prometheus/targets",
	}
	for target, source := range want {
		if mounts[target] != source {
			t.Errorf("prometheus mounts %q at %s, want %s", mounts[target], target, source)
		}
	}
	if !slices.Contains(prom.Command, "--enable-feature=exemplar-storage") {
		t.Error("prometheus runs without exemplar storage: the latency panels lose their trace links")
	}

	// The shared configuration's rule and target globs are relative to it.
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			FileSDConfigs []struct {
				Files []string
			} `yaml:"file_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "../alerts/prometheus.yml", &cfg)
	for _, glob := range cfg.RuleFiles {
		dir := strings.SplitN(glob, "/", 2)[0]
		if _, ok := want["/etc/prometheus/"+dir]; !ok {
			t.Errorf("rule_files %s: nothing is mounted at /etc/prometheus/%s", glob, dir)
		}
	}

	// Each job's targets exist and name services and ports of this file.
	wantTargets := map[string][]string{
		"parley":       {"parley-1:" + adminPort(t, p, "parley-1"), "parley-2:" + adminPort(t, p, "parley-2")},
		"loadtest":     {"loadgen:" + flagPort(t, service(t, p, "loadgen").Command, "-metrics-addr")},
		"canary":       {"canary:" + flagPort(t, service(t, p, "canary").Command, "-metrics-addr")},
		"alertmanager": {"alertmanager:9093"},
		"prometheus":   {"localhost:9090"},
		"postgres":     {"postgres-exporter:9187"},
		"redis":        {"redis-exporter:9121"},
	}
	for _, sc := range cfg.ScrapeConfigs {
		var got []string
		for _, sd := range sc.FileSDConfigs {
			for _, glob := range sd.Files {
				files, _ := filepath.Glob(filepath.Join("prometheus", glob))
				for _, f := range files {
					var groups []struct{ Targets []string }
					readYAML(t, f, &groups)
					for _, g := range groups {
						got = append(got, g.Targets...)
					}
				}
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, wantTargets[sc.JobName]) {
			t.Errorf("job %s scrapes %v, want %v", sc.JobName, got, wantTargets[sc.JobName])
		}
	}
}

// The exporters run the image versions whose series names the metric
// contract test proves (dashboards/README.md), and watch this file's
// PostgreSQL, with the credentials it was given, and Redis.
func TestExportersWatchTheStacksDatastores(t *testing.T) {
	t.Parallel()
	p := load(t)
	for name, want := range map[string]string{
		"postgres-exporter": "quay.io/prometheuscommunity/postgres-exporter:v0.11.1",
		"redis-exporter":    "oliver006/redis_exporter:v1.45.0",
	} {
		if got := service(t, p, name).Image; got != want {
			t.Errorf("%s runs %s, want %s, the version the metric contract is tested against", name, got, want)
		}
	}
	pg := service(t, p, "postgres").Environment
	dsn := service(t, p, "postgres-exporter").Environment["DATA_SOURCE_NAME"]
	if dsn == nil {
		t.Fatal("postgres-exporter: DATA_SOURCE_NAME is not set")
	}
	u := hostOf(t, "postgres-exporter", "DATA_SOURCE_NAME", *dsn)
	password, _ := u.User.Password()
	if u.Host != "postgres:5432" || u.User.Username() != *pg["POSTGRES_USER"] || password != *pg["POSTGRES_PASSWORD"] || u.Path != "/"+*pg["POSTGRES_DB"] {
		t.Errorf("postgres-exporter connects as %s to %s%s, want the postgres service's user, password and database", u.User.Username(), u.Host, u.Path)
	}
	cmd := service(t, p, "redis-exporter").Command
	if addr := flagValue(cmd, "-redis.addr"); addr != "redis://redis:6379" {
		t.Errorf("redis-exporter scrapes %q, want redis://redis:6379", addr)
	}
}

// Redis has a memory limit of its own, below the container's, so that
// ParleyRedisMemoryNearMax has a maximum to measure against and Redis
// refuses writes before the kernel kills it; and it never evicts, since
// Parley keeps nothing there eviction could free (the comment in
// compose.yaml says why).
func TestRedisHasAMaxmemoryBelowItsLimit(t *testing.T) {
	t.Parallel()
	redis := service(t, load(t), "redis")
	maxmemory := redisBytes(t, redisArg(redis.Command, "--maxmemory"))
	limit := int64(redis.Deploy.Resources.Limits.MemoryBytes)
	if maxmemory <= 0 || maxmemory > limit*8/10 {
		t.Errorf("redis --maxmemory is %d bytes, want above 0 and at most 80%% of its memory limit %d (an AOF rewrite forks)", maxmemory, limit)
	}
	if got := redisArg(redis.Command, "--maxmemory-policy"); got != "noeviction" {
		t.Errorf("redis --maxmemory-policy is %q, want noeviction", got)
	}
}

// redisArg is the value after a redis-server option in its command line.
func redisArg(cmd types.ShellCommand, option string) string {
	if i := slices.Index(cmd, option); i >= 0 && i+1 < len(cmd) {
		return cmd[i+1]
	}
	return ""
}

// redisBytes reads a memory size as redis.conf does: 1k is 1000 bytes,
// 1kb 1024, and so on for m, mb, g and gb.
func redisBytes(t *testing.T, s string) int64 {
	t.Helper()
	m := regexp.MustCompile(`^(\d+)([kmg]b?)?$`).FindStringSubmatch(strings.ToLower(s))
	if m == nil {
		t.Fatalf("redis memory size %q does not parse", s)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	unit := map[string]int64{"": 1, "k": 1e3, "kb": 1 << 10, "m": 1e6, "mb": 1 << 20, "g": 1e9, "gb": 1 << 30}[m[2]]
	return n * unit
}

// flagValue is the value of a -flag=value argument, or "".
func flagValue(cmd types.ShellCommand, flag string) string {
	for _, a := range cmd {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

// adminPort is the port of a replica's PARLEY_ADMIN_ADDR.
func adminPort(t *testing.T, p *types.Project, name string) string {
	t.Helper()
	v := service(t, p, name).Environment["PARLEY_ADMIN_ADDR"]
	if v == nil {
		t.Fatalf("%s: PARLEY_ADMIN_ADDR is not set", name)
	}
	_, port, err := net.SplitHostPort(*v)
	if err != nil {
		t.Fatalf("%s: PARLEY_ADMIN_ADDR %q: %v", name, *v, err)
	}
	return port
}

// flagPort is the port of a -flag=host:port argument.
func flagPort(t *testing.T, cmd types.ShellCommand, flag string) string {
	t.Helper()
	for _, a := range cmd {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			_, port, err := net.SplitHostPort(v)
			if err != nil {
				t.Fatalf("%s: %v", a, err)
			}
			return port
		}
	}
	t.Fatalf("no %s in %v", flag, cmd)
	return ""
}

// Alertmanager runs the shipped configuration and finds each Slack
// receiver's webhook where it reads it: by default a hook of the local
// Slack receiver bound to that receiver's channel, SLACK_WEBHOOK_URL_PAGES
// and SLACK_WEBHOOK_URL_TICKETS when set. The Watchdog's webhook is the
// heartbeat service, which pages through the same pages webhook.
func TestAlertmanagerWebhooks(t *testing.T) {
	t.Parallel()
	var am struct {
		Receivers []struct {
			Name         string
			SlackConfigs []struct {
				APIURLFile string `yaml:"api_url_file"`
			} `yaml:"slack_configs"`
			WebhookConfigs []struct{ URL string } `yaml:"webhook_configs"`
		}
	}
	readYAML(t, "../alerts/alertmanager.yml", &am)
	files := map[string]string{} // receiver -> the file it reads
	var heartbeatURL string
	for _, r := range am.Receivers {
		for _, c := range r.SlackConfigs {
			files[r.Name] = c.APIURLFile
		}
		if r.Name == "heartbeat" && len(r.WebhookConfigs) == 1 {
			heartbeatURL = r.WebhookConfigs[0].URL
		}
	}
	channels := map[string]string{"slack-pages": "#parley-pages", "slack-tickets": "#parley-tickets"}
	env := map[string]string{"slack-pages": "SLACK_WEBHOOK_URL_PAGES", "slack-tickets": "SLACK_WEBHOOK_URL_TICKETS"}
	if len(files) != len(channels) {
		t.Fatalf("Slack receivers %v, want %v", files, channels)
	}
	// The hooks slackrecv serves: id -> channel.
	hooks := map[string]string{}
	p := load(t)
	for _, a := range service(t, p, "slackrecv").Command {
		if v, ok := strings.CutPrefix(a, "-hook="); ok {
			id, channel, _ := strings.Cut(v, "=")
			hooks[id] = channel
		}
	}
	if port := flagPort(t, service(t, p, "slackrecv").Command, "-addr"); port != "8099" {
		t.Errorf("slackrecv listens on %s, but the default webhooks say 8099", port)
	}
	mountedAt := func(p *types.Project, name, target string) string {
		t.Helper()
		for _, c := range service(t, p, name).Configs {
			if c.Target == target {
				return p.Configs[c.Source].Content
			}
		}
		t.Errorf("%s mounts nothing at %s", name, target)
		return ""
	}
	for receiver, file := range files {
		got := mountedAt(p, "alertmanager", file)
		id, ok := strings.CutPrefix(got, "http://slackrecv:8099/hooks/")
		if !ok || hooks[id] != channels[receiver] {
			t.Errorf("%s posts by default to %q, want a slackrecv hook bound to %s (hooks %v)", receiver, got, channels[receiver], hooks)
		}
		real := "https://hooks.slack.com/services/T0/B0/" + receiver
		if got := mountedAt(load(t, env[receiver]+"="+real), "alertmanager", file); got != real {
			t.Errorf("with %s set, %s posts to %q, want %q", env[receiver], receiver, got, real)
		}
	}
	// The heartbeat pages through the pages webhook, and listens where
	// the Watchdog is sent.
	hb := service(t, p, "heartbeat")
	var webhookFile string
	for _, a := range hb.Command {
		if v, ok := strings.CutPrefix(a, "-webhook-file="); ok {
			webhookFile = v
		}
	}
	if got, want := mountedAt(p, "heartbeat", webhookFile), mountedAt(p, "alertmanager", files["slack-pages"]); got != want || got == "" {
		t.Errorf("the heartbeat raises its alarm at %q, want the pages webhook %q", got, want)
	}
	u, err := url.Parse(heartbeatURL)
	if err != nil || u.Hostname() != "heartbeat" || u.Port() != flagPort(t, hb.Command, "-addr") {
		t.Errorf("the Watchdog goes to %q, want the heartbeat service on the port it listens on", heartbeatURL)
	}
	mounted := map[string]bool{}
	for _, v := range service(t, load(t), "alertmanager").Volumes {
		mounted[v.Target] = true
	}
	if !mounted["/etc/alertmanager/alertmanager.yml"] || !mounted["/etc/alertmanager/templates"] {
		t.Errorf("alertmanager mounts %v; want the shipped config and its templates beside it", mounted)
	}
}

// Grafana gets the repository's provisioning, the boards where the
// dashboard provider looks, and data sources that name services of this
// file.
func TestGrafanaProvisioning(t *testing.T) {
	t.Parallel()
	p := load(t)
	g := service(t, p, "grafana")
	var provider struct {
		Providers []struct {
			Options struct{ Path string }
		}
	}
	readYAML(t, "../dashboards/provisioning/dashboards/parley.yml", &provider)
	mounts := map[string]string{}
	for _, v := range g.Volumes {
		mounts[v.Target] = v.Source
	}
	if mounts["/etc/grafana/provisioning"] != mustAbs(t, "../dashboards/provisioning") {
		t.Errorf("grafana's provisioning comes from %q", mounts["/etc/grafana/provisioning"])
	}
	if len(provider.Providers) == 0 || mounts[provider.Providers[0].Options.Path] != mustAbs(t, "../dashboards") {
		t.Errorf("the dashboards directory is not mounted at the provider's path %v", provider.Providers)
	}
	var ds struct {
		Datasources []struct{ UID, URL string }
	}
	readYAML(t, "../dashboards/provisioning/datasources/datasources.yml", &ds)
	for _, d := range ds.Datasources {
		u := hostOf(t, "grafana", d.UID, d.URL)
		s, ok := p.Services[u.Hostname()]
		if !ok {
			t.Errorf("data source %s points at %s, which is not a service", d.UID, u.Host)
			continue
		}
		if !slices.ContainsFunc(s.Ports, func(pc types.ServicePortConfig) bool { return pc.Target == portNumber(u.Port()) }) {
			t.Errorf("data source %s uses port %s, which %s does not expose", d.UID, u.Port(), u.Hostname())
		}
	}
}

// The load balancer sends to every replica.
func TestLoadBalancerNamesEveryReplica(t *testing.T) {
	t.Parallel()
	p := load(t)
	conf, err := os.ReadFile("nginx/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	servers := regexp.MustCompile(`(?m)^\s*server (parley-\d+):(\d+)`).FindAllStringSubmatch(string(conf), -1)
	var got []string
	for _, m := range servers {
		got = append(got, m[1])
		if env := service(t, p, m[1]).Environment["PARLEY_ADDR"]; env == nil || !strings.HasSuffix(*env, ":"+m[2]) {
			t.Errorf("nginx sends to %s:%s, but its PARLEY_ADDR is %v", m[1], m[2], env)
		}
	}
	var want []string
	for name := range p.Services {
		if strings.HasPrefix(name, "parley-") {
			want = append(want, name)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("nginx upstream %v, want every replica %v", got, want)
	}
	for _, directive := range []string{"proxy_set_header Upgrade $http_upgrade", "proxy_set_header Connection $connection_upgrade", "proxy_read_timeout 1h"} {
		if !strings.Contains(string(conf), directive) {
			t.Errorf("nginx.conf lacks %q: WebSockets would not pass or would be cut", directive)
		}
	}
}

// Alloy labels each replica's log streams with the instance Prometheus
// gives it (its admin address), which the dashboards' $instance selects.
func TestLogStreamsCarryThePrometheusInstance(t *testing.T) {
	t.Parallel()
	p := load(t)
	conf, err := os.ReadFile("alloy/config.alloy")
	if err != nil {
		t.Fatal(err)
	}
	field := func(block, name string) string {
		m := regexp.MustCompile(name + `\s*=\s*"([^"]*)"`).FindStringSubmatch(block)
		if m == nil {
			return ""
		}
		return m[1]
	}
	var rule string
	for _, m := range regexp.MustCompile(`(?s)rule \{(.*?)\}`).FindAllStringSubmatch(string(conf), -1) {
		if field(m[1], "target_label") == "instance" && strings.HasPrefix(field(m[1], "replacement"), "$1:") {
			rule = m[1]
		}
	}
	if rule == "" {
		t.Fatal("config.alloy has no rule giving the replicas an instance of host:port")
	}
	match := regexp.MustCompile(`^(?:` + field(rule, "regex") + `)$`)
	for name := range p.Services {
		if !strings.HasPrefix(name, "parley-") {
			continue
		}
		m := match.FindStringSubmatch(name)
		if m == nil {
			t.Errorf("the instance rule's regex does not match replica %s", name)
			continue
		}
		got := strings.Replace(field(rule, "replacement"), "$1", m[1], 1)
		if want := name + ":" + adminPort(t, p, name); got != want {
			t.Errorf("%s's log streams get instance %q; Prometheus calls it %q", name, got, want)
		}
	}
}

func portNumber(s string) uint32 {
	n, _ := strconv.ParseUint(s, 10, 32) // a bad port is 0, which no service exposes
	return uint32(n)
}

func mustAbs(t *testing.T, path string) string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func readYAML(t *testing.T, path string, out any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The replicas believe X-Forwarded-For from the load balancer and from
// nothing else: lb has a fixed address on the stack's network, it is the
// replicas' one trusted proxy, and nginx appends the client's address to
// the header (the right-most entry, which the server reads).
func TestReplicasTrustOnlyTheLoadBalancer(t *testing.T) {
	t.Parallel()
	p := load(t)
	lb := service(t, p, "lb")
	attached := lb.Networks["default"]
	if attached == nil || attached.Ipv4Address == "" {
		t.Fatal("lb has no fixed address on the default network: the replicas could not name it as their trusted proxy")
	}
	lbAddr, err := netip.ParseAddr(attached.Ipv4Address)
	if err != nil {
		t.Fatalf("lb's address %q: %v", attached.Ipv4Address, err)
	}
	inSubnet := false
	for _, c := range p.Networks["default"].Ipam.Config {
		if prefix, err := netip.ParsePrefix(c.Subnet); err == nil && prefix.Contains(lbAddr) {
			inSubnet = true
		}
	}
	if !inSubnet {
		t.Errorf("lb's address %s is outside the default network's subnets %+v", lbAddr, p.Networks["default"].Ipam.Config)
	}
	for name, s := range p.Services {
		if !strings.HasPrefix(name, "parley-") {
			continue
		}
		if got := s.Environment["PARLEY_TRUSTED_PROXIES"]; got == nil || *got != lbAddr.String() {
			t.Errorf("%s: PARLEY_TRUSTED_PROXIES %v, want lb's address %s and nothing else", name, got, lbAddr)
		}
		if len(s.Ports) > 0 {
			t.Errorf("%s publishes %v: clients must come through lb, whose forwarded address is the one counted", name, s.Ports)
		}
	}
	conf, err := os.ReadFile("nginx/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for") {
		t.Error("nginx.conf does not append the client's address to X-Forwarded-For: every client would count as lb")
	}
}
