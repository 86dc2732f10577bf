package memstore_test

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/memstore"
)

// BenchmarkAppend measures Append with every goroutine in one hot room (the
// room lock is the bottleneck) and with each goroutine in a room of its own
// (rooms should not contend). Both run past the default history limit, so
// they include eviction.
func BenchmarkAppend(b *testing.B) {
	b.Run("one room", func(b *testing.B) { benchmarkAppend(b, 1) })
	b.Run("many rooms", func(b *testing.B) { benchmarkAppend(b, 1024) })
}

func benchmarkAppend(b *testing.B, rooms int) {
	s := memstore.New(memstore.Options{})
	now := time.Now()
	user := chat.User{ID: chat.NewID(now), Username: "bench"}
	ids := make([]string, rooms)
	for i := range ids {
		r, err := s.CreateRoom(b.Context(), chat.Room{ID: chat.NewID(now), Name: fmt.Sprint("room", i), CreatedAt: now})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = r.ID
	}
	var goroutines atomic.Int64

	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		g := goroutines.Add(1)
		room := ids[int(g)%rooms]
		prefix := strconv.FormatInt(g, 10) + "-"
		d := chat.Draft{Room: room, User: user, Body: "hello, world", TS: now}
		for i := 0; pb.Next(); i++ {
			d.ID = prefix + strconv.Itoa(i)
			d.ClientID = d.ID
			if _, _, err := s.Append(b.Context(), d); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
