package faults

import (
	"context"

	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/storehook"
)

// Store wraps s so that store_latency delays each of its calls and
// send_errors fails appends. While both are off it adds an atomic load per
// call (two for appends) to what storehook.Wrap costs.
func (in *Injector) Store(s chat.Store) chat.Store { return storehook.Wrap(s, in.aroundStore) }

// aroundStore applies store_latency, then send_errors, to one store call.
func (in *Injector) aroundStore(ctx context.Context, op string, call func(context.Context) error) error {
	if a := in.trigger(storeLatency); a != nil {
		if err := a.wait(ctx); err != nil {
			return err
		}
	}
	if op == storehook.Append && in.trigger(sendErrors) != nil {
		// The kind a real outage reports, so that the error takes the same
		// path to the client, the logs and the ack error metrics.
		return chat.Errorf(chat.ErrUnavailable, "injected fault: store unavailable")
	}
	return call(ctx)
}

// Bus wraps b so that broker_drops loses published events. Dropping is
// deciding not to call b, so Publish stays as non-blocking as b is, which
// the hub needs: it publishes with a room's lock held.
func (in *Injector) Bus(b chat.Bus) chat.Bus { return &faultyBus{next: b, in: in} }

type faultyBus struct {
	next chat.Bus
	in   *Injector
}

func (b *faultyBus) Publish(ctx context.Context, ev chat.Event) {
	if b.in.trigger(brokerDrops) != nil {
		return
	}
	b.next.Publish(ctx, ev)
}

func (b *faultyBus) Watch(room string)   { b.next.Watch(room) }
func (b *faultyBus) Unwatch(room string) { b.next.Unwatch(room) }

// Receiver is the side of the bus that takes other replicas' events: the
// hub, as the Redis bus hands them over.
type Receiver interface {
	Receive(ctx context.Context, ev chat.Event)
	Resync(room string)
}

// Receiver wraps r so that slow_fanout delays each event before r gets it.
// The delay runs on the caller's goroutine on purpose: holding up the bus's
// receive loop is the fan-out lag the fault stands for. It is bounded by
// MaxDelay and ends early when the fault is cleared, the injector closed or
// ctx ends; the event is passed on in every case, since the fault delays
// events and never loses them. Resync is never delayed.
func (in *Injector) Receiver(r Receiver) Receiver { return &slowReceiver{next: r, in: in} }

type slowReceiver struct {
	next Receiver
	in   *Injector
}

func (r *slowReceiver) Receive(ctx context.Context, ev chat.Event) {
	if a := r.in.trigger(slowFanout); a != nil {
		_ = a.wait(ctx) // an early end still passes the event on
	}
	r.next.Receive(ctx, ev)
}

func (r *slowReceiver) Resync(room string) { r.next.Resync(room) }
