package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parleychat/parley/server/internal/httpapi"
)

// config is everything the server reads from its environment. loadConfig
// fills and validates it; nothing else reads the environment.
type config struct {
	Addr           string        // PARLEY_ADDR
	AdminAddr      string        // PARLEY_ADMIN_ADDR
	DatabaseURL    string        // DATABASE_URL; empty selects the in-memory store
	RedisURL       string        // REDIS_URL; empty runs a single replica
	CatchUp        time.Duration // PARLEY_CATCHUP_INTERVAL
	Presence       time.Duration // PARLEY_PRESENCE_INTERVAL
	JWTSecret      string        // PARLEY_JWT_SECRET; empty means a random one per start
	TokenTTL       time.Duration // PARLEY_TOKEN_TTL
	PasswordCost   int           // PARLEY_PASSWORD_COST
	AllowedOrigins []string      // PARLEY_ALLOWED_ORIGINS
	LogLevel       slog.Level    // LOG_LEVEL
	Environment    string        // PARLEY_ENVIRONMENT
	AdminToken     string        // PARLEY_ADMIN_TOKEN; empty refuses /admin/*
	Faults         bool          // PARLEY_FAULTS
	MemoryHistory  int           // PARLEY_MEMORY_HISTORY
	SendQueue      int           // PARLEY_SEND_QUEUE
	ConnRate       float64       // PARLEY_CONN_RATE
	UserRate       float64       // PARLEY_USER_RATE
	JoinRate       float64       // PARLEY_JOIN_RATE
	JoinBurst      int           // PARLEY_JOIN_BURST
	TypingRate     float64       // PARLEY_TYPING_RATE
	MaxConnsUser   int           // PARLEY_MAX_CONNS_PER_USER
	DrainTimeout   time.Duration // PARLEY_DRAIN_TIMEOUT
	DrainJitter    time.Duration // PARLEY_DRAIN_JITTER

	// Rate limits of the REST API, one variable each: see
	// limitVars.
	Limits httpapi.Limits
	// The listeners' timeouts and the per-address cap: how long, and how
	// many at once, one client may hold the server's connections. See
	// docs/operations.md for why each default is what it is.
	ReadHeaderTimeout time.Duration  // PARLEY_READ_HEADER_TIMEOUT
	ReadTimeout       time.Duration  // PARLEY_READ_TIMEOUT
	WriteTimeout      time.Duration  // PARLEY_WRITE_TIMEOUT
	IdleTimeout       time.Duration  // PARLEY_IDLE_TIMEOUT
	MaxConnsPerAddr   int            // PARLEY_MAX_CONNS_PER_ADDR
	TrustedProxies    []netip.Prefix // PARLEY_TRUSTED_PROXIES
}

// defaultAddr is where the API listens without PARLEY_ADDR.
const defaultAddr = ":8080"

// minSecretLen is the shortest signing secret accepted: HS256 with fewer
// than 32 bytes of key is weaker than the hash it uses.
const minSecretLen = 32

// minAdminTokenLen is the shortest admin token accepted: one that can be
// guessed would hand out fault injection.
const minAdminTokenLen = 16

// loadConfig reads the environment through getenv. It reports every bad
// variable at once, each by name.
func loadConfig(getenv func(string) string) (config, error) {
	p := envParser{getenv: getenv}
	cfg := config{
		Addr:           p.addr("PARLEY_ADDR", defaultAddr),
		AdminAddr:      p.addr("PARLEY_ADMIN_ADDR", ":9091"),
		DatabaseURL:    p.databaseURL("DATABASE_URL"),
		RedisURL:       p.redisURL("REDIS_URL"),
		CatchUp:        p.duration("PARLEY_CATCHUP_INTERVAL", 2*time.Second, 100*time.Millisecond, time.Minute),
		Presence:       p.duration("PARLEY_PRESENCE_INTERVAL", 5*time.Second, 100*time.Millisecond, 5*time.Minute),
		JWTSecret:      getenv("PARLEY_JWT_SECRET"),
		TokenTTL:       p.duration("PARLEY_TOKEN_TTL", 24*time.Hour, time.Second, 30*24*time.Hour),
		PasswordCost:   p.integer("PARLEY_PASSWORD_COST", 10, 4, 31),
		AllowedOrigins: p.origins("PARLEY_ALLOWED_ORIGINS"),
		LogLevel:       p.level("LOG_LEVEL"),
		Environment:    p.name("PARLEY_ENVIRONMENT", "development"),
		AdminToken:     getenv("PARLEY_ADMIN_TOKEN"),
		Faults:         p.onOff("PARLEY_FAULTS"),
		MemoryHistory:  p.integer("PARLEY_MEMORY_HISTORY", 10000, 1, 10_000_000),
		SendQueue:      p.integer("PARLEY_SEND_QUEUE", 256, 8, 65536),
		ConnRate:       p.rate("PARLEY_CONN_RATE", 20),
		UserRate:       p.rate("PARLEY_USER_RATE", 10),
		JoinRate:       p.rate("PARLEY_JOIN_RATE", 20),
		JoinBurst:      p.integer("PARLEY_JOIN_BURST", 100, 1, 1_000_000),
		TypingRate:     p.rate("PARLEY_TYPING_RATE", 5),
		MaxConnsUser:   p.integer("PARLEY_MAX_CONNS_PER_USER", 32, 1, 1_000_000),
		DrainTimeout:   p.duration("PARLEY_DRAIN_TIMEOUT", 25*time.Second, time.Second, 10*time.Minute),
		DrainJitter:    p.duration("PARLEY_DRAIN_JITTER", 2*time.Second, time.Millisecond, 5*time.Minute),

		ReadHeaderTimeout: p.duration("PARLEY_READ_HEADER_TIMEOUT", 10*time.Second, 100*time.Millisecond, 5*time.Minute),
		ReadTimeout:       p.duration("PARLEY_READ_TIMEOUT", 30*time.Second, 100*time.Millisecond, time.Hour),
		WriteTimeout:      p.duration("PARLEY_WRITE_TIMEOUT", time.Minute, 100*time.Millisecond, time.Hour),
		IdleTimeout:       p.duration("PARLEY_IDLE_TIMEOUT", 90*time.Second, 100*time.Millisecond, time.Hour),
		MaxConnsPerAddr:   p.integer("PARLEY_MAX_CONNS_PER_ADDR", 16000, 1, 1_000_000),
		TrustedProxies:    p.prefixes("PARLEY_TRUSTED_PROXIES"),
	}
	cfg.Limits = p.limits()
	if cfg.AdminToken != "" && len(cfg.AdminToken) < minAdminTokenLen {
		p.fail("PARLEY_ADMIN_TOKEN", "must be at least %d bytes", minAdminTokenLen)
	}
	if cfg.JWTSecret != "" && len(cfg.JWTSecret) < minSecretLen {
		p.fail("PARLEY_JWT_SECRET", "must be at least %d bytes", minSecretLen)
	}
	if cfg.RedisURL != "" && cfg.DatabaseURL == "" {
		// Replicas with a store each would number one room's messages
		// independently: a shared store is what makes them one service.
		p.fail("REDIS_URL", "needs DATABASE_URL: replicas must share one PostgreSQL store")
	}
	if cfg.DrainJitter >= cfg.DrainTimeout {
		p.fail("PARLEY_DRAIN_JITTER", "must be shorter than PARLEY_DRAIN_TIMEOUT (%v)", cfg.DrainTimeout)
	}
	if cfg.ReadHeaderTimeout > cfg.ReadTimeout {
		// The read timeout runs from the request's first byte, headers
		// included: a longer header timeout would never apply.
		p.fail("PARLEY_READ_HEADER_TIMEOUT", "must not exceed PARLEY_READ_TIMEOUT (%v)", cfg.ReadTimeout)
	}
	return cfg, errors.Join(p.errs...)
}

// logAttrs describes the configuration for the start-up log, with secrets
// redacted.
func (c config) logAttrs() []any {
	secret := "random per start"
	if c.JWTSecret != "" {
		secret = "set (redacted)"
	}
	store := "memory"
	if c.DatabaseURL != "" {
		store = redactURL(c.DatabaseURL)
	}
	broker := "none (single replica)"
	if c.RedisURL != "" {
		broker = redactURL(c.RedisURL)
	}
	return []any{
		"PARLEY_ADDR", c.Addr,
		"PARLEY_ADMIN_ADDR", c.AdminAddr,
		"DATABASE_URL", store,
		"REDIS_URL", broker,
		"PARLEY_CATCHUP_INTERVAL", c.CatchUp.String(),
		"PARLEY_PRESENCE_INTERVAL", c.Presence.String(),
		"PARLEY_JWT_SECRET", secret,
		"PARLEY_TOKEN_TTL", c.TokenTTL.String(),
		"PARLEY_PASSWORD_COST", c.PasswordCost,
		"PARLEY_ALLOWED_ORIGINS", strings.Join(c.AllowedOrigins, ","),
		"LOG_LEVEL", c.LogLevel.String(),
		"PARLEY_ENVIRONMENT", c.Environment,
		"PARLEY_ADMIN_TOKEN", redactedIfSet(c.AdminToken, "unset: /admin/* refuses"),
		"PARLEY_FAULTS", map[bool]string{true: "on", false: "off"}[c.Faults],
		"PARLEY_MEMORY_HISTORY", c.MemoryHistory,
		"PARLEY_SEND_QUEUE", c.SendQueue,
		"PARLEY_CONN_RATE", c.ConnRate,
		"PARLEY_USER_RATE", c.UserRate,
		"PARLEY_JOIN_RATE", c.JoinRate,
		"PARLEY_JOIN_BURST", c.JoinBurst,
		"PARLEY_TYPING_RATE", c.TypingRate,
		"PARLEY_MAX_CONNS_PER_USER", c.MaxConnsUser,
		"PARLEY_DRAIN_TIMEOUT", c.DrainTimeout.String(),
		"PARLEY_DRAIN_JITTER", c.DrainJitter.String(),
		"PARLEY_LIMIT_SIGNUP_PER_ADDR", formatRate(c.Limits.SignupPerAddr),
		"PARLEY_LIMIT_LOGIN_PER_ADDR", formatRate(c.Limits.LoginPerAddr),
		"PARLEY_LIMIT_LOGIN_BACKOFF", formatBackoff(c.Limits.LoginBackoff),
		"PARLEY_LIMIT_ROOMS_PER_USER", formatRate(c.Limits.RoomsCreatePerUser),
		"PARLEY_LIMIT_ROOMS_PER_ADDR", formatRate(c.Limits.RoomsCreatePerAddr),
		"PARLEY_LIMIT_HISTORY_PER_USER", formatRate(c.Limits.HistoryPerUser),
		"PARLEY_LIMIT_HISTORY_PER_ADDR", formatRate(c.Limits.HistoryPerAddr),
		"PARLEY_READ_HEADER_TIMEOUT", c.ReadHeaderTimeout.String(),
		"PARLEY_READ_TIMEOUT", c.ReadTimeout.String(),
		"PARLEY_WRITE_TIMEOUT", c.WriteTimeout.String(),
		"PARLEY_IDLE_TIMEOUT", c.IdleTimeout.String(),
		"PARLEY_MAX_CONNS_PER_ADDR", c.MaxConnsPerAddr,
		"PARLEY_TRUSTED_PROXIES", prefixList(c.TrustedProxies),
	}
}

func prefixList(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "none: every request's address is its socket's peer"
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return strings.Join(out, ",")
}

func redactedIfSet(v, unset string) string {
	if v == "" {
		return unset
	}
	return "set (redacted)"
}

// redactURL hides the password of a connection URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable, redacted)"
	}
	return u.Redacted()
}

// envParser reads variables and collects what is wrong with them.
type envParser struct {
	getenv func(string) string
	errs   []error
}

func (p *envParser) fail(name, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
}

func (p *envParser) addr(name, def string) string {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		p.fail(name, "want host:port or :port, got %q", v)
	}
	return v
}

func (p *envParser) databaseURL(name string) string {
	v := p.getenv(name)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		p.fail(name, "want a postgres:// URL")
	}
	return v
}

func (p *envParser) redisURL(name string) string {
	v := p.getenv(name)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		p.fail(name, "want a redis:// or rediss:// URL")
	}
	return v
}

// name reads a short identifier such as an environment's name.
func (p *envParser) name(name, def string) string {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	if len(v) > 64 || strings.ContainsFunc(v, func(r rune) bool { return !isNameRune(r) }) {
		p.fail(name, "want up to 64 letters, digits, '-', '_' or '.', got %q", v)
		return def
	}
	return v
}

func (p *envParser) onOff(name string) bool {
	switch v := p.getenv(name); v {
	case "", "off":
		return false
	case "on":
		return true
	default:
		p.fail(name, "want on or off, got %q", v)
		return false
	}
}

func isNameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
}

func (p *envParser) integer(name string, def, lo, hi int) int {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail(name, "want a whole number from %d to %d, got %q", lo, hi, v)
		return def
	}
	return n
}

func (p *envParser) rate(name string, def float64) float64 {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f > 0 && f <= 1e6) {
		p.fail(name, "want a positive number per second (at most 1e6), got %q", v)
		return def
	}
	return f
}

func (p *envParser) duration(name string, def, lo, hi time.Duration) time.Duration {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		p.fail(name, "want a duration from %v to %v such as 30s, got %q", lo, hi, v)
		return def
	}
	return d
}

func (p *envParser) level(name string) slog.Level {
	var l slog.Level
	v := p.getenv(name)
	if v == "" {
		return slog.LevelInfo
	}
	if err := l.UnmarshalText([]byte(v)); err != nil {
		p.fail(name, "want debug, info, warn or error, got %q", v)
		return slog.LevelInfo
	}
	return l
}

// prefixes reads a comma-separated list of CIDRs and single addresses (a
// prefix of its full length), such as "10.244.0.0/16,172.30.80.10".
func (p *envParser) prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for v := range strings.SplitSeq(p.getenv(name), ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if strings.Contains(v, "/") {
			prefix, err := netip.ParsePrefix(v)
			if err != nil {
				p.fail(name, "want CIDRs or addresses like 10.0.0.0/8 or 192.0.2.7, got %q", v)
				continue
			}
			out = append(out, prefix.Masked())
			continue
		}
		addr, err := netip.ParseAddr(v)
		if err != nil || addr.Zone() != "" {
			p.fail(name, "want CIDRs or addresses like 10.0.0.0/8 or 192.0.2.7, got %q", v)
			continue
		}
		addr = addr.Unmap()
		out = append(out, netip.PrefixFrom(addr, addr.BitLen()))
	}
	return out
}

func (p *envParser) origins(name string) []string {
	var out []string
	for o := range strings.SplitSeq(p.getenv(name), ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			p.fail(name, "want origins like https://chat.example.com, got %q", o)
			continue
		}
		out = append(out, strings.TrimSuffix(o, "/"))
	}
	return out
}

// limits reads the rate limits of the REST API, each from its variable:
// a rate as RATE/UNIT,BURST (60/m,500 is 60 a minute on average, in
// bursts of up to 500; UNIT is s, m or h), the login backoff as FREE,MAX
// (5,1m: five failures free, then waits doubling from one second up to a
// minute), and "off" (or 0) to switch one off.
func (p *envParser) limits() httpapi.Limits {
	d := httpapi.DefaultLimits()
	return httpapi.Limits{
		SignupPerAddr:      p.rateLimit("PARLEY_LIMIT_SIGNUP_PER_ADDR", d.SignupPerAddr),
		LoginPerAddr:       p.rateLimit("PARLEY_LIMIT_LOGIN_PER_ADDR", d.LoginPerAddr),
		LoginBackoff:       p.backoff("PARLEY_LIMIT_LOGIN_BACKOFF", d.LoginBackoff),
		RoomsCreatePerUser: p.rateLimit("PARLEY_LIMIT_ROOMS_PER_USER", d.RoomsCreatePerUser),
		RoomsCreatePerAddr: p.rateLimit("PARLEY_LIMIT_ROOMS_PER_ADDR", d.RoomsCreatePerAddr),
		HistoryPerUser:     p.rateLimit("PARLEY_LIMIT_HISTORY_PER_USER", d.HistoryPerUser),
		HistoryPerAddr:     p.rateLimit("PARLEY_LIMIT_HISTORY_PER_ADDR", d.HistoryPerAddr),
	}
}

// rateUnits are the units a rate limit may be given per.
var rateUnits = []struct {
	name string
	per  time.Duration
}{{"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}

func (p *envParser) rateLimit(name string, def httpapi.Rate) httpapi.Rate {
	v := strings.TrimSpace(p.getenv(name))
	switch v {
	case "":
		return def
	case "off", "0":
		return httpapi.Rate{Off: true}
	}
	rate, burst, hasBurst := strings.Cut(v, ",")
	count, unit, hasUnit := strings.Cut(rate, "/")
	var per time.Duration
	for _, u := range rateUnits {
		if u.name == unit {
			per = u.per
		}
	}
	n, nerr := strconv.ParseFloat(count, 64)
	b, berr := strconv.Atoi(burst)
	if !hasBurst || !hasUnit || per == 0 || nerr != nil || !(n > 0 && n <= 1e6) || berr != nil || b < 1 || b > 1_000_000 {
		p.fail(name, "want RATE/UNIT,BURST such as 60/m,500 (UNIT s, m or h; BURST 1 to 1000000), or off, got %q", v)
		return def
	}
	return httpapi.Rate{N: n, Per: per, Burst: b}
}

func (p *envParser) backoff(name string, def httpapi.Backoff) httpapi.Backoff {
	v := strings.TrimSpace(p.getenv(name))
	switch v {
	case "":
		return def
	case "off", "0":
		return httpapi.Backoff{Off: true}
	}
	free, longest, ok := strings.Cut(v, ",")
	n, nerr := strconv.Atoi(free)
	d, derr := time.ParseDuration(longest)
	if !ok || nerr != nil || n < 0 || n > 1000 || derr != nil || d < time.Second || d > time.Hour {
		p.fail(name, "want FREE,MAX such as 5,1m (FREE failures 0 to 1000, MAX from 1s to 1h), or off, got %q", v)
		return def
	}
	return httpapi.Backoff{Free: n, Max: d}
}

// formatRate writes a rate limit as its variable takes it.
func formatRate(r httpapi.Rate) string {
	if r.Off {
		return "off"
	}
	unit := r.Per.String()
	for _, u := range rateUnits {
		if u.per == r.Per {
			unit = u.name
		}
	}
	return strconv.FormatFloat(r.N, 'g', -1, 64) + "/" + unit + "," + strconv.Itoa(r.Burst)
}

func formatBackoff(b httpapi.Backoff) string {
	if b.Off {
		return "off"
	}
	return strconv.Itoa(b.Free) + "," + b.Max.String()
}
