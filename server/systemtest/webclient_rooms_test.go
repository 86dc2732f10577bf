package systemtest

import (
	"fmt"
	"net/http"
	"slices"
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
// offline, retrying, failed (see joins.js), or "" when the room is not
// open.
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
		rooms = append(rooms, s.createRoomPaced(olga.Token, fmt.Sprintf("room %02d", i)))
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
	// The page notes when the last room is live again, for the log.
	p.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`window.restoredAt = Date.now();
		const watch = setInterval(() => {
			if (document.querySelectorAll('#rooms button[data-state="live"]').length === %d) {
				window.allLiveAfter = Date.now() - window.restoredAt;
				clearInterval(watch);
			}
		}, 20)`, n)))
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
	t.Logf("frames refused after the reconnect: %v; every room live %d ms after the link came back",
		refused, evalIn[int](p, `window.allLiveAfter`))
	if status := evalIn[string](p, `document.querySelector('#status').dataset.state`); status != "connected" {
		t.Errorf("status %q at the end, want connected (not closed for flooding)", status)
	}
}

// A room that went away while the connection was down cannot be rejoined:
// the client tries a few times, then shows it as failed, with a way to
// try again, and never as live; the other room comes back live.
func TestWebClientShowsARoomItCannotRejoin(t *testing.T) {
	env := envFor(t, "postgres")
	s := startServer(t, env)
	proxy := testenv.StartProxy(t, strings.TrimPrefix(s.base, "http://"))
	olga := s.mustSignUp("olga")
	kept := s.mustCreateRoom(olga.Token, "kept")
	doomed := s.mustCreateRoom(olga.Token, "doomed")

	p := newBrowser(t)
	p.signUp("http://"+proxy.Addr(), "quinn")
	p.waitFor("both rooms listed", `document.querySelectorAll('#rooms button').length === 2`)
	p.openRoom(kept.ID, kept.Name, "quinn")
	p.openRoom(doomed.ID, doomed.Name, "quinn")
	// Every state the doomed room is shown in from here on.
	p.do(chromedp.Evaluate[chromedp.Void](`window.doomedStates = [];
		new MutationObserver(() => {
			const s = document.querySelector('#rooms button[data-room="` + doomed.ID + `"]')?.dataset.state;
			if (s !== window.doomedStates.at(-1)) window.doomedStates.push(s);
		}).observe(document.querySelector('#rooms'), {subtree: true, childList: true, attributes: true})`))

	proxy.Cut()
	p.waitFor("the client noticing the cut", `document.querySelector('#status').dataset.state !== 'connected'`)
	deleteRoom(t, env["DATABASE_URL"], doomed.ID)
	proxy.Restore()
	p.waitFor("the client reconnected", `document.querySelector('#status').dataset.state === 'connected'`)

	p.waitFor("the kept room live", `document.querySelector('#rooms button[data-room="`+kept.ID+`"]').dataset.state === 'live'`)
	p.waitFor("the doomed room failed", `document.querySelector('#rooms button[data-room="`+doomed.ID+`"]').dataset.state === 'failed'`)
	if got := p.roomState(kept.ID); got != "live" {
		t.Errorf("the kept room is %q once the doomed one failed, want live", got)
	}
	if states := evalIn[[]string](p, `window.doomedStates`); slices.Contains(states, "live") {
		t.Errorf("the room that could not be rejoined was shown as %q, want never live", states)
	}
	if got := evalIn[string](p, `document.querySelector('#rooms button[data-room="`+doomed.ID+`"] + .room-state').textContent`); got != "could not join" {
		t.Errorf("the room list says %q of the doomed room, want %q", got, "could not join")
	}
	// It is the room on screen: the notice says so and offers a retry,
	// which tries again (and fails again: the room is gone).
	notice := evalIn[string](p, `document.querySelector('#room-notice').hidden ? '' : document.querySelector('#room-notice-text').textContent`)
	if !strings.Contains(notice, "Could not join this room") {
		t.Errorf("the room's notice says %q, want that it could not be joined", notice)
	}
	p.do(chromedp.Evaluate[chromedp.Void](`window.doomedStates = []`),
		chromedp.Click("#room-retry"))
	p.waitFor("a second round of tries, failed again", `window.doomedStates.includes('joining') && window.doomedStates.at(-1) === 'failed'`)
}

// deleteRoom removes a room and its messages behind the server's back, as
// a store restored from an older backup would.
func deleteRoom(t *testing.T, databaseURL, id string) {
	t.Helper()
	for _, q := range []string{`DELETE FROM messages WHERE room_id = $1`, `DELETE FROM rooms WHERE id = $1`} {
		testenv.PostgresExec(t, databaseURL, q, id)
	}
}

// The room list is read a page at a time, and in one call from an older
// server that ignores limit and after; either way every room is listed,
// and Refresh reads it again.
func TestWebClientReadsTheRoomListInPages(t *testing.T) {
	s := startServer(t, envFor(t, "memory"))
	const n = 210 // three pages of 100
	for u := range 7 {
		owner := s.mustSignUp(fmt.Sprintf("owner%d", u))
		for i := range n / 7 {
			s.createRoomPaced(owner.Token, fmt.Sprintf("room %d-%02d", u, i))
		}
	}

	p := newBrowser(t)
	p.do(chromedp.Navigate(s.base), chromedp.WaitVisible("#username"))
	p.recordFetches()
	p.do(chromedp.SendKeys("#username", "vera"),
		chromedp.SendKeys("#password", "correct horse"),
		chromedp.Click(`#auth-form button[value="signup"]`))
	p.waitFor("every room listed", fmt.Sprintf(`document.querySelectorAll('#rooms button').length === %d`, n))
	type fetch struct{ Method, URL, Auth string }
	var calls []string
	for _, c := range evalIn[[]fetch](p, `window.fetches`) {
		if c.Method == http.MethodGet && strings.Contains(c.URL, "/api/v1/rooms?") {
			calls = append(calls, c.URL)
		}
	}
	if len(calls) != 3 {
		t.Fatalf("room list read with %q, want 3 pages", calls)
	}
	for i, u := range calls {
		if !strings.Contains(u, "limit=100") || (i > 0) != strings.Contains(u, "after=") {
			t.Errorf("call %d: %s, want limit=100, and after= on every call but the first", i, u)
		}
	}
	p.do(chromedp.Click("#refresh-rooms"))
	p.waitFor("the list read again", `window.fetches.filter(f => f.url.includes('/api/v1/rooms?')).length === 6`)
	p.waitFor("every room still listed", fmt.Sprintf(`document.querySelectorAll('#rooms button').length === %d`, n))

	// An older server ignores limit and after and answers every room, with
	// no next: the page reads once and stops. It is played here by dropping
	// the query before the request reaches this server.
	p.do(chromedp.Evaluate[chromedp.Void](`window.olderCalls = [];
		const paging = window.fetch;
		window.fetch = (url, opts = {}) => {
			const u = new URL(url, location.href);
			if (u.pathname !== '/api/v1/rooms' || (opts.method || 'GET') !== 'GET') return paging(url, opts);
			window.olderCalls.push(u.search);
			return paging('/api/v1/rooms', opts);
		};`))
	p.do(chromedp.Click("#refresh-rooms"))
	p.waitFor("every room listed from one answer", fmt.Sprintf(`window.olderCalls.length >= 1 && document.querySelectorAll('#rooms button').length === %d`, n))
	if got := evalIn[[]string](p, `window.olderCalls`); len(got) != 1 {
		t.Errorf("an older server's list read with %q, want one call", got)
	}
}

// The outbox (outbox.js) sends a first burst, then a steady pace; told
// that a frame was refused, it sends nothing for the wait the server
// asked for, then goes on at half the pace, and after a quiet spell at the
// first pace again. Only lower bounds on the
// times are checked: a busy machine makes timers late, never early.
func TestBrowserOutboxPaces(t *testing.T) {
	s := startServer(t, envFor(t, "memory"))
	p := newBrowser(t)
	p.do(chromedp.Navigate(s.base), chromedp.WaitVisible("#username"),
		chromedp.Evaluate[chromedp.Void](`window.sent = [];
			window.outbox = new Outbox((f) => { window.sent.push({at: performance.now(), n: f.n}); return true; }, {burst: 20, rate: 10});
			window.started = performance.now();
			for (let n = 0; n < 30; n++) window.outbox.push(() => ({n}));
			window.burst = window.sent.length;
			window.outbox.refused(0.35);
			window.refusedAt = performance.now();`))
	if burst := evalIn[int](p, `window.burst`); burst != 20 {
		t.Errorf("%d frames sent at once, want the burst of 20", burst)
	}
	p.waitFor("the rest sent", `window.sent.length === 30`)
	type gap struct{ After, Between float64 }
	got := evalIn[gap](p, `({after: window.sent[20].at - window.refusedAt,
		between: Math.min(...window.sent.slice(21).map((s, i) => s.at - window.sent[20 + i].at))})`)
	if got.After < 350 {
		t.Errorf("the first frame after the refusal went %.0f ms after it, want at least the 350 ms asked for", got.After)
	}
	// Half of 10 a second: one every 200 ms (a little less, for timers).
	if got.Between < 190 {
		t.Errorf("frames after the refusal %.0f ms apart at the least, want about 200 (half the pace)", got.Between)
	}
	if order := evalIn[bool](p, `window.sent.every((s, i) => s.n === i)`); !order {
		t.Error("frames sent out of order")
	}
	// An older server sends no retry_after: a second.
	p.do(chromedp.Evaluate[chromedp.Void](`window.sent = [];
		window.outbox.refused(undefined);
		window.refusedAt = performance.now();
		window.outbox.push(() => ({n: 0}));`))
	p.waitFor("the frame after the default wait", `window.sent.length === 1`)
	if after := evalIn[float64](p, `window.sent[0].at - window.refusedAt`); after < 1000 {
		t.Errorf("without retry_after the next frame went after %.0f ms, want at least 1000", after)
	}
	// A quiet spell without refusals brings the first pace back.
	p.do(chromedp.Evaluate[chromedp.Void](`window.quiet = new Outbox(() => true, {rate: 10, recoverAfter: 300});
		window.quiet.refused(0.01);
		window.halved = window.quiet.rate;
		window.quietFrom = performance.now();`))
	if halved := evalIn[float64](p, `window.halved`); halved != 5 {
		t.Errorf("the pace after a refusal: got %v a second, want 5", halved)
	}
	p.waitFor("the pace back after a quiet spell", `(window.quiet.take(), window.quiet.rate === 10)`)
	if after := evalIn[float64](p, `performance.now() - window.quietFrom`); after < 300 {
		t.Errorf("the pace came back after %.0f ms, want a quiet spell of at least 300", after)
	}
}

// createRoomPaced creates a room, waiting as asked when the server limits room
// creation (its defaults allow a few hundred at once; this does not rely
// on them).
func (s *testServer) createRoomPaced(token, name string) apiRoom {
	s.t.Helper()
	for range 30 {
		var out struct {
			Room  apiRoom
			Error struct {
				RetryAfter float64 `json:"retry_after"`
			}
		}
		switch code := s.call("POST", "/api/v1/rooms", token, map[string]string{"name": name}, &out); code {
		case http.StatusCreated:
			return out.Room
		case http.StatusTooManyRequests:
			time.Sleep(time.Duration(max(out.Error.RetryAfter, 0.1) * float64(time.Second)))
		default:
			s.t.Fatalf("creating room %s: status %d", name, code)
		}
	}
	s.t.Fatalf("creating room %s: still refused after 30 waits", name)
	return apiRoom{}
}
