package systemtest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parleychat/parley/internal/testenv"
)

// The web client after a reconnect: it rejoins every room it had open at a
// pace the server accepts, retries what the server refused for now, and
// never shows a room as live that it has not rejoined.

// openRoom clicks the room in the list and waits until the server has
// answered the join: the user appears among the room's people, which the
// client shows only from a joined frame.
func (p browserPage) openRoom(id, name, user string) {
	p.t.Helper()
	p.do(chromedp.Click(`#rooms button[data-room="` + id + `"]`))
	p.waitFor(user+" in "+name, `document.querySelector('#room-title').textContent === `+jsString(name)+
		` && [...document.querySelectorAll('#members li')].some(li => li.textContent === `+jsString(user)+`)`)
}

// roomState is what the room list says of a room: live, joining,
// retrying, failed (see app.js), or "" when the room is not open.
func (p browserPage) roomState(id string) string {
	p.t.Helper()
	return evalIn[string](p, `document.querySelector('#rooms button[data-room="`+id+`"]')?.dataset.state || ''`)
}

// A user with 50 rooms open loses the connection. On the way back the
// client rejoins all of them although the server refuses joins beyond a
// low per-connection rate, and a message posted in each room afterwards
// arrives in each. Before the client paced and retried its joins, it sent
// them in one burst, and the refused rooms stayed silent for good.
func TestWebClientRejoinsEveryRoomAfterReconnect(t *testing.T) {
	env := envFor(t, "memory")
	// Bursts of 8 frames, then 4 a second: 50 joins at once are certainly
	// refused in part.
	env["PARLEY_CONN_RATE"] = "4"
	env["PARLEY_USER_RATE"] = "1000"
	s := startServer(t, env)
	proxy := testenv.StartProxy(t, strings.TrimPrefix(s.base, "http://"))
	olga := s.mustSignUp("olga")
	const n = 50
	var rooms []apiRoom
	for i := range n {
		rooms = append(rooms, s.mustCreateRoom(olga.Token, fmt.Sprintf("room %02d", i)))
	}

	p := newBrowser(t)
	p.signUp("http://"+proxy.Addr(), "pat")
	p.waitFor("every room listed", fmt.Sprintf(`document.querySelectorAll('#rooms button').length === %d`, n))
	// One room at a time, as a person opens them, under the rate: every
	// client manages this (the pause is pacing, not waiting for an event).
	for _, r := range rooms {
		p.openRoom(r.ID, r.Name, "pat")
		time.Sleep(300 * time.Millisecond)
	}

	refusedBefore := s.metric("parley_ws_rate_limited_frames_total")
	proxy.Cut()
	p.waitFor("the client noticing the cut", `document.querySelector('#status').dataset.state !== 'connected'`)
	if live := evalIn[int](p, `document.querySelectorAll('#rooms button[data-state="live"]').length`); live != 0 {
		t.Errorf("%d rooms shown live while the connection is down, want none", live)
	}
	proxy.Restore()
	p.waitFor("the client reconnected", `document.querySelector('#status').dataset.state === 'connected'`)

	for i, r := range rooms {
		body := fmt.Sprintf("after the reconnect %d", i)
		if code := s.call("POST", "/api/v1/rooms/"+r.ID+"/messages", olga.Token, map[string]string{"client_id": body, "body": body}, nil); code != http.StatusCreated {
			t.Fatalf("posting in %s: status %d", r.Name, code)
		}
	}
	// Every room gets its message live (or replayed by the rejoin), in
	// the order the person looks at them.
	for i, r := range rooms {
		p.do(chromedp.Click(`#rooms button[data-room="` + r.ID + `"]`))
		p.shows(fmt.Sprintf("after the reconnect %d", i))
	}
	p.waitFor("every room live", fmt.Sprintf(`document.querySelectorAll('#rooms button[data-state="live"]').length === %d`, n))
	refused := s.metric("parley_ws_rate_limited_frames_total") - refusedBefore
	if refused <= 0 {
		t.Errorf("the server refused %v frames after the reconnect; the test needs refusals to mean anything", refused)
	}
	t.Logf("frames refused after the reconnect: %v", refused)
	if status := evalIn[string](p, `document.querySelector('#status').dataset.state`); status != "connected" {
		t.Errorf("status %q at the end, want connected (not closed for flooding)", status)
	}
}
