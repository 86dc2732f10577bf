package systemtest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The web client's side of accounts that end (issue 16): logging out ends
// the session on the server, a session ended elsewhere sends the person to
// the log-in form with the reason, a deleted account's messages are not
// shown under its name, and a refusal for going too fast says how long to
// wait.

// recordFetches makes the page keep every REST call it makes from now on,
// as {method, url, auth}, in window.fetches.
func (p browserPage) recordFetches() {
	p.t.Helper()
	p.do(chromedp.Evaluate[chromedp.Void](`window.fetches = [];
		const realFetch = window.fetch;
		window.fetch = (url, opts = {}) => {
			window.fetches.push({method: opts.method || 'GET', url: String(url), auth: (opts.headers || {}).Authorization || ''});
			return realFetch(url, opts);
		};`))
}

// sessionToken is the token the page keeps.
func (p browserPage) sessionToken() string {
	p.t.Helper()
	return evalIn[string](p, `JSON.parse(sessionStorage.getItem('parley.session') || '{}').token || ''`)
}

// Log out asks the server to end the session before the page forgets the
// token; afterwards the token is refused.
func TestWebClientLogOutEndsTheSession(t *testing.T) {
	s := startServer(t, envFor(t, "memory"))
	p := newBrowser(t)
	p.signUp(s.base, "rita")
	token := p.sessionToken()
	if token == "" {
		t.Fatal("no token kept after signing up")
	}
	p.recordFetches()
	p.do(chromedp.Click("#logout"))
	p.waitFor("the log-in form", `!document.querySelector('#auth').hidden && sessionStorage.getItem('parley.session') === null`)

	type fetch struct{ Method, URL, Auth string }
	calls := evalIn[[]fetch](p, `window.fetches`)
	found := false
	for _, c := range calls {
		if c.Method == http.MethodDelete && strings.HasSuffix(c.URL, "/api/v1/sessions/current") && c.Auth == "Bearer "+token {
			found = true
		}
	}
	if !found {
		t.Errorf("REST calls while logging out: %+v, want DELETE /api/v1/sessions/current with the session's token", calls)
	}
	if msg := evalIn[string](p, `document.querySelector('#auth-message').textContent`); msg != "You are logged out." {
		t.Errorf("after log out the form says %q, want %q", msg, "You are logged out.")
	}
	if code := s.call("GET", "/api/v1/rooms", token, nil, nil); code != http.StatusUnauthorized {
		t.Errorf("GET /rooms with the logged-out token: %d, want 401", code)
	}
}

// A session ended from elsewhere closes the page's socket with 1008
// "session ended": the page goes to the log-in form and says why.
func TestWebClientSessionEndedElsewhere(t *testing.T) {
	s := startServer(t, envFor(t, "memory"))
	p := newBrowser(t)
	p.signUp(s.base, "sam")
	if code := s.call("DELETE", "/api/v1/sessions/current", p.sessionToken(), nil, nil); code != http.StatusNoContent {
		t.Fatalf("ending the page's session: %d, want 204", code)
	}
	p.waitFor("the log-in form saying the session ended", `!document.querySelector('#auth').hidden &&
		document.querySelector('#auth-message').textContent.includes('session has ended') &&
		sessionStorage.getItem('parley.session') === null`)
}

// A message whose author deleted their account is shown as from "deleted
// account", set apart, not under the old name.
func TestWebClientShowsDeletedAccounts(t *testing.T) {
	env := envFor(t, "memory")
	s := startServer(t, env)
	olga := s.mustSignUp("olga")
	room := s.mustCreateRoom(olga.Token, "memories")
	zed := s.mustSignUp("zed")
	if code := s.call("POST", "/api/v1/rooms/"+room.ID+"/messages", zed.Token, map[string]string{"client_id": "z1", "body": "I was here"}, nil); code != http.StatusCreated {
		t.Fatalf("zed posting: %d", code)
	}
	deleted := s.call("DELETE", "/api/v1/users/me", zed.Token, map[string]string{"password": "correct horse"}, nil) == http.StatusNoContent

	p := newBrowser(t)
	p.signUp(s.base, "tess")
	p.waitFor("the room listed", `document.querySelectorAll('#rooms button').length === 1`)
	p.openRoom(room.ID, room.Name, "tess")
	p.shows("I was here")
	if deleted {
		if who := evalIn[string](p, `document.querySelector('#messages .message .user').textContent`); who != "deleted account" {
			t.Errorf("zed's message after the account was deleted shows as from %q, want %q", who, "deleted account")
		}
	} else {
		t.Log("the server cannot delete accounts: checking a message frame as such a server sends it")
	}
	// A live message frame from a deleted account, as the protocol
	// extension describes it.
	p.do(chromedp.Evaluate[chromedp.Void](`handleFrame({type: 'message', room: ` + jsString(room.ID) + `, id: 'm-gone', seq: 99,
		client_id: 'c-gone', ts: new Date().toISOString(), body: 'said before leaving',
		user: {id: 'u-gone', username: 'vanished', deleted: true}})`))
	p.shows("said before leaving")
	got := evalIn[[]string](p, `[...document.querySelectorAll('#messages .message')].filter(m => m.querySelector('.body').textContent === 'said before leaving')
		.map(m => m.querySelector('.user').textContent + '|' + m.classList.contains('from-deleted'))`)
	if len(got) != 1 || got[0] != "deleted account|true" {
		t.Errorf("the deleted account's message shows as %q, want from \"deleted account\", styled as such", got)
	}
	if strings.Contains(evalIn[string](p, `document.querySelector('#messages').textContent`), "vanished") {
		t.Error("the deleted account's old name is on screen")
	}
}

// Logging in too often is refused with 429 and a wait: the form says how
// long, not a generic failure. (The refusal is made in the page, as a
// server with login limits answers, so that the test does not depend on
// the server's limits.)
func TestWebClientSaysHowLongToWait(t *testing.T) {
	s := startServer(t, envFor(t, "memory"))
	p := newBrowser(t)
	p.do(chromedp.Navigate(s.base), chromedp.WaitVisible("#username"),
		chromedp.Evaluate[chromedp.Void](`window.fetch = async () => new Response(
			JSON.stringify({error: {code: 'rate_limited', message: 'too many attempts', retry_after: 41.2}}),
			{status: 429, headers: {'Content-Type': 'application/json', 'Retry-After': '42'}})`),
		chromedp.SendKeys("#username", "uma"),
		chromedp.SendKeys("#password", "correct horse"+kb.Enter))
	p.waitFor("the wait on the form", `document.querySelector('#auth-message').textContent === 'Too many attempts. Try again in 42 seconds.'`)
}

// The account panel changes the password (the session goes on) and
// deletes the account (back to the log-in form, the name no longer logs
// in). Against a server without these routes, they are answered in the
// page as the contract of issue 16 says, to check the client's side.
func TestWebClientAccountPanel(t *testing.T) {
	s := startServer(t, envFor(t, "memory"))
	probe := s.mustSignUp("walt-probe")
	supported := s.call("PUT", "/api/v1/users/me/password", probe.Token,
		map[string]string{"password": "correct horse", "new_password": "battery staple"}, nil) == http.StatusNoContent

	p := newBrowser(t)
	p.signUp(s.base, "walt")
	if !supported {
		t.Log("the server has no account routes: answering them in the page")
		p.do(chromedp.Evaluate[chromedp.Void](`const serverFetch = window.fetch;
			window.fetch = async (url, opts = {}) => {
				const body = opts.body ? JSON.parse(opts.body) : {};
				const answer = (status, code) => new Response(status === 204 ? null : JSON.stringify({error: {code, message: code}}), {status});
				if (url === '/api/v1/users/me/password' && opts.method === 'PUT') return answer(body.password === 'correct horse' ? 204 : 403, 'forbidden');
				if (url === '/api/v1/users/me' && opts.method === 'DELETE') return answer(body.password === 'battery staple' ? 204 : 403, 'forbidden');
				return serverFetch(url, opts);
			};`))
	}
	p.do(chromedp.Click("#account-open"), chromedp.WaitVisible("#current-password"),
		chromedp.SendKeys("#current-password", "wrong password"),
		chromedp.SendKeys("#new-password", "battery staple"+kb.Enter))
	p.waitFor("a wrong password refused", `document.querySelector('#password-message').textContent === 'That is not your password.'`)
	p.do(chromedp.SetValue("#current-password", "correct horse"),
		chromedp.SendKeys("#new-password", kb.Enter))
	p.waitFor("the password changed", `document.querySelector('#password-message').textContent.startsWith('Password changed')`)
	if state := evalIn[string](p, `document.querySelector('#status').dataset.state`); state != "connected" {
		t.Errorf("after changing the password the status is %q, want this session still connected", state)
	}
	if supported {
		if code := s.call("POST", "/api/v1/sessions", "", map[string]string{"username": "walt", "password": "battery staple"}, nil); code != http.StatusCreated {
			t.Errorf("logging in with the new password: %d, want 201", code)
		}
	}

	// Deleting needs the box ticked, then the password.
	p.do(chromedp.SendKeys("#delete-password", "battery staple"), chromedp.Click(`#delete-form button[type="submit"]`))
	p.waitFor("the box asked for", `document.querySelector('#delete-message').textContent === 'Tick the box to confirm.'`)
	p.do(chromedp.Click("#delete-confirm"), chromedp.Click(`#delete-form button[type="submit"]`))
	p.waitFor("the log-in form", `!document.querySelector('#auth').hidden && document.querySelector('#auth-message').textContent.includes('account has been deleted') &&
		!document.querySelector('#account').open && sessionStorage.getItem('parley.session') === null`)
	if supported {
		if code := s.call("POST", "/api/v1/sessions", "", map[string]string{"username": "walt", "password": "battery staple"}, nil); code != http.StatusUnauthorized {
			t.Errorf("logging in to the deleted account: %d, want 401", code)
		}
	}
}
