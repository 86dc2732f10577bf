package postgres

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

// BenchmarkAppendHotRoom has every goroutine send to one room: the case
// group commit is for.
func BenchmarkAppendHotRoom(b *testing.B) {
	benchmarkAppend(b, 1)
}

// BenchmarkAppendSpreadRooms sends to 64 rooms, spread over the writers.
func BenchmarkAppendSpreadRooms(b *testing.B) {
	benchmarkAppend(b, 64)
}

func benchmarkAppend(b *testing.B, rooms int) {
	s := mustOpenStore(b)
	u := mustCreateUser(b, s, "bench")
	rs := make([]chat.Room, rooms)
	for i := range rs {
		rs[i] = mustCreateRoom(b, s, fmt.Sprint("room", i))
	}
	b.SetParallelism(16) // senders per CPU: many clients, few cores
	var next atomic.Int64
	before := s.Stats()
	start := time.Now()
	b.ResetTimer()

	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			d := chat.Draft{
				ID: chat.NewID(time.Now()), Room: rs[n%int64(rooms)].ID, ClientID: fmt.Sprint(n),
				User: u, Body: "benchmark message", TS: time.Now().UTC().Truncate(time.Microsecond),
			}
			if _, _, err := s.Append(b.Context(), d); err != nil {
				b.Error(err)
				return
			}
		}
	})

	b.StopTimer()
	after := s.Stats()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	if batches := after.Batches - before.Batches; batches > 0 {
		b.ReportMetric(float64(after.Drafts-before.Drafts)/float64(batches), "drafts/batch")
	}
}
