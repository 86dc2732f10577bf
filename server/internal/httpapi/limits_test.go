package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/testenv"
	"github.com/parleychat/parley/server/internal/memstore"
)

// Addresses the tests' requests come from (documentation addresses).
const (
	attackerAddr = "192.0.2.1"
	victimAddr   = "198.51.100.7"
)

const password = "correct horse battery" // testAPI.mustRegister's

// 100 wrong passwords for one account in a burst were 100 × 401, at the
// pace of the password hash. Past a few they are refused at once, with
// the wait; the account's owner, at another address, logs in as usual,
// and so does the attacker's own address once the backoff has passed.
func TestLoginBackoffThrottlesGuessesButDoesNotLockTheOwnerOut(t *testing.T) {
	t.Parallel()
	lt := newLimitTest(t, Limits{})
	lt.api.mustRegister("victim")

	var unauthorized, limited int
	for i := range 100 {
		got := lt.do("POST", "/api/v1/sessions", attackerAddr, "", credentials("Victim", fmt.Sprint("guess-", i)))
		switch got.status {
		case http.StatusUnauthorized:
			unauthorized++
		case http.StatusTooManyRequests:
			limited++
			lt.wantRefusal(got, "1")
		default:
			t.Fatalf("guess %d: got %d %s, want 401 or 429", i+1, got.status, got.body)
		}
	}
	// Five free failures, then a sixth that starts the backoff.
	if unauthorized != 6 || limited != 94 {
		t.Errorf("100 wrong passwords: got %d × 401 and %d × 429, want 6 × 401 and 94 × 429", unauthorized, limited)
	}
	if got := lt.api.metric("parley_rate_limited_total", "limit", "login_backoff"); got != float64(limited) {
		t.Errorf("got parley_rate_limited_total{limit=login_backoff} %v, want %d", got, limited)
	}

	if got := lt.do("POST", "/api/v1/sessions", victimAddr, "", credentials("victim", password)); got.status != http.StatusCreated {
		t.Errorf("the owner from another address during the attack: got %d %s, want 201", got.status, got.body)
	}
	if got := lt.do("POST", "/api/v1/sessions", attackerAddr, "", credentials("victim", password)); got.status != http.StatusTooManyRequests {
		t.Errorf("the right password from the attacker's address during the backoff: got %d %s, want 429", got.status, got.body)
	}
	lt.clock.Advance(time.Second)
	if got := lt.do("POST", "/api/v1/sessions", attackerAddr, "", credentials("victim", password)); got.status != http.StatusCreated {
		t.Errorf("the right password from the attacker's address after the backoff: got %d %s, want 201", got.status, got.body)
	}
}

// A signed-in user, or whoever holds a stolen token, guessing the account's
// password through the endpoints that ask for it is held back as a login
// would be: they share the account's backoff at the address.
func TestPasswordGuessesThroughAStolenTokenShareTheLoginBackoff(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		method, path string
		body         func(guess string) any
	}{
		{"PUT", "/api/v1/users/me/password", func(g string) any {
			return map[string]string{"password": g, "new_password": "a new password"}
		}},
		{"DELETE", "/api/v1/users/me", func(g string) any { return map[string]string{"password": g} }},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			lt := newLimitTest(t, Limits{})
			stolen := lt.api.mustRegister("victim")
			var forbidden, limited int
			for i := range 20 {
				got := lt.do(tt.method, tt.path, attackerAddr, stolen, tt.body(fmt.Sprint("guess-", i)))
				switch got.status {
				case http.StatusForbidden:
					forbidden++
				case http.StatusTooManyRequests:
					limited++
				default:
					t.Fatalf("guess %d: got %d %s, want 403 or 429", i+1, got.status, got.body)
				}
			}
			if forbidden != 6 || limited != 14 {
				t.Errorf("20 wrong passwords: got %d × 403 and %d × 429, want 6 × 403 and 14 × 429", forbidden, limited)
			}
			if got := lt.do("POST", "/api/v1/sessions", attackerAddr, "", credentials("victim", password)); got.status != http.StatusTooManyRequests {
				t.Errorf("a login from the same address during the backoff: got %d %s, want 429", got.status, got.body)
			}
		})
	}
}

// Guesses sent all at once, each before any has failed, are held to the
// same count: the backoff counts an attempt before it checks the password.
func TestLoginBackoffHoldsConcurrentGuessesToTheFreeOnes(t *testing.T) {
	t.Parallel()
	lt := newLimitTest(t, Limits{})
	lt.api.mustRegister("victim")
	var wg sync.WaitGroup
	statuses := make([]int, 100)
	for i := range statuses {
		wg.Go(func() {
			req := httptest.NewRequest(http.MethodPost, "/api/v1/sessions", strings.NewReader(fmt.Sprintf(`{"username":"victim","password":"guess-%d"}`, i)))
			req.RemoteAddr = attackerAddr + ":40000"
			rec := httptest.NewRecorder()
			lt.h.ServeHTTP(rec, req)
			statuses[i] = rec.Code
		})
	}
	wg.Wait()
	checked := 0
	for _, s := range statuses {
		if s == http.StatusUnauthorized {
			checked++
		}
	}
	if checked != 6 {
		t.Errorf("100 concurrent guesses: got %d passwords checked (401), want 6", checked)
	}
}

// The backoff doubles from one second with each failure past the free
// ones, stops doubling at Max, and a success starts it over.
func TestLoginBackoffDoublesUpToMaxAndEndsWithASuccess(t *testing.T) {
	t.Parallel()
	lt := newLimitTest(t, Limits{LoginBackoff: Backoff{Free: 2, Max: 10 * time.Second}})
	lt.api.mustRegister("alice")
	wrong := credentials("alice", "wrong")

	for i := range 2 {
		if got := lt.do("POST", "/api/v1/sessions", attackerAddr, "", wrong); got.status != http.StatusUnauthorized {
			t.Fatalf("free failure %d: got %d %s, want 401", i+1, got.status, got.body)
		}
	}
	for _, want := range []time.Duration{1, 2, 4, 8, 10, 10} {
		want *= time.Second
		if got := lt.do("POST", "/api/v1/sessions", attackerAddr, "", wrong); got.status != http.StatusUnauthorized {
			t.Fatalf("a failure after waiting: got %d %s, want 401", got.status, got.body)
		}
		got := lt.do("POST", "/api/v1/sessions", attackerAddr, "", wrong)
		if got.status != http.StatusTooManyRequests {
			t.Fatalf("at once after it: got %d %s, want 429", got.status, got.body)
		}
		if wait := retryAfterOf(t, got); wait != want {
			t.Errorf("got a wait of %v, want %v", wait, want)
		}
		lt.clock.Advance(want - time.Millisecond)
		if got := lt.do("POST", "/api/v1/sessions", attackerAddr, "", wrong); got.status != http.StatusTooManyRequests {
			t.Fatalf("a millisecond before the wait is over: got %d, want 429", got.status)
		}
		lt.clock.Advance(time.Millisecond)
	}

	if got := lt.do("POST", "/api/v1/sessions", attackerAddr, "", credentials("alice", password)); got.status != http.StatusCreated {
		t.Fatalf("the right password after the wait: got %d %s, want 201", got.status, got.body)
	}
	for i := range 2 {
		if got := lt.do("POST", "/api/v1/sessions", attackerAddr, "", wrong); got.status != http.StatusUnauthorized {
			t.Errorf("free failure %d after a success: got %d %s, want 401", i+1, got.status, got.body)
		}
	}
}

// Failures long past are forgotten: a user who mistyped twice last week
// starts over with the free failures.
func TestLoginBackoffForgetsOldFailures(t *testing.T) {
	t.Parallel()
	lt := newLimitTest(t, Limits{LoginBackoff: Backoff{Free: 1, Max: time.Minute}})
	lt.api.mustRegister("alice")
	wrong := credentials("alice", "wrong")
	lt.do("POST", "/api/v1/sessions", attackerAddr, "", wrong)
	lt.do("POST", "/api/v1/sessions", attackerAddr, "", wrong) // backoff of 1s
	lt.clock.Advance(forgetAfter + time.Second)
	for i := range 2 {
		if got := lt.do("POST", "/api/v1/sessions", attackerAddr, "", wrong); got.status != http.StatusUnauthorized {
			t.Fatalf("failure %d after %v: got %d %s, want 401", i+1, forgetAfter, got.status, got.body)
		}
	}
	if got := lt.do("POST", "/api/v1/sessions", attackerAddr, "", wrong); got.status != http.StatusTooManyRequests || retryAfterOf(t, got) != time.Second {
		t.Errorf("the next at once: got %d %s, want 429 with the first wait, 1s", got.status, got.body)
	}
}

// Each limit on an address or a user: past its burst a request is 429
// rate_limited, with Retry-After from the bucket's real wait, counted by
// limit; another address or user is not touched, and the same one passes
// again once the wait is over.
func TestRESTLimitsRefuseOverTheBurstAndSayHowLong(t *testing.T) {
	t.Parallel()
	threeAMinute := Rate{N: 3, Per: time.Minute, Burst: 3} // a token every 20s
	off := Rate{Off: true}
	type request struct{ from, user string }
	tests := []struct {
		name   string
		limits Limits
		limit  string
		method string
		path   string // %d is the request's number; %s the room
		body   func(i int) any
		// The burst's requests, in turn, pass; then over is refused, and
		// other passes at once. over passes again after 20s.
		burst       []request
		over, other request
	}{
		{
			name: "sign-up per address", limits: Limits{SignupPerAddr: threeAMinute}, limit: "signup",
			method: "POST", path: "/api/v1/users", body: func(i int) any { return credentials(fmt.Sprint("newcomer", i), password) },
			burst: []request{{attackerAddr, ""}, {attackerAddr, ""}, {attackerAddr, ""}},
			over:  request{attackerAddr, ""}, other: request{victimAddr, ""},
		},
		{
			name: "login per address", limits: Limits{LoginPerAddr: threeAMinute}, limit: "login",
			method: "POST", path: "/api/v1/sessions", body: func(i int) any { return credentials("alice", password) },
			burst: []request{{attackerAddr, ""}, {attackerAddr, ""}, {attackerAddr, ""}},
			over:  request{attackerAddr, ""}, other: request{victimAddr, ""},
		},
		{
			name: "room creation per user", limits: Limits{RoomsCreatePerUser: threeAMinute, RoomsCreatePerAddr: off}, limit: "rooms_create",
			method: "POST", path: "/api/v1/rooms", body: func(i int) any { return map[string]string{"name": fmt.Sprint("room ", i)} },
			burst: []request{{attackerAddr, "alice"}, {attackerAddr, "alice"}, {victimAddr, "alice"}},
			over:  request{victimAddr, "alice"}, other: request{attackerAddr, "bob"},
		},
		{
			name: "room creation per address", limits: Limits{RoomsCreatePerUser: off, RoomsCreatePerAddr: threeAMinute}, limit: "rooms_create",
			method: "POST", path: "/api/v1/rooms", body: func(i int) any { return map[string]string{"name": fmt.Sprint("room ", i)} },
			burst: []request{{attackerAddr, "alice"}, {attackerAddr, "bob"}, {attackerAddr, "alice"}},
			over:  request{attackerAddr, "bob"}, other: request{victimAddr, "bob"},
		},
		{
			name: "history per user", limits: Limits{HistoryPerUser: threeAMinute, HistoryPerAddr: off}, limit: "history",
			method: "GET", path: "/api/v1/rooms/%s/messages",
			burst: []request{{attackerAddr, "alice"}, {victimAddr, "alice"}, {attackerAddr, "alice"}},
			over:  request{victimAddr, "alice"}, other: request{attackerAddr, "bob"},
		},
		{
			name: "history per address", limits: Limits{HistoryPerUser: off, HistoryPerAddr: threeAMinute}, limit: "history",
			method: "GET", path: "/api/v1/rooms/%s/messages",
			burst: []request{{attackerAddr, "alice"}, {attackerAddr, "bob"}, {attackerAddr, "bob"}},
			over:  request{attackerAddr, "alice"}, other: request{victimAddr, "alice"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lt := newLimitTest(t, tt.limits)
			tokens := map[string]string{"alice": lt.api.mustRegister("alice"), "bob": lt.api.mustRegister("bob")}
			room := lt.api.mustCreateRoom("lobby")
			n := 0
			send := func(r request) response {
				n++
				path := tt.path
				if strings.Contains(path, "%s") {
					path = fmt.Sprintf(path, room)
				}
				var body any
				if tt.body != nil {
					body = tt.body(n)
				}
				return lt.do(tt.method, path, r.from, tokens[r.user], body)
			}
			for i, r := range tt.burst {
				if got := send(r); got.status >= 400 {
					t.Fatalf("request %d of the burst (%s as %q): got %d %s, want it to pass", i+1, r.from, r.user, got.status, got.body)
				}
			}
			got := send(tt.over)
			if got.status != http.StatusTooManyRequests {
				t.Fatalf("past the burst (%s as %q): got %d %s, want 429", tt.over.from, tt.over.user, got.status, got.body)
			}
			lt.wantRefusal(got, "20")
			if wait := retryAfterOf(t, got); wait != 20*time.Second {
				t.Errorf("got retry_after %v, want 20s", wait)
			}
			if got := lt.api.metric("parley_rate_limited_total", "limit", tt.limit); got != 1 {
				t.Errorf("got parley_rate_limited_total{limit=%q} %v, want 1", tt.limit, got)
			}
			if got := send(tt.other); got.status >= 400 {
				t.Errorf("another (%s as %q) at once: got %d %s, want it to pass", tt.other.from, tt.other.user, got.status, got.body)
			}
			lt.clock.Advance(20 * time.Second)
			if got := send(tt.over); got.status >= 400 {
				t.Errorf("20s later: got %d %s, want it to pass", got.status, got.body)
			}
		})
	}
}

// One user made 50,000 rooms in 3 seconds. By default one user gets a
// burst of 300 (what the load generator's largest scenario creates), and
// then one a minute.
func TestOneUserCreatingRoomsFastIsThrottledByDefault(t *testing.T) {
	t.Parallel()
	lt := newLimitTest(t, Limits{})
	token := lt.api.mustRegister("alice")
	created := 0
	for i := range 1000 {
		got := lt.do("POST", "/api/v1/rooms", attackerAddr, token, map[string]string{"name": fmt.Sprint("room ", i)})
		if got.status == http.StatusTooManyRequests {
			lt.wantRefusal(got, "60")
			break
		}
		if got.status != http.StatusCreated {
			t.Fatalf("room %d: got %d %s, want 201 or 429", i+1, got.status, got.body)
		}
		created++
	}
	if created != 300 {
		t.Errorf("got %d rooms created before the first 429, want 300", created)
	}
}

// A sign-up flood from one address: by default a burst of 1,000 (every
// shipped scenario but capacity, twice over), then ten a second.
func TestSignupFloodFromOneAddressIsThrottledByDefault(t *testing.T) {
	t.Parallel()
	lt := newLimitTest(t, Limits{})
	for i := range 1100 {
		got := lt.do("POST", "/api/v1/users", attackerAddr, "", credentials(fmt.Sprint("flood", i), password))
		if got.status == http.StatusTooManyRequests {
			lt.wantRefusal(got, "1")
			if i != 1000 {
				t.Errorf("got the first 429 at sign-up %d, want it at 1001", i+1)
			}
			return
		}
		if got.status != http.StatusCreated {
			t.Fatalf("sign-up %d: got %d %s, want 201 or 429", i+1, got.status, got.body)
		}
	}
	t.Error("got 1100 sign-ups from one address, want a 429 after 1000")
}

// A limit switched off refuses nothing.
func TestALimitSwitchedOffRefusesNothing(t *testing.T) {
	t.Parallel()
	lt := newLimitTest(t, Limits{HistoryPerUser: Rate{Off: true}, HistoryPerAddr: Rate{Off: true}})
	token := lt.api.mustRegister("alice")
	room := lt.api.mustCreateRoom("lobby")
	for i := range 300 {
		if got := lt.do("GET", "/api/v1/rooms/"+room+"/messages", attackerAddr, token, nil); got.status != http.StatusOK {
			t.Fatalf("history read %d with the limits off: got %d %s, want 200", i+1, got.status, got.body)
		}
	}
}

// The backoff's memory is bounded under an attacker who tries ever new
// usernames: at most maxKeys entries, the same bound as a keyedLimiter.
func TestLoginBackoffMemoryIsBounded(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	b := newLoginBackoff(Backoff{Free: 5, Max: time.Minute}, clockAt(now))
	b.maxKeys = 100
	for i := range 10_000 {
		key := backoffKey(fmt.Sprint("user", i), netip.MustParseAddr(attackerAddr))
		b.attempt(key)
	}
	if got := len(b.entries); got != b.maxKeys {
		t.Errorf("after 10,000 usernames: got %d entries, want the cap, %d", got, b.maxKeys)
	}
	long := backoffKey(strings.Repeat("x", 10_000), netip.MustParseAddr(attackerAddr))
	if len(long) > 100 {
		t.Errorf("a 10,000-byte username: got a key of %d bytes, want at most 100", len(long))
	}
}

// Behind a trusted proxy the limits key on the address the proxy saw: the
// attacker's sign-ups use up the attacker's bucket, not everyone's behind
// the proxy, and a forged X-Forwarded-For entry left of the proxy's is
// ignored.
func TestLimitsKeyOnTheAddressBehindATrustedProxy(t *testing.T) {
	t.Parallel()
	lt := newLimitTestWith(t, Config{
		Limits:         Limits{SignupPerAddr: Rate{N: 1, Per: time.Hour, Burst: 2}},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	})
	const proxy = "10.0.0.1"
	signUp := func(name, forwardedFor string) int {
		lt.t.Helper()
		return lt.doWith("POST", "/api/v1/users", proxy, "", credentials(name, password), http.Header{"X-Forwarded-For": {forwardedFor}}).status
	}
	for i := range 2 {
		if got := signUp(fmt.Sprint("attacker", i), attackerAddr); got != http.StatusCreated {
			t.Fatalf("sign-up %d of the burst: got %d, want 201", i+1, got)
		}
	}
	if got := signUp("attacker2", victimAddr+", "+attackerAddr); got != http.StatusTooManyRequests {
		t.Errorf("past the burst, with a forged entry: got %d, want 429", got)
	}
	if got := signUp("victim", victimAddr); got != http.StatusCreated {
		t.Errorf("another client behind the same proxy: got %d, want 201", got)
	}
}

// limitTest is an API on the memory store whose limits run on a clock the
// test moves. Requests are served in process, from whatever address the
// test names.
type limitTest struct {
	t     *testing.T
	api   *testAPI
	h     http.Handler
	clock *testenv.Clock
}

func newLimitTest(t *testing.T, limits Limits) *limitTest {
	t.Helper()
	return newLimitTestWith(t, Config{Limits: limits})
}

func newLimitTestWith(t *testing.T, cfg Config) *limitTest {
	t.Helper()
	clock := testenv.NewClock(time.Now())
	cfg.Now = clock.Now
	api, hub := newTestAPI(t, memstore.New(memstore.Options{}), cfg)
	t.Cleanup(hub.Close)
	return &limitTest{t: t, api: api, h: api.server.Handler(), clock: clock}
}

// do sends a request from address from, with token if not empty, and body
// as JSON if not nil.
func (lt *limitTest) do(method, path, from, token string, body any) response {
	lt.t.Helper()
	return lt.doWith(method, path, from, token, body, nil)
}

// doWith is do with headers.
func (lt *limitTest) doWith(method, path, from, token string, body any, header http.Header) response {
	lt.t.Helper()
	var req *http.Request
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			lt.t.Fatal(err)
		}
		req = httptest.NewRequest(method, path, strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.RemoteAddr = from + ":40000"
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	lt.h.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
}

// wantRefusal checks that got is a refusal by a limit, asking to wait
// retryAfter seconds.
func (lt *limitTest) wantRefusal(got response, retryAfter string) {
	lt.t.Helper()
	if got.status != http.StatusTooManyRequests {
		lt.t.Fatalf("got %d %s, want 429", got.status, got.body)
	}
	if e := mustDecode[errorJSON](lt.t, got); e.Error.Code != "rate_limited" {
		lt.t.Errorf("got code %q, want rate_limited", e.Error.Code)
	}
	if h := got.header.Get("Retry-After"); h != retryAfter {
		lt.t.Errorf("got Retry-After %q, want %q", h, retryAfter)
	}
}

// retryAfterOf is a refusal's wait as its envelope's retry_after gives it,
// to the millisecond.
func retryAfterOf(t *testing.T, got response) time.Duration {
	t.Helper()
	var e struct {
		Error struct {
			RetryAfter float64 `json:"retry_after"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(got.body), &e); err != nil {
		t.Fatalf("decoding %q: %v", got.body, err)
	}
	return time.Duration(e.Error.RetryAfter * 1000 * float64(time.Millisecond)).Round(time.Millisecond)
}

func credentials(username, pw string) map[string]string {
	return map[string]string{"username": username, "password": pw}
}
