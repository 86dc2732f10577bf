package chat

import "context"

// Bus carries room events between the replicas of a deployment. It is the
// fast path of cross-replica delivery and nothing more: it may lose events
// (a broker restart, a full queue, a replica that dies between storing and
// publishing), and the hub makes up for every loss from the store, which
// holds every acked message, and from presence rosters that expire.
//
// The hub calls Publish, Watch and Unwatch with a room's lock held: they
// must not block and must not call back into the hub. The bus hands events
// from other replicas to Hub.Receive, and tells the hub through Hub.Resync
// when its subscription to a room starts or starts again, since it may have
// missed events while it was not subscribed.
type Bus interface {
	// Publish sends ev to the other replicas that watch ev.Room. The bus
	// stamps ev.Origin with its own replica id and never hands a replica
	// its own events. ctx carries the publisher's trace, which the bus may
	// pass along; Publish must not wait on it.
	Publish(ctx context.Context, ev Event)
	// Watch asks for the room's events; the hub calls it when the room gets
	// its first member on this replica.
	Watch(room string)
	// Unwatch stops the room's events once its last member here left.
	Unwatch(room string)
}

// EventKind says what an Event carries.
type EventKind uint8

// The kinds of Event.
const (
	// EventMessage carries a stored message (Message).
	EventMessage EventKind = iota + 1
	// EventPresence says that User's first connection to Room on Origin
	// opened (Online) or its last one closed.
	EventPresence
	// EventTyping says that User is typing in Room.
	EventTyping
	// EventRoster lists every user present in Room on Origin (Users). Each
	// replica sends one per room now and then; a replica whose rosters stop
	// coming is taken to be gone, and its users offline.
	EventRoster
	// EventHello says that Origin started watching Room and asks the other
	// replicas for their rosters.
	EventHello
)

// Event is what replicas tell each other about a room.
type Event struct {
	Kind    EventKind
	Room    string
	Origin  string  // the publishing replica; set by the bus
	Message Message // EventMessage
	User    User    // EventPresence, EventTyping
	Online  bool    // EventPresence
	Users   []User  // EventRoster
}
