package redisbus

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

// wireVersion is the envelope's version. A replica drops envelopes of any
// other version, so a change that old replicas would misread needs a new
// one; adding a field does not.
const wireVersion = 1

// envelope is an event on the wire. The room is not in it: it is the channel
// the envelope was published on.
//
// The wire has its own types rather than chat's, so that renaming a field in
// the domain cannot silently change what replicas of different builds say to
// each other during a rolling deploy.
type envelope struct {
	V      int          `json:"v"`
	Origin string       `json:"o"`
	Kind   string       `json:"k"`
	Msg    *wireMessage `json:"m,omitempty"`  // message
	User   *wireUser    `json:"u,omitempty"`  // presence, typing
	Online bool         `json:"on,omitempty"` // presence
	Users  []wireUser   `json:"us,omitempty"` // roster
	// Trace is the W3C traceparent of the publish span of a message, so
	// that its delivery on other replicas joins the sender's trace.
	Trace string `json:"tp,omitempty"`
}

type wireUser struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type wireMessage struct {
	ID       string    `json:"id"`
	Room     string    `json:"room"`
	Seq      int64     `json:"seq"`
	ClientID string    `json:"cid,omitempty"`
	User     wireUser  `json:"user"`
	Body     string    `json:"body"`
	TS       time.Time `json:"ts"` // RFC 3339 with nanoseconds, in UTC
}

// The names of the kinds on the wire. Names rather than chat's numbers, so a
// reordering of the constants cannot change their meaning.
const (
	kindMessage  = "message"
	kindPresence = "presence"
	kindTyping   = "typing"
	kindRoster   = "roster"
	kindHello    = "hello"
)

var errMalformed = errors.New("malformed event")

// encode returns ev's envelope. It fails for an unknown kind, and for a
// timestamp JSON cannot hold (a year outside 0-9999).
func encode(ev chat.Event, traceparent string) ([]byte, error) {
	env := envelope{V: wireVersion, Origin: ev.Origin, Trace: traceparent}
	switch ev.Kind {
	case chat.EventMessage:
		m := ev.Message
		env.Kind = kindMessage
		env.Msg = &wireMessage{
			ID: m.ID, Room: m.Room, Seq: m.Seq, ClientID: m.ClientID,
			User: toWire(m.User), Body: m.Body, TS: m.TS.UTC(),
		}
	case chat.EventPresence:
		u := toWire(ev.User)
		env.Kind, env.User, env.Online = kindPresence, &u, ev.Online
	case chat.EventTyping:
		u := toWire(ev.User)
		env.Kind, env.User = kindTyping, &u
	case chat.EventRoster:
		env.Kind = kindRoster
		env.Users = make([]wireUser, len(ev.Users))
		for i, u := range ev.Users {
			env.Users[i] = toWire(u)
		}
	case chat.EventHello:
		env.Kind = kindHello
	default:
		return nil, fmt.Errorf("encode: unknown event kind %d", ev.Kind)
	}
	return json.Marshal(env)
}

// decode returns the event in payload, published on room's channel. Errors
// wrap errMalformed. Times come back in UTC, and a roster without users with
// nil Users.
func decode(room string, payload []byte) (ev chat.Event, traceparent string, err error) {
	ev, env, err := decodeEnvelope(room, payload)
	return ev, env.Trace, err
}

func decodeEnvelope(room string, payload []byte) (chat.Event, envelope, error) {
	var env envelope
	if err := json.Unmarshal(payload, &env); err != nil {
		return chat.Event{}, envelope{}, fmt.Errorf("%w: %w", errMalformed, err)
	}
	if env.V != wireVersion {
		return chat.Event{}, envelope{}, fmt.Errorf("%w: version %d, want %d", errMalformed, env.V, wireVersion)
	}
	if env.Origin == "" {
		return chat.Event{}, envelope{}, fmt.Errorf("%w: no origin", errMalformed)
	}
	ev := chat.Event{Room: room, Origin: env.Origin}
	switch env.Kind {
	case kindMessage:
		if env.Msg == nil {
			return chat.Event{}, envelope{}, fmt.Errorf("%w: message without a message", errMalformed)
		}
		m := env.Msg
		// A message claims a place in its room's sequence: one that names
		// another room than its channel's, or no valid seq, is refused
		// rather than let it shadow a real message.
		if m.Room != room || m.Seq < 1 {
			return chat.Event{}, envelope{}, fmt.Errorf("%w: message of room %q seq %d on the channel of room %q", errMalformed, m.Room, m.Seq, room)
		}
		ev.Kind = chat.EventMessage
		ev.Message = chat.Message{
			ID: m.ID, Room: m.Room, Seq: m.Seq, ClientID: m.ClientID,
			User: fromWire(m.User), Body: m.Body, TS: m.TS.UTC(),
		}
	case kindPresence, kindTyping:
		if env.User == nil {
			return chat.Event{}, envelope{}, fmt.Errorf("%w: %s without a user", errMalformed, env.Kind)
		}
		ev.Kind, ev.User = chat.EventTyping, fromWire(*env.User)
		if env.Kind == kindPresence {
			ev.Kind, ev.Online = chat.EventPresence, env.Online
		}
	case kindRoster:
		ev.Kind = chat.EventRoster
		if len(env.Users) > 0 {
			ev.Users = make([]chat.User, len(env.Users))
			for i, u := range env.Users {
				ev.Users[i] = fromWire(u)
			}
		}
	case kindHello:
		ev.Kind = chat.EventHello
	default:
		return chat.Event{}, envelope{}, fmt.Errorf("%w: unknown kind %q", errMalformed, env.Kind)
	}
	return ev, env, nil
}

func toWire(u chat.User) wireUser   { return wireUser{ID: u.ID, Name: u.Username} }
func fromWire(u wireUser) chat.User { return chat.User{ID: u.ID, Username: u.Name} }
