package httpapi

import (
	"math"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/parleychat/parley/server/internal/chat"
)

type roomsResponse struct {
	Rooms []roomJSON `json:"rooms"`
	// Next is the cursor of the following page: present only when the
	// client asked for a page and more rooms follow.
	Next string `json:"next,omitempty"`
}

// listRooms lists the rooms: every one, as protocol v1 has it, or a page
// when the client gives limit or after (an extension: the list grows with
// every room created, and a page costs the same however long it is).
func (s *Server) listRooms() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var (
			rooms []chat.Room
			next  string
			err   error
		)
		q := r.URL.Query()
		if q.Has("limit") || q.Has("after") {
			var limit int
			if limit, err = parseRoomLimit(q.Get("limit")); err == nil {
				rooms, next, err = s.chat.RoomsAfter(r.Context(), q.Get("after"), limit)
			}
		} else {
			rooms, err = s.chat.Rooms(r.Context())
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		resp := roomsResponse{Rooms: make([]roomJSON, len(rooms)), Next: next}
		for i, room := range rooms {
			resp.Rooms[i] = toRoom(room)
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

// parseRoomLimit reads a page's limit; none (0) takes the service's
// default.
func parseRoomLimit(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > chat.MaxRoomPage {
		return 0, chat.Errorf(chat.ErrInvalid, "limit must be a whole number from 1 to %d", chat.MaxRoomPage)
	}
	return n, nil
}

type createRoomRequest struct {
	Name string `json:"name"`
}

type roomResponse struct {
	Room roomJSON `json:"room"`
}

func (s *Server) createRoom() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req createRoomRequest
		if err := decodeJSON(w, r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		room, err := s.chat.CreateRoom(r.Context(), req.Name)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, roomResponse{Room: toRoom(room)})
	}
}

type messagesResponse struct {
	Messages []messageJSON `json:"messages"`
	HasMore  bool          `json:"has_more"`
}

// listMessages pages through a room's history: after_seq reads forward,
// before_seq reads backward, and neither gives the newest page.
func (s *Server) listMessages() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		page, err := parsePage(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		msgs, hasMore, err := s.chat.History(r.Context(), chi.URLParam(r, "room"), page)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		resp := messagesResponse{Messages: make([]messageJSON, len(msgs)), HasMore: hasMore}
		for i, m := range msgs {
			resp.Messages[i] = toMessage(m)
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

func parsePage(r *http.Request) (chat.Page, error) {
	q := r.URL.Query()
	after, before, limit := q.Get("after_seq"), q.Get("before_seq"), q.Get("limit")
	p := chat.Page{Backward: true, Cursor: math.MaxInt64}
	var err error
	switch {
	case after != "" && before != "":
		return p, chat.Errorf(chat.ErrInvalid, "give after_seq or before_seq, not both")
	case after != "":
		p.Backward = false
		if p.Cursor, err = strconv.ParseInt(after, 10, 64); err != nil || p.Cursor < 0 {
			return p, chat.Errorf(chat.ErrInvalid, "after_seq must be a whole number ≥ 0")
		}
	case before != "":
		if p.Cursor, err = strconv.ParseInt(before, 10, 64); err != nil || p.Cursor < 0 {
			return p, chat.Errorf(chat.ErrInvalid, "before_seq must be a whole number ≥ 0")
		}
	}
	if limit != "" {
		if p.Limit, err = strconv.Atoi(limit); err != nil || p.Limit < 1 {
			return p, chat.Errorf(chat.ErrInvalid, "limit must be a whole number ≥ 1")
		}
	}
	return p, nil
}

type postMessageRequest struct {
	ClientID string `json:"client_id"`
	Body     string `json:"body"`
}

type messageResponse struct {
	Message messageJSON `json:"message"`
}

// postMessage sends a message without a socket. A repeated client_id
// returns the original with 200 instead of 201.
func (s *Server) postMessage() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		var req postMessageRequest
		if err := decodeJSON(w, r, &req); err != nil {
			s.recordSend(r.Context(), "rest", start, err)
			s.writeError(w, r, err)
			return
		}
		user := claimsFrom(r.Context()).User
		if ok, wait := s.sends.allow(user.ID); !ok {
			err := s.refuse(limitSends, wait, "too many messages; slow down")
			s.recordSend(r.Context(), "rest", start, err)
			s.writeError(w, r, err)
			return
		}
		msg, created, err := s.chat.Send(r.Context(), user, chi.URLParam(r, "room"), req.ClientID, req.Body)
		s.recordSend(r.Context(), "rest", start, err)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		status := http.StatusCreated
		if !created {
			status = http.StatusOK
		}
		writeJSON(w, status, messageResponse{Message: toMessage(msg)})
	}
}
