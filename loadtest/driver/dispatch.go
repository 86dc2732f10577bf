package driver

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/parleychat/parley/loadtest/stats"
	"github.com/parleychat/parley/loadtest/wait"
	"github.com/parleychat/parley/loadtest/wire"
)

// dispatch hands each arrival of the plan to a sender at its intended
// time, the plan having begun at start, whatever the server does
// meanwhile: the open model. It returns the scheduling lag, how late the
// generator itself was.
func (r *run) dispatch(ctx context.Context, start time.Time) *stats.Lag {
	lag := stats.NewLag()
	bodies := newBodyMaker(r.cfg.RunID, r.sc.Message.MinBytes, r.sc.Message.MaxBytes)
	i := 0
	for _, arrival := range r.plan.Arrivals() {
		intended := start.Add(arrival.Offset)
		// Sleeping for less than a fraction of a millisecond costs more
		// than it is worth at high rates; sends go out up to 200 µs early
		// instead, which shortens measured latencies by at most that.
		if d := time.Until(intended); d > 200*time.Microsecond {
			_ = wait.Sleep(ctx, d)
		}
		if ctx.Err() != nil {
			break
		}
		lag.Record(time.Since(intended))
		r.send(i, intended, bodies.next())
		i++
	}
	// The plan lasts its whole length, even when its last stretch sends
	// nothing (a quiet stage after a spike, say).
	_ = wait.Sleep(ctx, time.Until(start.Add(r.plan.Duration())))
	return lag
}

// send sends the run's i-th message, due at intended, from the next
// member of the next room in turn, after a typing notice as often as the
// scenario types.
func (r *run) send(i int, intended time.Time, body string) {
	rm := r.rooms[i%len(r.rooms)]
	sender := r.users[rm.members[rm.next%len(rm.members)]]
	rm.next++
	clientID := r.cfg.RunID + "-" + strconv.Itoa(i)
	frame := wire.SendFrame(rm.id, clientID, body, traceparent(rand.Float64() < r.cfg.TraceRatio))
	r.ledger.Expect(clientID, rm.id, intended, rm.members)
	var typing []byte
	if r.sc.Typing > 0 && rand.Float64() < r.sc.Typing {
		typing = wire.TypingFrame(rm.id)
	}
	sender.send(clientID, frame, typing)
}

// traceparent starts a new trace for a message, so that the server's
// spans of it join a trace of its own; only a share is marked sampled, or
// the run would measure a server that traces every message.
func traceparent(sampled bool) string {
	var b [55]byte
	copy(b[:], "00-")
	hex.Encode(b[3:19], binary.BigEndian.AppendUint64(nil, rand.Uint64()))
	hex.Encode(b[19:35], binary.BigEndian.AppendUint64(nil, rand.Uint64()))
	b[35] = '-'
	hex.Encode(b[36:52], binary.BigEndian.AppendUint64(nil, rand.Uint64()|1))
	copy(b[52:], "-00")
	if sampled {
		b[54] = '1'
	}
	return string(b[:])
}

// bodyMaker makes message bodies of the scenario's sizes, each starting
// with the run id so that a stored message says which run sent it.
type bodyMaker struct {
	prefix   string
	filler   string
	min, max int
}

func newBodyMaker(runID string, minBytes, maxBytes int) *bodyMaker {
	return &bodyMaker{prefix: "run " + runID + " ", filler: strings.Repeat("lorem ipsum dolor sit amet ", maxBytes/27+1), min: minBytes, max: maxBytes}
}

func (b *bodyMaker) next() string {
	n := b.min
	if b.max > b.min {
		n += rand.N(b.max - b.min + 1)
	}
	if n <= len(b.prefix) {
		return b.prefix[:max(n, 1)]
	}
	return b.prefix + b.filler[:n-len(b.prefix)]
}
