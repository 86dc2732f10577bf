package chat_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/memstore"
)

// switchboard links hubs in one process the way a broker links replicas, so
// that the hub's cross-replica logic can be tested without one. It loses
// events on demand. The real broker, redisbus over Redis, has its own tests,
// and the server's cluster tests run both together.
type switchboard struct {
	mu    sync.Mutex
	ports []*port
	down  bool
}

// port is one hub's connection to the switchboard: a chat.Bus that hands
// events to the hub from its own goroutine, in order, as a broker would.
type port struct {
	sb      *switchboard
	origin  string
	hub     *chat.Hub
	watched map[string]bool // guarded by sb.mu
	inbox   chan func()
	done    chan struct{}
	wg      sync.WaitGroup
}

func (sb *switchboard) newPort(origin string) *port {
	p := &port{sb: sb, origin: origin, watched: make(map[string]bool), inbox: make(chan func(), 100000), done: make(chan struct{})}
	sb.mu.Lock()
	sb.ports = append(sb.ports, p)
	sb.mu.Unlock()
	return p
}

// start runs the port's delivery goroutine for hub.
func (p *port) start(hub *chat.Hub) {
	p.hub = hub
	p.wg.Go(func() {
		for {
			select {
			case <-p.done:
				return
			case f := <-p.inbox:
				f()
			}
		}
	})
}

func (p *port) stop() {
	p.sb.mu.Lock()
	p.sb.ports = slices.DeleteFunc(p.sb.ports, func(q *port) bool { return q == p })
	p.sb.mu.Unlock()
	close(p.done)
	p.wg.Wait()
}

func (p *port) Publish(_ context.Context, ev chat.Event) {
	ev.Origin = p.origin
	p.sb.mu.Lock()
	defer p.sb.mu.Unlock()
	if p.sb.down {
		return
	}
	for _, q := range p.sb.ports {
		if q != p && q.watched[ev.Room] {
			q.inbox <- func() { q.hub.Receive(context.Background(), ev) }
		}
	}
}

func (p *port) Watch(room string) {
	p.sb.mu.Lock()
	defer p.sb.mu.Unlock()
	p.watched[room] = true
	if !p.sb.down {
		p.inbox <- func() { p.hub.Resync(room) }
	}
}

func (p *port) Unwatch(room string) {
	p.sb.mu.Lock()
	defer p.sb.mu.Unlock()
	delete(p.watched, room)
}

// cut loses every event from now on, as a broker that went away.
func (sb *switchboard) cut() {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.down = true
}

// restore carries events again, and every port resubscribes to its rooms,
// as a bus does when its broker comes back.
func (sb *switchboard) restore() {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.down = false
	for _, p := range sb.ports {
		for room := range p.watched {
			p.inbox <- func() { p.hub.Resync(room) }
		}
	}
}

// replica is one hub with its service, sharing the cluster's store.
type replica struct {
	hub  *chat.Hub
	svc  *chat.Service
	port *port
}

type cluster struct {
	store    *memstore.Store
	sb       *switchboard
	replicas []*replica
	room     chat.Room
}

// newCluster starts n hubs on one store, linked by a switchboard.
func newCluster(t *testing.T, n int, opts chat.HubOptions) *cluster {
	t.Helper()
	return newClusterOf(t, n, opts, nil)
}

// newClusterOf is newCluster where replica i sees the store through
// view(i, store) when view is not nil.
func newClusterOf(t *testing.T, n int, opts chat.HubOptions, view func(int, chat.Store) chat.Store) *cluster {
	t.Helper()
	c := &cluster{store: memstore.New(memstore.Options{}), sb: &switchboard{}}
	for i := range n {
		p := c.sb.newPort(fmt.Sprintf("replica-%d", i))
		o := opts
		o.Bus = p
		var store chat.Store = c.store
		if view != nil {
			store = view(i, store)
		}
		hub := chat.NewHub(store, rosterCodec{}, o)
		p.start(hub)
		rep := &replica{hub: hub, svc: chat.NewService(store, hub, nil), port: p}
		t.Cleanup(func() { rep.crash() })
		c.replicas = append(c.replicas, rep)
	}
	room, err := c.replicas[0].svc.CreateRoom(context.Background(), "lobby")
	if err != nil {
		t.Fatal(err)
	}
	c.room = room
	return c
}

// crash takes the replica off the switchboard and stops its hub without any
// goodbye, as a killed process would. It may be called more than once.
func (r *replica) crash() {
	select {
	case <-r.port.done:
		return
	default:
	}
	r.port.stop()
	r.hub.Close()
}

func (c *cluster) mustJoin(t *testing.T, i int, sub chat.Subscriber, u chat.User) {
	t.Helper()
	if err := c.replicas[i].svc.Join(context.Background(), c.room.ID, sub, u, nil); err != nil {
		t.Fatalf("join on replica %d: %v", i, err)
	}
}

func (c *cluster) mustSend(t *testing.T, i int, u chat.User, clientID string) chat.Message {
	t.Helper()
	m, _, err := c.replicas[i].svc.Send(context.Background(), u, c.room.ID, clientID, "hello")
	if err != nil {
		t.Fatalf("send on replica %d: %v", i, err)
	}
	return m
}

// joinEverywhere adds one member per replica and returns them once the
// hubs are idle again. Only bubbles call it.
func (c *cluster) joinEverywhere(t *testing.T) []*recorder {
	t.Helper()
	var subs []*recorder
	for i := range c.replicas {
		r := &recorder{}
		c.mustJoin(t, i, r, chat.User{ID: fmt.Sprintf("u-%d", i), Username: fmt.Sprintf("user%d", i)})
		subs = append(subs, r)
	}
	// The resyncs that the joins started are over, so that a test that
	// cuts the broker next knows that later deliveries do not come from
	// them.
	synctest.Wait()
	return subs
}

func has(r *recorder, frame string) func() bool {
	return func() bool { return slices.Contains(r.got(), frame) }
}

func TestReplicasDeliverEveryMessageToEveryMemberInOrderOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, chat.HubOptions{})
		subs := c.joinEverywhere(t)

		const perReplica = 200
		var wg sync.WaitGroup
		for i := range c.replicas {
			wg.Go(func() {
				for n := range perReplica {
					c.mustSend(t, i, alice, fmt.Sprintf("r%d-%d", i, n))
				}
			})
		}
		wg.Wait()

		const total = perReplica * 3
		for i, s := range subs {
			stepUntil(t, fmt.Sprintf("member on replica %d to get %d messages", i, total), func() bool { return len(s.seqs()) >= total })
			wantSeqs(t, s.seqs(), 1, total)
		}
	})
}

func TestAReplicaCatchesUpOnMessagesTheBrokerLost(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		// The broker stays down, and no later message reveals the gap: only the
		// periodic comparison with the store can find the lost messages.
		c := newCluster(t, 2, chat.HubOptions{CatchUpInterval: 20 * time.Millisecond})
		subs := c.joinEverywhere(t)
		c.sb.cut()
		for n := range 5 {
			c.mustSend(t, 0, alice, fmt.Sprintf("lost-%d", n))
		}
		stepUntil(t, "the member on the other replica to catch up", func() bool { return len(subs[1].seqs()) >= 5 })
		wantSeqs(t, subs[1].seqs(), 1, 5)
		wantSeqs(t, subs[0].seqs(), 1, 5)
		if st := c.replicas[1].hub.Stats(); st.Backfills == 0 || st.Backfilled < 5 {
			t.Fatalf("got %d backfills of %d messages, want at least 1 of 5", st.Backfills, st.Backfilled)
		}
	})
}

func TestAReplicaResyncsWhenTheBrokerReturns(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		// Periodic catch-up is off: the resync on resubscribing does the work.
		c := newCluster(t, 2, chat.HubOptions{CatchUpInterval: time.Hour})
		subs := c.joinEverywhere(t)
		c.sb.cut()
		for n := range 3 {
			c.mustSend(t, 0, alice, fmt.Sprintf("lost-%d", n))
		}
		advance(time.Second) // gives a wrong delivery every chance to show
		if got := subs[1].seqs(); len(got) != 0 {
			t.Fatalf("got seqs %v across a cut broker, want none", got)
		}
		// No later message reveals the gap: the resync alone must find it.
		c.sb.restore()
		stepUntil(t, "the member on the other replica to catch up", func() bool { return len(subs[1].seqs()) >= 3 })
		wantSeqs(t, subs[1].seqs(), 1, 3)

		c.mustSend(t, 1, alice, "after")
		for i, s := range subs {
			stepUntil(t, fmt.Sprintf("member on replica %d to get the next message", i), func() bool { return len(s.seqs()) >= 4 })
			wantSeqs(t, s.seqs(), 1, 4)
		}
	})
}

// A broker event claiming a seq far ahead, or a message of another room,
// must not silence the room: the real messages still arrive.
func TestABadBrokerEventDoesNotSilenceARoom(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 2, chat.HubOptions{})
		subs := c.joinEverywhere(t)
		c.mustSend(t, 0, alice, "first")
		stepUntil(t, "the first message everywhere", func() bool { return len(subs[1].seqs()) == 1 })

		hub := c.replicas[1].hub
		hub.Receive(context.Background(), chat.Event{Kind: chat.EventMessage, Room: c.room.ID, Origin: "evil",
			Message: chat.Message{Room: c.room.ID, Seq: 1_000_000}})
		hub.Receive(context.Background(), chat.Event{Kind: chat.EventMessage, Room: "another-room", Origin: "evil",
			Message: chat.Message{Room: c.room.ID, Seq: 2}})
		for n := range 5 {
			c.mustSend(t, 0, alice, fmt.Sprintf("after-%d", n))
		}
		stepUntil(t, "every real message on the other replica", func() bool { return len(subs[1].seqs()) >= 6 })
		wantSeqs(t, subs[1].seqs(), 1, 6)
	})
}

// boundedBus is a bus with a queue as small as a real one's, drained as fast
// as it can be: it counts what a burst of publishes overflows.
type boundedBus struct {
	queue   chan chat.Event
	dropped atomic.Int64
	rosters atomic.Int64
	done    chan struct{}
}

func newBoundedBus(t *testing.T, size int) *boundedBus {
	b := &boundedBus{queue: make(chan chat.Event, size), done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-b.done:
				return
			case ev := <-b.queue:
				if ev.Kind == chat.EventRoster {
					b.rosters.Add(1)
				}
			}
		}
	})
	t.Cleanup(func() { close(b.done); wg.Wait() })
	return b
}

func (b *boundedBus) Publish(_ context.Context, ev chat.Event) {
	select {
	case b.queue <- ev:
	default:
		b.dropped.Add(1)
	}
}

func (b *boundedBus) Watch(string)   {}
func (b *boundedBus) Unwatch(string) {}

// A replica with many rooms spreads their rosters over the interval instead
// of sending them all at once, which would overflow the bus's queue.
func TestRostersOfManyRoomsAreSpreadOut(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const rooms = 2000
		bus := newBoundedBus(t, 1000)
		store := memstore.New(memstore.Options{})
		hub := chat.NewHub(store, rosterCodec{}, chat.HubOptions{Bus: bus, RosterInterval: 500 * time.Millisecond, CatchUpInterval: time.Hour})
		t.Cleanup(hub.Close)
		svc := chat.NewService(store, hub, nil)
		for i := range rooms {
			room, err := svc.CreateRoom(context.Background(), fmt.Sprint("room-", i))
			if err != nil {
				t.Fatal(err)
			}
			if err := svc.Join(context.Background(), room.ID, &recorder{}, alice, nil); err != nil {
				t.Fatal(err)
			}
		}
		stepUntil(t, "two rounds of rosters", func() bool { return bus.rosters.Load() >= 2*rooms })
		if n := bus.dropped.Load(); n != 0 {
			t.Fatalf("the bus dropped %d events, want none", n)
		}
	})
}
