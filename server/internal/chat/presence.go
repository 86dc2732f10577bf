package chat

import (
	"time"
)

// presence is who is in a room: the users connected to it here, and those
// that other replicas say they have. A user is online in the room while
// present in either, and members hear of a user only when that changes, so
// a second tab or a move to another replica goes unannounced. Other
// replicas' rosters come and go with their presence events, are refreshed
// every RosterInterval, and expire after rosterTTL intervals of silence, so
// that a replica's crash does not leave its users online. The room's lock
// guards it.
type presence struct {
	here   map[string]*localUser // by user id
	remote map[string]*roster    // by replica
}

// localUser is a user connected to the room here, through conns
// connections.
type localUser struct {
	user  User
	conns int
}

// rosterTTL is how many roster intervals a replica may stay silent before its
// users are taken offline.
const rosterTTL = 3

// roster is what the hub knows about a room on another replica.
type roster struct {
	users map[string]User // by user id
	seen  time.Time       // when the replica last spoke about the room
}

// arrive counts a connection of user to the room, made by the member sub.
// A user's first connection here is announced to the other replicas and, if
// it brings the user online, to the members here but sub. r.mu is held.
func (r *room) arrive(sub Subscriber, user User) {
	p := r.presence.here[user.ID]
	if p == nil {
		if !r.online(user.ID) {
			r.broadcast(Frame{Data: r.hub.codec.Presence(r.id, user, true), Kind: "presence"}, sub)
		}
		p = &localUser{user: user}
		r.presence.here[user.ID] = p
		r.hub.publish(Event{Kind: EventPresence, Room: r.id, User: user, Online: true})
	}
	p.conns++
}

// depart drops a connection of user to the room. The user's last connection
// here is announced to the other replicas and, if it takes the user offline,
// to the members here. r.mu is held.
func (r *room) depart(user User) {
	p := r.presence.here[user.ID]
	if p == nil {
		return
	}
	p.conns--
	if p.conns > 0 {
		return
	}
	delete(r.presence.here, user.ID)
	if !r.online(user.ID) {
		r.broadcast(Frame{Data: r.hub.codec.Presence(r.id, user, false), Kind: "presence"}, nil)
	}
	r.hub.publish(Event{Kind: EventPresence, Room: r.id, User: user, Online: false})
}

// online reports whether the user is present here or on another replica.
// r.mu is held.
func (r *room) online(userID string) bool {
	if r.presence.here[userID] != nil {
		return true
	}
	for _, ro := range r.presence.remote {
		if _, ok := ro.users[userID]; ok {
			return true
		}
	}
	return false
}

// users lists up to limit of the users present in the room, here or on
// other replicas. r.mu is held.
func (r *room) users(limit int) []User {
	out := make([]User, 0, min(limit, len(r.presence.here)))
	for _, p := range r.presence.here {
		if len(out) == limit {
			return out
		}
		out = append(out, p.user)
	}
	listed := make(map[string]bool)
	for _, ro := range r.presence.remote {
		for id, u := range ro.users {
			if len(out) == limit {
				return out
			}
			if r.presence.here[id] == nil && !listed[id] {
				listed[id] = true
				out = append(out, u)
			}
		}
	}
	return out
}

// remotePresence records a user's arrival on or departure from another
// replica, and tells the members here if the room gained or lost the user.
// r.mu is held.
func (r *room) remotePresence(origin string, u User, online bool, now time.Time) {
	ro := r.presence.remote[origin]
	if ro == nil {
		if !online {
			return
		}
		// Only rosters keep a replica's entry alive; this one starts the
		// clock that the replica's next roster must beat.
		ro = &roster{users: make(map[string]User), seen: now}
		r.presence.remote[origin] = ro
	}
	was := r.online(u.ID)
	if online {
		ro.users[u.ID] = u
	} else {
		delete(ro.users, u.ID)
		if len(ro.users) == 0 {
			delete(r.presence.remote, origin)
		}
	}
	r.announcePresence(u, was)
}

// setRoster replaces what the hub knows of the room on another replica; no
// users forgets the replica. Members here hear of every user the room gained
// or lost by it. r.mu is held.
func (r *room) setRoster(origin string, users []User, now time.Time) {
	old := r.presence.remote[origin]
	next := &roster{users: make(map[string]User, len(users)), seen: now}
	for _, u := range users {
		next.users[u.ID] = u
	}
	// Who was online before the change, among the users it touches.
	was := make(map[string]bool, len(users))
	for _, u := range users {
		was[u.ID] = r.online(u.ID)
	}
	if old != nil {
		for id := range old.users {
			was[id] = r.online(id)
		}
	}
	if len(users) == 0 {
		delete(r.presence.remote, origin)
	} else {
		r.presence.remote[origin] = next
	}
	for _, u := range users {
		r.announcePresence(u, was[u.ID])
	}
	if old != nil {
		for id, u := range old.users {
			if _, still := next.users[id]; !still {
				r.announcePresence(u, was[id])
			}
		}
	}
}

// announcePresence tells the members here that u came online or went
// offline, if that changed since was. r.mu is held.
func (r *room) announcePresence(u User, was bool) {
	if now := r.online(u.ID); now != was {
		r.broadcast(Frame{Data: r.hub.codec.Presence(r.id, u, now), Kind: "presence"}, nil)
	}
}

// expireRosters forgets the rosters of replicas that have been silent about
// a room for rosterTTL intervals, and with them their users.
func (h *Hub) expireRosters(now time.Time) {
	deadline := now.Add(-rosterTTL * h.opts.RosterInterval)
	for _, r := range h.rooms() {
		r.mu.Lock()
		for origin, ro := range r.presence.remote {
			if ro.seen.Before(deadline) {
				h.stats.expired.Add(1)
				r.setRoster(origin, nil, now)
			}
		}
		r.mu.Unlock()
	}
}

// roster is the event listing the users present here. r.mu is held.
func (r *room) roster() Event {
	users := make([]User, 0, len(r.presence.here))
	for _, p := range r.presence.here {
		users = append(users, p.user)
	}
	return Event{Kind: EventRoster, Room: r.id, Users: users}
}

// Typing tells the room's other users that user is typing, unless they
// were told less than TypingInterval ago: typing frames are merged per user
// and room, however many connections the user types from, so that one user
// cannot flood the members (or, through the bus, other replicas) with
// them. sub must have joined the room. A merged frame is not an error: the
// members already know.
func (h *Hub) Typing(roomID string, sub Subscriber, user User) error {
	r := h.lookup(roomID)
	if r == nil {
		return errNotJoined
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.members[sub]; !ok {
		return errNotJoined
	}
	if !r.typists.announce(user.ID, h.opts.Now(), h.opts.TypingInterval) {
		return nil
	}
	r.typing(user)
	h.publish(Event{Kind: EventTyping, Room: roomID, User: user})
	return nil
}

// typing offers a typing frame to the members who are not user. r.mu is held.
func (r *room) typing(user User) {
	var frame Frame
	for _, m := range r.list {
		if m.user.ID == user.ID {
			continue
		}
		if frame.Data == nil {
			frame = Frame{Data: r.hub.codec.Typing(r.id, user), Kind: "typing"}
		}
		r.offer(m, frame)
	}
}

// remoteTyping passes on that u is typing on another replica. The origin
// merged u's typing there; merging again here covers a user who types
// through several replicas at once. r.mu is held.
func (r *room) remoteTyping(u User, now time.Time) {
	if r.typists.announce(u.ID, now, r.hub.opts.TypingInterval) {
		r.typing(u)
	}
}

// typists is when each user was last announced typing in a room, here or
// by another replica. The room's lock guards it. Only entries younger than
// the interval decide anything, so older ones are swept out at most once
// an interval: it holds no more than the users who typed in the last two
// intervals, and nothing while nobody types.
type typists struct {
	last  map[string]time.Time // by user id
	swept time.Time
}

// announce reports whether a typing frame of the user may go out at now,
// and if so records it.
func (t *typists) announce(userID string, now time.Time, every time.Duration) bool {
	if last, ok := t.last[userID]; ok && now.Sub(last) < every {
		return false
	}
	if t.last == nil {
		t.last = make(map[string]time.Time)
	}
	if now.Sub(t.swept) >= every {
		for id, last := range t.last {
			if now.Sub(last) >= every {
				delete(t.last, id)
			}
		}
		t.swept = now
	}
	t.last[userID] = now
	return true
}

var errNotJoined = Errorf(ErrInvalid, "join the room first")
