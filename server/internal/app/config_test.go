package app

import (
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/server/internal/httpapi"
)

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(envOf(nil))
	if err != nil {
		t.Fatalf("got %v, want the empty environment to be valid", err)
	}
	if cfg.Addr != ":8080" || cfg.AdminAddr != ":9091" || cfg.DatabaseURL != "" || cfg.RedisURL != "" || cfg.JWTSecret != "" ||
		cfg.CatchUp != 2*time.Second || cfg.Presence != 5*time.Second || cfg.Environment != "development" ||
		cfg.TokenTTL != 24*time.Hour || cfg.PasswordCost != 10 || cfg.LogLevel != slog.LevelInfo ||
		cfg.MemoryHistory != 10000 || cfg.SendQueue != 256 || cfg.ConnRate != 20 || cfg.UserRate != 10 ||
		cfg.JoinRate != 20 || cfg.JoinBurst != 100 || cfg.TypingRate != 5 || cfg.MaxConnsUser != 32 ||
		cfg.DrainTimeout != 25*time.Second || cfg.DrainJitter != 2*time.Second || len(cfg.AllowedOrigins) != 0 {
		t.Fatalf("got %+v, want the documented defaults", cfg)
	}
	if cfg.ReadHeaderTimeout != 10*time.Second || cfg.ReadTimeout != 30*time.Second || cfg.WriteTimeout != time.Minute ||
		cfg.IdleTimeout != 90*time.Second || cfg.MaxConnsPerAddr != 16000 || len(cfg.TrustedProxies) != 0 {
		t.Fatalf("got %+v, want the documented listener timeouts and connection cap", cfg)
	}
}

func TestConfigReadsEveryVariable(t *testing.T) {
	cfg, err := loadConfig(envOf(map[string]string{
		"PARLEY_ADDR":              "127.0.0.1:9000",
		"PARLEY_ADMIN_ADDR":        ":9100",
		"DATABASE_URL":             "postgres://u:pw@db:5432/parley",
		"REDIS_URL":                "redis://:pw@cache:6379/0",
		"PARLEY_CATCHUP_INTERVAL":  "500ms",
		"PARLEY_PRESENCE_INTERVAL": "10s",
		"PARLEY_JWT_SECRET":        strings.Repeat("s", 32),
		"PARLEY_TOKEN_TTL":         "1h",
		"PARLEY_PASSWORD_COST":     "12",
		"PARLEY_ALLOWED_ORIGINS":   "https://a.example, https://b.example/",
		"LOG_LEVEL":                "debug",
		"PARLEY_ENVIRONMENT":       "staging",
		"PARLEY_ADMIN_TOKEN":       "admin-token-admin-token",
		"PARLEY_FAULTS":            "on",
		"PARLEY_MEMORY_HISTORY":    "50",
		"PARLEY_SEND_QUEUE":        "64",
		"PARLEY_CONN_RATE":         "2.5",
		"PARLEY_USER_RATE":         "100",
		"PARLEY_DRAIN_TIMEOUT":     "1m",
		"PARLEY_DRAIN_JITTER":      "5s",

		// The listeners' timeouts and connection cap.
		"PARLEY_READ_HEADER_TIMEOUT": "2s",
		"PARLEY_READ_TIMEOUT":        "20s",
		"PARLEY_WRITE_TIMEOUT":       "2m",
		"PARLEY_IDLE_TIMEOUT":        "75s",
		"PARLEY_MAX_CONNS_PER_ADDR":  "500",
		"PARLEY_TRUSTED_PROXIES":     "10.244.0.0/16, 172.30.80.10,fd00::/8,10.1.2.3/8",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		Addr: "127.0.0.1:9000", AdminAddr: ":9100", DatabaseURL: "postgres://u:pw@db:5432/parley",
		RedisURL: "redis://:pw@cache:6379/0", CatchUp: 500 * time.Millisecond, Presence: 10 * time.Second,
		JWTSecret: strings.Repeat("s", 32), TokenTTL: time.Hour, PasswordCost: 12,
		AllowedOrigins: []string{"https://a.example", "https://b.example"}, LogLevel: slog.LevelDebug, Environment: "staging",
		AdminToken: "admin-token-admin-token", Faults: true,
		MemoryHistory: 50, SendQueue: 64, ConnRate: 2.5, UserRate: 100,
		JoinRate: 20, JoinBurst: 100, TypingRate: 5, MaxConnsUser: 32, // TestConfigReadsTheWebSocketLimits
		DrainTimeout: time.Minute, DrainJitter: 5 * time.Second,
		Limits:            httpapi.DefaultLimits(), // TestConfigReadsTheRateLimits reads these
		ReadHeaderTimeout: 2 * time.Second, ReadTimeout: 20 * time.Second, WriteTimeout: 2 * time.Minute, IdleTimeout: 75 * time.Second,
		MaxConnsPerAddr: 500,
		// A single address is a prefix of its full length; a CIDR with
		// host bits set is masked.
		TrustedProxies: []netip.Prefix{
			netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("172.30.80.10/32"),
			netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("10.0.0.0/8"),
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got %+v, want %+v", cfg, want)
	}
}

func TestConfigReadsTheWebSocketLimits(t *testing.T) {
	cfg, err := loadConfig(envOf(map[string]string{
		"PARLEY_JOIN_RATE":          "7.5",
		"PARLEY_JOIN_BURST":         "30",
		"PARLEY_TYPING_RATE":        "0.5",
		"PARLEY_MAX_CONNS_PER_USER": "4",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.JoinRate != 7.5 || cfg.JoinBurst != 30 || cfg.TypingRate != 0.5 || cfg.MaxConnsUser != 4 {
		t.Fatalf("got join rate %v, join burst %d, typing rate %v, connections per user %d; want 7.5, 30, 0.5, 4",
			cfg.JoinRate, cfg.JoinBurst, cfg.TypingRate, cfg.MaxConnsUser)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name, variable, value string
	}{
		{"address without a port", "PARLEY_ADDR", "localhost"},
		{"admin address garbage", "PARLEY_ADMIN_ADDR", "::::"},
		{"database URL of another scheme", "DATABASE_URL", "mysql://db/parley"},
		{"redis URL of another scheme", "REDIS_URL", "http://cache:6379"},
		{"redis without a database", "REDIS_URL", "redis://cache:6379"},
		{"catch-up too often", "PARLEY_CATCHUP_INTERVAL", "1ms"},
		{"presence interval not a duration", "PARLEY_PRESENCE_INTERVAL", "often"},
		{"short secret", "PARLEY_JWT_SECRET", "too-short"},
		{"token lifetime not a duration", "PARLEY_TOKEN_TTL", "a day"},
		{"token lifetime too long", "PARLEY_TOKEN_TTL", "9000h"},
		{"password cost too low", "PARLEY_PASSWORD_COST", "3"},
		{"origin without scheme", "PARLEY_ALLOWED_ORIGINS", "chat.example.com"},
		{"origin with a path", "PARLEY_ALLOWED_ORIGINS", "https://chat.example.com/app"},
		{"unknown log level", "LOG_LEVEL", "loud"},
		{"environment with spaces", "PARLEY_ENVIRONMENT", "my laptop"},
		{"short admin token", "PARLEY_ADMIN_TOKEN", "admin"},
		{"faults neither on nor off", "PARLEY_FAULTS", "yes"},
		{"history of zero", "PARLEY_MEMORY_HISTORY", "0"},
		{"queue not a number", "PARLEY_SEND_QUEUE", "lots"},
		{"negative rate", "PARLEY_CONN_RATE", "-1"},
		{"rate not a number", "PARLEY_USER_RATE", "NaN"},
		{"join rate of zero", "PARLEY_JOIN_RATE", "0"},
		{"join burst of zero", "PARLEY_JOIN_BURST", "0"},
		{"typing rate not a number", "PARLEY_TYPING_RATE", "fast"},
		{"no connections per user", "PARLEY_MAX_CONNS_PER_USER", "0"},
		{"drain timeout too short", "PARLEY_DRAIN_TIMEOUT", "10ms"},
		{"jitter longer than the drain", "PARLEY_DRAIN_JITTER", "1m"},
		{"header timeout longer than the read timeout", "PARLEY_READ_HEADER_TIMEOUT", "1m"},
		{"read timeout not a duration", "PARLEY_READ_TIMEOUT", "forever"},
		{"write timeout of zero", "PARLEY_WRITE_TIMEOUT", "0s"},
		{"idle timeout too long", "PARLEY_IDLE_TIMEOUT", "2h"},
		{"connection cap of zero", "PARLEY_MAX_CONNS_PER_ADDR", "0"},
		{"trusted proxy that is a host name", "PARLEY_TRUSTED_PROXIES", "10.0.0.0/8,lb"},
		{"trusted proxy CIDR out of range", "PARLEY_TRUSTED_PROXIES", "10.0.0.0/33"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(envOf(map[string]string{tt.variable: tt.value}))
			if err == nil || !strings.Contains(err.Error(), tt.variable) {
				t.Fatalf("got %v, want an error naming %s", err, tt.variable)
			}
		})
	}
}

func TestConfigReportsEveryProblemAtOnce(t *testing.T) {
	_, err := loadConfig(envOf(map[string]string{"PARLEY_SEND_QUEUE": "x", "LOG_LEVEL": "loud"}))
	if err == nil || !strings.Contains(err.Error(), "PARLEY_SEND_QUEUE") || !strings.Contains(err.Error(), "LOG_LEVEL") {
		t.Fatalf("got %v, want both variables named", err)
	}
}

func TestStartupLogRedactsSecrets(t *testing.T) {
	cfg, err := loadConfig(envOf(map[string]string{
		"DATABASE_URL":       "postgres://parley:hunter2hunter2@db/parley",
		"REDIS_URL":          "redis://:swordfish99@cache:6379",
		"PARLEY_ADMIN_TOKEN": "open-sesame-open-sesame",
		"PARLEY_JWT_SECRET":  "0123456789abcdef0123456789abcdef-secret",
	}))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("starting", cfg.logAttrs()...)
	for _, secret := range []string{"hunter2hunter2", "swordfish99", "0123456789abcdef", "open-sesame"} {
		if strings.Contains(b.String(), secret) {
			t.Fatalf("start-up log %s holds a secret", b.String())
		}
	}
	if !strings.Contains(b.String(), "db/parley") || !strings.Contains(b.String(), "cache:6379") {
		t.Fatalf("start-up log %s lost the database or Redis host", b.String())
	}
}

func TestRunRefusesBadConfigurationAndArguments(t *testing.T) {
	var out strings.Builder
	err := Run(t.Context(), "test", nil, envOf(map[string]string{"PARLEY_SEND_QUEUE": "x"}), &out, &out)
	if err == nil || !strings.Contains(err.Error(), "PARLEY_SEND_QUEUE") {
		t.Fatalf("got %v, want a configuration error naming PARLEY_SEND_QUEUE", err)
	}
	if err := Run(t.Context(), "test", []string{"-port", "1"}, envOf(nil), &out, &out); err == nil {
		t.Fatal("got nil, want arguments refused")
	}
}

func TestConfigReadsTheRateLimits(t *testing.T) {
	cfg, err := loadConfig(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Limits != httpapi.DefaultLimits() {
		t.Fatalf("without the variables: got %+v, want httpapi.DefaultLimits() %+v", cfg.Limits, httpapi.DefaultLimits())
	}

	cfg, err = loadConfig(envOf(map[string]string{
		"PARLEY_LIMIT_SIGNUP_PER_ADDR":  "20/m,50",
		"PARLEY_LIMIT_LOGIN_PER_ADDR":   "0.5/s,10",
		"PARLEY_LIMIT_LOGIN_BACKOFF":    "3,30s",
		"PARLEY_LIMIT_ROOMS_PER_USER":   "off",
		"PARLEY_LIMIT_ROOMS_PER_ADDR":   "100/h,1000",
		"PARLEY_LIMIT_HISTORY_PER_USER": " 10/s,100 ",
		"PARLEY_LIMIT_HISTORY_PER_ADDR": "0",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := httpapi.Limits{
		SignupPerAddr:      httpapi.Rate{N: 20, Per: time.Minute, Burst: 50},
		LoginPerAddr:       httpapi.Rate{N: 0.5, Per: time.Second, Burst: 10},
		LoginBackoff:       httpapi.Backoff{Free: 3, Max: 30 * time.Second},
		RoomsCreatePerUser: httpapi.Rate{Off: true},
		RoomsCreatePerAddr: httpapi.Rate{N: 100, Per: time.Hour, Burst: 1000},
		HistoryPerUser:     httpapi.Rate{N: 10, Per: time.Second, Burst: 100},
		HistoryPerAddr:     httpapi.Rate{Off: true},
	}
	if cfg.Limits != want {
		t.Fatalf("got %+v, want %+v", cfg.Limits, want)
	}

	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("starting", cfg.logAttrs()...)
	for _, printed := range []string{
		"PARLEY_LIMIT_SIGNUP_PER_ADDR=20/m,50", "PARLEY_LIMIT_LOGIN_PER_ADDR=0.5/s,10", "PARLEY_LIMIT_LOGIN_BACKOFF=3,30s",
		"PARLEY_LIMIT_ROOMS_PER_USER=off", "PARLEY_LIMIT_ROOMS_PER_ADDR=100/h,1000", "PARLEY_LIMIT_HISTORY_PER_USER=10/s,100",
		"PARLEY_LIMIT_HISTORY_PER_ADDR=off",
	} {
		if !strings.Contains(b.String(), printed) {
			t.Errorf("start-up log %s: want %s", b.String(), printed)
		}
	}
}

func TestConfigRateLimitErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name, variable, value string
	}{
		{"no burst", "PARLEY_LIMIT_SIGNUP_PER_ADDR", "20/m"},
		{"no unit", "PARLEY_LIMIT_LOGIN_PER_ADDR", "20,50"},
		{"an unknown unit", "PARLEY_LIMIT_ROOMS_PER_USER", "20/d,50"},
		{"a zero rate", "PARLEY_LIMIT_ROOMS_PER_ADDR", "0/m,50"},
		{"a negative rate", "PARLEY_LIMIT_HISTORY_PER_USER", "-1/s,5"},
		{"a zero burst", "PARLEY_LIMIT_HISTORY_PER_ADDR", "1/s,0"},
		{"words", "PARLEY_LIMIT_SIGNUP_PER_ADDR", "lots"},
		{"a backoff without its longest wait", "PARLEY_LIMIT_LOGIN_BACKOFF", "5"},
		{"a backoff longer than an hour", "PARLEY_LIMIT_LOGIN_BACKOFF", "5,2h"},
		{"a backoff of negative free failures", "PARLEY_LIMIT_LOGIN_BACKOFF", "-1,1m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(envOf(map[string]string{tt.variable: tt.value}))
			if err == nil || !strings.Contains(err.Error(), tt.variable) {
				t.Fatalf("got %v, want an error naming %s", err, tt.variable)
			}
		})
	}
}
