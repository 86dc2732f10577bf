package chat_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/memstore"
)

// counter is a subscriber that takes every frame and only counts it, so the
// benchmark measures the hub, not a consumer.
type counter struct{ n atomic.Int64 }

func (c *counter) Offer(chat.Frame) bool                  { c.n.Add(1); return true }
func (c *counter) Push(context.Context, chat.Frame) error { c.n.Add(1); return nil }
func (c *counter) Slow()                                  {}

// BenchmarkHubFanout delivers one message per op to a room of N members
// through the real codec path (encode once, offer to every member).
func BenchmarkHubFanout(b *testing.B) {
	for _, members := range []int{1, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			store := memstore.New(memstore.Options{})
			hub := chat.NewHub(store, textCodec{}, chat.HubOptions{})
			defer hub.Close()
			room, err := store.CreateRoom(context.Background(), chat.Room{ID: "r", Name: "bench", CreatedAt: time.Now()})
			if err != nil {
				b.Fatal(err)
			}
			subs := make([]*counter, members)
			for i := range subs {
				subs[i] = &counter{}
				// Ten users with many tabs each: joins announce presence
				// ten times, not once per member, which keeps setup short.
				u := chat.User{ID: fmt.Sprint(i % 10), Username: fmt.Sprint("u", i%10)}
				if err := hub.Join(context.Background(), room.ID, subs[i], u, nil); err != nil {
					b.Fatal(err)
				}
			}
			msg := chat.Message{Room: room.ID, User: alice, Body: "hello", TS: time.Now()}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				msg.Seq = int64(i + 1)
				hub.Deliver(context.Background(), msg)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)*float64(members)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
