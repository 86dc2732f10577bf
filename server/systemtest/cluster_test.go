package systemtest

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/testenv"
)

// The cluster tests run three server processes against the machine's
// PostgreSQL and Redis, each reached through a fault-injecting proxy, and
// drive chat clients through them while a scenario breaks something. The
// ledger (ledger_test.go) then checks that every member got every message
// once and in order. Run them with -v to see each scenario's figures.

// presenceInterval is how often the replicas send each other their rosters.
const presenceInterval = 500 * time.Millisecond

// cluster is a set of replicas sharing one database and one Redis, both
// behind proxies that scenarios can cut.
type cluster struct {
	t         *testing.T
	env       map[string]string
	pg, redis *testenv.Proxy

	mu   sync.Mutex
	live []*process // the replicas clients are sent to
	next int        // round robin over live
}

func newCluster(t *testing.T, replicas int) *cluster {
	t.Helper()
	return newClusterWith(t, replicas, nil)
}

// newClusterWith starts a cluster whose replicas have extra in their
// environment as well.
func newClusterWith(t *testing.T, replicas int, extra map[string]string) *cluster {
	t.Helper()
	db, err := url.Parse(testenv.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rd, err := url.Parse(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, pg: testenv.StartProxy(t, db.Host), redis: testenv.StartProxy(t, rd.Host)}
	db.Host, rd.Host = c.pg.Addr(), c.redis.Addr()
	c.env = map[string]string{
		"PARLEY_ADDR":              "127.0.0.1:0",
		"PARLEY_ADMIN_ADDR":        "127.0.0.1:0",
		"DATABASE_URL":             db.String(),
		"REDIS_URL":                rd.String(),
		"PARLEY_JWT_SECRET":        "cluster-test-secret-cluster-test-secret",
		"PARLEY_PASSWORD_COST":     "4",
		"PARLEY_USER_RATE":         "1000",
		"PARLEY_CONN_RATE":         "1000",
		"PARLEY_CATCHUP_INTERVAL":  "1s",
		"PARLEY_PRESENCE_INTERVAL": presenceInterval.String(),
		"PARLEY_DRAIN_TIMEOUT":     "10s",
		"PARLEY_DRAIN_JITTER":      "500ms",
		"LOG_LEVEL":                "info",
	}
	maps.Copy(c.env, extra)
	for range replicas {
		c.start()
	}
	return c
}

// start adds a replica and sends clients to it.
func (c *cluster) start() *process {
	p := startProcess(c.t, c.env)
	c.mu.Lock()
	c.live = append(c.live, p)
	c.mu.Unlock()
	return p
}

// withdraw stops sending clients to p, as a load balancer does with a
// replica that is going away, and returns it.
func (c *cluster) withdraw(i int) *process {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.live[i]
	c.live = append(c.live[:i:i], c.live[i+1:]...)
	return p
}

// pick is the load balancer, round robin: the WebSocket URL of the next
// live replica, so that every replica gets clients.
func (c *cluster) pick() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	return c.live[c.next%len(c.live)].wsURL()
}

// busFigures sums what the replicas' buses and hubs counted.
func (c *cluster) busFigures() string {
	var received, backfills, backfilled float64
	for _, p := range c.live {
		received += p.metric("parley_bus_received_total")
		backfills += p.metric("parley_backfills_total")
		backfilled += p.metric("parley_backfilled_messages_total")
	}
	return fmt.Sprintf("bus events received %v, backfills %v of %v messages", received, backfills, backfilled)
}

func (c *cluster) any() *process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live[0]
}

// load is a set of clients chatting through the cluster.
type load struct {
	clients []*chatClient
	rooms   []string
	token   string
	stop    chan struct{} // ends the clients
	quiet   chan struct{} // ends new messages; resends go on
	wg      sync.WaitGroup
}

// startLoad signs up users, each of whom joins every room and sends rate
// messages a second, round robin over the rooms.
func (c *cluster) startLoad(users, rooms int, rate float64) *load {
	c.t.Helper()
	srv := c.any()
	l := &load{stop: make(chan struct{}), quiet: make(chan struct{})}
	owner := srv.mustSignUp("owner")
	l.token = owner.Token
	for i := range rooms {
		l.rooms = append(l.rooms, srv.mustCreateRoom(owner.Token, fmt.Sprintf("room-%d", i)).ID)
	}
	for i := range users {
		name := fmt.Sprintf("user%d", i)
		cl := newChatClient(name, srv.mustSignUp(name).Token, l.rooms, c.pick)
		l.clients = append(l.clients, cl)
		l.wg.Go(func() { cl.run(l.stop) })
		l.wg.Go(func() {
			tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
			defer tick.Stop()
			for {
				select {
				case <-l.stop:
					return
				case <-tick.C:
				}
				select {
				case <-l.quiet:
					cl.tick(false)
				default:
					cl.tick(true)
				}
			}
		})
	}
	c.t.Cleanup(l.end)
	return l
}

func (l *load) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// carry lets the load run until its clients have had n more sends acked, so
// that a step of a scenario carries the same traffic however busy the
// machine is: a wait for traffic, not for a time.
func (l *load) carry(t *testing.T, n int, during string) {
	t.Helper()
	target := l.acked() + n
	testenv.EventuallyWithin(t, loadWait, fmt.Sprintf("%d more sends to be acked %s", n, during), func() bool { return l.acked() >= target })
}

// loadWait bounds each wait on the load: a cluster that acks none of a few
// hundred sends in this time is broken, not slow.
const loadWait = 30 * time.Second

// acked counts the sends acked so far, over every client.
func (l *load) acked() int {
	n := 0
	for _, cl := range l.clients {
		n += cl.ackedCount()
	}
	return n
}

// refused counts the sends refused so far with the error code.
func (l *load) refused(code string) int {
	n := 0
	for _, cl := range l.clients {
		n += cl.refusedCount(code)
	}
	return n
}

// waitConnected waits until every client is connected and has joined every
// room again.
func (l *load) waitConnected(t *testing.T, after string) {
	t.Helper()
	testenv.EventuallyWithin(t, loadWait, "every client to be back in every room "+after, func() bool {
		for _, cl := range l.clients {
			if !cl.connected() {
				return false
			}
		}
		return true
	})
}

// finish stops new messages, waits until every send is acked and every
// client has caught up with every room (or 20 s have passed: the audit then
// reports what is missing), and audits the ledger.
func (l *load) finish(c *cluster) ledgerReport {
	c.t.Helper()
	close(l.quiet)
	testenv.EventuallyWithin(c.t, loadWait, "every send to be acked", func() bool {
		for _, cl := range l.clients {
			if cl.unacked() > 0 {
				return false
			}
		}
		return true
	})
	var rooms struct{ Rooms []apiRoom }
	if code := c.any().call("GET", "/api/v1/rooms", l.token, nil, &rooms); code != http.StatusOK {
		c.t.Fatalf("list rooms: got status %d, want 200", code)
	}
	final := make(map[string]int64)
	for _, r := range rooms.Rooms {
		final[r.ID] = r.LastSeq
	}
	testenv.Poll(20*time.Second, func() bool {
		for _, cl := range l.clients {
			if !cl.caughtUp(final) {
				return false
			}
		}
		return true
	})
	l.end()
	return audit(l.clients, final)
}

// The scenarios below load 12 users in 3 rooms at 10 messages a second
// each: 120 sends a second, so carrying 120 acks takes about a second.

func TestClusterSteady(t *testing.T) {
	c := newCluster(t, 3)
	l := c.startLoad(12, 3, 10)
	l.carry(t, 480, "in steady chat")
	rep := l.finish(c)
	t.Logf("steady: %s; %s", rep, c.busFigures())
	wantClean(t, rep)
	// A clean ledger alone would not show that Redis carried anything:
	// catch-up from the store also delivers everything, only later.
	for i, p := range c.live {
		served := p.metricLabelled("parley_ws_upgrades_total", `result="ok"`) > 0
		if got := p.metric("parley_bus_received_total"); served && got <= 0 {
			t.Errorf("replica %d served clients but received %v events over Redis, want some", i, got)
		}
	}
}

func TestClusterRedisOutage(t *testing.T) {
	c := newCluster(t, 3)
	l := c.startLoad(12, 3, 10)
	l.carry(t, 120, "before the fault")
	// A slow broker first: events arrive late, after catch-ups may have
	// read the same messages from the store, and must not be seen twice.
	c.redis.SetLatency(300 * time.Millisecond)
	l.carry(t, 240, "through a slow broker")
	c.redis.SetLatency(0)
	// Cutting every connection and refusing new ones is what a Redis
	// restart looks like from the replicas: subscriptions and queued
	// publishes are gone.
	c.redis.Cut()
	l.carry(t, 360, "while Redis is away")
	// The audit runs while Redis is still away: members on other replicas
	// than the sender's must have every message from the periodic catch-up
	// with the store alone.
	rep := l.finish(c)
	t.Logf("redis outage: %s; %s", rep, c.busFigures())
	wantClean(t, rep)

	c.redis.Restore()
	for i, p := range c.live {
		testenv.Eventually(t, fmt.Sprintf("replica %d to reconnect to Redis", i), func() bool {
			return p.metric("parley_bus_reconnects_total") >= 1
		})
	}
	var backfills float64
	for _, p := range c.live {
		backfills += p.metric("parley_backfills_total")
	}
	if backfills == 0 {
		t.Fatal("no replica backfilled, yet the broker was away while messages crossed replicas")
	}
}

func TestClusterPostgresOutage(t *testing.T) {
	c := newCluster(t, 3)
	l := c.startLoad(12, 3, 10)
	l.carry(t, 120, "before the fault")
	// A slow database first: acks wait, group commits grow. A replica takes
	// a connection's sends one at a time, so each ack now waits out several
	// round trips of latency: two dozen acks take seconds.
	c.pg.SetLatency(100 * time.Millisecond)
	l.carry(t, 24, "through a slow database")
	c.pg.SetLatency(0)
	c.pg.Cut()
	srv := c.any()
	testenv.Eventually(t, "/readyz to turn 503 without the database", func() bool { return srv.status("/readyz") == http.StatusServiceUnavailable })
	// The outage lasts until the clients have felt it: sends refused as
	// unavailable, which each client retries.
	testenv.EventuallyWithin(t, loadWait, "sends refused as unavailable while the database is away", func() bool { return l.refused("unavailable") >= 120 })
	c.pg.Restore()
	for _, p := range c.live {
		testenv.Eventually(t, "/readyz to turn 200 again", func() bool { return p.status("/readyz") == http.StatusOK })
	}
	l.carry(t, 240, "after the database came back")
	rep := l.finish(c)
	t.Logf("postgres outage: %s; %s", rep, c.busFigures())
	wantClean(t, rep)
	if rep.Refused["unavailable"] == 0 {
		t.Fatalf("no send was refused as unavailable while the database was away: %s", rep)
	}
}

func TestClusterReplicaKilled(t *testing.T) {
	c := newCluster(t, 3)
	l := c.startLoad(12, 3, 10)

	// A user on the doomed replica who will not come back, watched from
	// another one: the crash must not leave the user online.
	doomed, survivor := c.live[0], c.live[1]
	lobby := survivor.mustCreateRoom(l.token, "lobby").ID
	lurker := doomed.dial(doomed.mustSignUp("lurker").Token)
	lurker.join(lobby, nil)
	watcher := survivor.dial(l.token)
	joined := watcher.join(lobby, nil)
	testenv.Eventually(t, "the watcher to see the lurker online", func() bool {
		return listed(joined.Members, "lurker") || sawPresence(watcher, "lurker", "online")
	})

	// That nothing happens can only be seen over time: three rounds of
	// rosters, in which the lurker's replica must keep the lurker online.
	time.Sleep(3 * presenceInterval)
	if sawPresence(watcher, "lurker", "offline") {
		t.Fatal("the watcher saw the lurker go offline while its replica was still up")
	}
	c.withdraw(0)
	doomed.kill()
	testenv.Eventually(t, "the watcher to see the lurker go offline", func() bool { return sawPresence(watcher, "lurker", "offline") })
	l.waitConnected(t, "after the kill")
	l.carry(t, 240, "after the kill")
	rep := l.finish(c)
	t.Logf("replica killed: %s; %s", rep, c.busFigures())
	wantClean(t, rep)
	if rep.Reconnects == 0 {
		t.Fatalf("no client reconnected after its replica was killed: %s", rep)
	}
}

func TestClusterRollingRestart(t *testing.T) {
	c := newCluster(t, 3)
	l := c.startLoad(12, 3, 10)
	l.carry(t, 120, "before the restart")
	for i := range 3 {
		old := c.withdraw(0)
		old.terminate(t)
		c.start()
		step := fmt.Sprintf("after restart %d", i+1)
		l.waitConnected(t, step)
		l.carry(t, 120, step)
	}
	rep := l.finish(c)
	t.Logf("rolling restart: %s; %s", rep, c.busFigures())
	wantClean(t, rep)
	if rep.CloseCodes[1001] == 0 {
		t.Fatalf("no client was told 1001 by a draining replica: %s", rep)
	}
}

// sawPresence reports whether the client has been told by a presence frame
// that user's status is status, consuming frames as it looks.
func sawPresence(c *wsClient, user, status string) bool {
	for {
		select {
		case f := <-c.frames:
			if f.Type == "presence" && f.User.Username == user && f.Status == status {
				return true
			}
		default:
			return false
		}
	}
}

func listed(members []apiUser, user string) bool {
	for _, m := range members {
		if m.Username == user {
			return true
		}
	}
	return false
}
