package faults

import (
	"context"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

// Store wraps s so that store_latency delays each of its calls and
// send_errors fails appends. While both are off it only adds an atomic load
// per call.
func (in *Injector) Store(s chat.Store) chat.Store { return &faultyStore{next: s, in: in} }

type faultyStore struct {
	next chat.Store
	in   *Injector
}

// delay applies store_latency to one call.
func (s *faultyStore) delay(ctx context.Context) error {
	if a := s.in.trigger(storeLatency); a != nil {
		return a.wait(ctx)
	}
	return nil
}

func (s *faultyStore) CreateUser(ctx context.Context, u chat.User, passwordHash string) error {
	if err := s.delay(ctx); err != nil {
		return err
	}
	return s.next.CreateUser(ctx, u, passwordHash)
}

func (s *faultyStore) Credentials(ctx context.Context, username string) (chat.User, string, error) {
	if err := s.delay(ctx); err != nil {
		return chat.User{}, "", err
	}
	return s.next.Credentials(ctx, username)
}

func (s *faultyStore) CreateRoom(ctx context.Context, r chat.Room) (chat.Room, error) {
	if err := s.delay(ctx); err != nil {
		return chat.Room{}, err
	}
	return s.next.CreateRoom(ctx, r)
}

func (s *faultyStore) Room(ctx context.Context, id string) (chat.Room, error) {
	if err := s.delay(ctx); err != nil {
		return chat.Room{}, err
	}
	return s.next.Room(ctx, id)
}

func (s *faultyStore) Rooms(ctx context.Context) ([]chat.Room, error) {
	if err := s.delay(ctx); err != nil {
		return nil, err
	}
	return s.next.Rooms(ctx)
}

func (s *faultyStore) LastSeqs(ctx context.Context, rooms []string) (map[string]int64, error) {
	if err := s.delay(ctx); err != nil {
		return nil, err
	}
	return s.next.LastSeqs(ctx, rooms)
}

func (s *faultyStore) Append(ctx context.Context, d chat.Draft) (chat.Message, bool, error) {
	if err := s.delay(ctx); err != nil {
		return chat.Message{}, false, err
	}
	if s.in.trigger(sendErrors) != nil {
		// The kind a real outage reports, so that the error takes the same
		// path to the client, the logs and the ack error metrics.
		return chat.Message{}, false, chat.Errorf(chat.ErrUnavailable, "injected fault: store unavailable")
	}
	return s.next.Append(ctx, d)
}

func (s *faultyStore) History(ctx context.Context, room string, p chat.Page) ([]chat.Message, bool, error) {
	if err := s.delay(ctx); err != nil {
		return nil, false, err
	}
	return s.next.History(ctx, room, p)
}

func (s *faultyStore) SaveTicket(ctx context.Context, t chat.Ticket) error {
	if err := s.delay(ctx); err != nil {
		return err
	}
	return s.next.SaveTicket(ctx, t)
}

func (s *faultyStore) TakeTicket(ctx context.Context, hash string, now time.Time) (chat.Ticket, error) {
	if err := s.delay(ctx); err != nil {
		return chat.Ticket{}, err
	}
	return s.next.TakeTicket(ctx, hash, now)
}

func (s *faultyStore) Ping(ctx context.Context) error {
	if err := s.delay(ctx); err != nil {
		return err
	}
	return s.next.Ping(ctx)
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
