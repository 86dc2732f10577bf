package driver

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/parleychat/parley/loadtest/ledger"
	"github.com/parleychat/parley/loadtest/stats"
	"github.com/parleychat/parley/loadtest/wire"
)

// BenchmarkReceiveDelivery is the generator's own CPU cost per delivery,
// past the socket: decoding a message frame as the server writes it and
// matching it in the ledger. At 50,000 deliveries a second the cost per
// operation times 50,000 is the share of one core it takes.
func BenchmarkReceiveDelivery(b *testing.B) {
	const members = 10
	l := ledger.New(time.Now(), time.Second)
	u := newVUser(3, "token", l, &stats.Counters{}, nil)
	recipients := make([]int32, members)
	for i := range recipients {
		recipients[i] = int32(i)
	}
	frames := make([][]byte, b.N)
	for i := range frames {
		id := "run-" + strconv.Itoa(i)
		l.Expect(id, "room-1", time.Now(), recipients)
		frames[i], _ = json.Marshal(map[string]any{
			"type": "message", "id": "06h069hd0yp8hfkscesf7cc3km", "room": "room-1", "seq": i + 1, "client_id": id,
			"user": map[string]string{"id": "06h069gdreccyve9zmnxqds144", "username": "lt-run-1"},
			"body": "run abcd lorem ipsum dolor sit amet lorem ipsum dolor sit amet", "ts": time.Now(),
		})
	}
	joins := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		f, err := wire.DecodeIn(frames[i])
		if err != nil {
			b.Fatal(err)
		}
		u.handle(nil, f, time.Now(), &joins)
	}
}
