package systemtest

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/testenv"
)

// BenchmarkEndToEnd runs the whole server in process (run, the real handler,
// the in-memory store) with N sockets in M rooms. In each room one member
// sends, with a window of unacked messages, and every member (the sender
// too) receives. Each op is one message; the metrics are deliveries per
// second and the delivery latency from send to receipt, which includes the
// clients' own work on the same two cores.
func BenchmarkEndToEnd(b *testing.B) {
	for _, shape := range []struct{ rooms, members int }{{20, 10}, {4, 50}} {
		b.Run(fmt.Sprintf("rooms=%d/members=%d", shape.rooms, shape.members), func(b *testing.B) {
			benchEndToEnd(b, shape.rooms, shape.members, nil)
		})
	}
}

// BenchmarkTelemetryCost runs the same workload as BenchmarkEndToEnd with
// tracing off and with traces sampled at 10% and exported over OTLP/HTTP to
// a stand-in collector, in one run, so the two can be compared.
func BenchmarkTelemetryCost(b *testing.B) {
	col := startBenchCollector(b)
	for _, mode := range []struct {
		name string
		env  map[string]string
	}{
		{"tracing=off", map[string]string{"OTEL_TRACES_EXPORTER": "none"}},
		{"tracing=sampled10pct", map[string]string{
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": col.URL + "/v1/traces",
			"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
			"OTEL_TRACES_SAMPLER":                "parentbased_traceidratio",
			"OTEL_TRACES_SAMPLER_ARG":            "0.1",
		}},
	} {
		b.Run(mode.name, func(b *testing.B) { benchEndToEnd(b, 20, 10, mode.env) })
	}
}

// window bounds each sender's unacked messages, so that the benchmark
// measures a loaded server rather than clients dropped as slow consumers.
const window = 16

func benchEndToEnd(b *testing.B, rooms, members int, extra map[string]string) {
	env := envFor(b, "memory")
	for k, v := range extra {
		env[k] = v
	}
	env["PARLEY_USER_RATE"] = "1000000"
	env["PARLEY_CONN_RATE"] = "1000000"
	env["PARLEY_SEND_QUEUE"] = "1024"
	env["LOG_LEVEL"] = "info"
	srv := startServer(b, env)
	owner := srv.mustSignUp("owner")

	perRoom := max(1, b.N/rooms)
	all := make([][]*benchMember, rooms)
	roomIDs := make([]string, rooms)
	var joined sync.WaitGroup
	for r := range rooms {
		room := srv.mustCreateRoom(owner.Token, fmt.Sprint("room", r))
		roomIDs[r] = room.ID
		for i := range members {
			m := &benchMember{acks: make(chan struct{}, window), latencies: make([]time.Duration, 0, perRoom)}
			joined.Add(1)
			// Each member reads until it has every message of its room.
			m.start(b, srv, fmt.Sprintf("u%d-%d", r, i), room.ID, func(typ string, latency time.Duration) bool {
				switch typ {
				case "joined":
					joined.Done()
				case "message":
					m.latencies = append(m.latencies, latency)
				case "ack":
					m.acks <- struct{}{}
				}
				return len(m.latencies) == perRoom
			})
			all[r] = append(all[r], m)
		}
	}
	joined.Wait()

	b.ResetTimer()
	var senders sync.WaitGroup
	for r := range rooms {
		sender := all[r][0]
		senders.Go(func() {
			inFlight := 0
			for i := range perRoom {
				for inFlight >= window {
					<-sender.acks
					inFlight--
				}
				body := strconv.FormatInt(time.Now().UnixNano(), 10)
				if err := sender.conn.write(map[string]any{"type": "send", "room": roomIDs[r], "client_id": strconv.Itoa(i), "body": body}); err != nil {
					b.Errorf("send: %v", err)
					return
				}
				inFlight++
			}
		})
	}
	senders.Wait()
	for r := range rooms {
		for _, m := range all[r] {
			m.wait(b)
		}
	}
	b.StopTimer()

	var lat []time.Duration
	for r := range rooms {
		for _, m := range all[r] {
			lat = append(lat, m.latencies...)
		}
	}
	slices.Sort(lat)
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
}

// BenchmarkCrossReplica runs two replicas in process on the real PostgreSQL
// and Redis. One member of a room on replica A sends; five members on A and
// five on B receive. Each op is one message, sent once the previous one is
// acked, so that latency is not queueing behind other messages. It reports the delivery
// latency of members on the sender's replica (local) and on the other one
// (cross), measured in the same run, and what crossing adds at the p99.
func BenchmarkCrossReplica(b *testing.B) {
	env := envFor(b, "postgres")
	env["REDIS_URL"] = testenv.RedisURL(b)
	env["PARLEY_USER_RATE"] = "1000000"
	env["PARLEY_CONN_RATE"] = "1000000"
	replicas := []*testServer{startServer(b, env), startServer(b, env)}
	owner := replicas[0].mustSignUp("owner")
	room := replicas[0].mustCreateRoom(owner.Token, "bench").ID

	const perReplica = 5
	var members [2][]*benchMember
	acks := make(chan struct{}, 1)
	var joined sync.WaitGroup
	for r, srv := range replicas {
		for i := range perReplica {
			m := &benchMember{}
			sender := r == 0 && i == 0
			acked := 0
			joined.Add(1)
			m.start(b, srv, fmt.Sprintf("u%d-%d", r, i), room, func(typ string, latency time.Duration) bool {
				switch typ {
				case "joined":
					joined.Done()
				case "message":
					m.latencies = append(m.latencies, latency)
				case "ack":
					acked++
					acks <- struct{}{}
				}
				return len(m.latencies) == b.N && (!sender || acked == b.N)
			})
			members[r] = append(members[r], m)
		}
	}
	sender := members[0][0]
	joined.Wait()
	// Replica B subscribes to the room in the background once its first
	// member joins; a message in the meantime would come by catch-up.
	testenv.Eventually(b, "replica B to subscribe", func() bool { return replicas[1].metric("parley_bus_subscribed_channels") >= 1 })

	b.ResetTimer()
	for i := range b.N {
		body := strconv.FormatInt(time.Now().UnixNano(), 10)
		if err := sender.conn.write(map[string]any{"type": "send", "room": room, "client_id": strconv.Itoa(i), "body": body}); err != nil {
			b.Fatalf("send: %v", err)
		}
		<-acks
	}
	for r := range replicas {
		for _, m := range members[r] {
			m.wait(b)
		}
	}
	b.StopTimer()

	pct := func(r int, p int) time.Duration {
		var lat []time.Duration
		for _, m := range members[r] {
			lat = append(lat, m.latencies...)
		}
		slices.Sort(lat)
		if len(lat) == 0 {
			return 0
		}
		return lat[(len(lat)-1)*p/100]
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(pct(0, 50)), "local_p50_ms")
	b.ReportMetric(ms(pct(0, 99)), "local_p99_ms")
	b.ReportMetric(ms(pct(1, 50)), "cross_p50_ms")
	b.ReportMetric(ms(pct(1, 99)), "cross_p99_ms")
	b.ReportMetric(ms(pct(1, 99)-pct(0, 99)), "added_p99_ms")
}

// benchMember is one socket of a benchmark: the test's WebSocket client,
// whose frames go to the benchmark's handler as they arrive.
type benchMember struct {
	conn      *wsConn
	latencies []time.Duration
	acks      chan struct{}
	done      chan struct{} // closed once the handler is done with the member
}

// start signs up a user, connects it (closed when the benchmark ends) and
// joins room, the joined frame left to handle. Each frame's type goes to
// handle, with the latency of a message whose body is the send time in
// nanoseconds, until handle reports that the member is done; an error frame
// ends it with a benchmark error.
func (m *benchMember) start(b *testing.B, srv *testServer, name, room string, handle func(typ string, latency time.Duration) (done bool)) {
	m.done = make(chan struct{})
	finished := false // read and written by the connection's reader alone
	conn, _, err := openWS(srv.wsURL(), srv.mustSignUp(name).Token, func(f frame) {
		if finished {
			return
		}
		if f.Type == "error" {
			b.Errorf("server error frame: %+v", f)
			finished = true
			close(m.done)
			return
		}
		var latency time.Duration
		if f.Type == "message" {
			sent, _ := strconv.ParseInt(f.Body, 10, 64)
			latency = time.Duration(time.Now().UnixNano() - sent)
		}
		if handle(f.Type, latency) {
			finished = true
			close(m.done)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	m.conn = conn
	b.Cleanup(conn.close)
	if err := conn.write(map[string]any{"type": "join", "room": room}); err != nil {
		b.Fatal(err)
	}
}

// wait waits until the member is done, and fails the benchmark if its
// connection ends first.
func (m *benchMember) wait(b *testing.B) {
	select {
	case <-m.done:
	case <-m.conn.closed:
		select {
		case <-m.done:
		default:
			b.Errorf("member read: %v", m.conn.readErr)
		}
	}
}
