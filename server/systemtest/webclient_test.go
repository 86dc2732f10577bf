package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/parleychat/parley/internal/testenv"
)

// The web client (server/internal/webui) driven in Debian's Chromium,
// headless, through chromedp: what a person does, checked in the DOM.

// browserPage is one tab of a browser context.
type browserPage struct {
	t   *testing.T
	ctx context.Context
}

// newBrowser starts a Chromium of its own (its own profile and storage,
// as a person on their own machine) and returns its tab.
func newBrowser(t *testing.T) browserPage {
	t.Helper()
	chromium := testenv.Find(t, "chromium", "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 800))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	return browserPage{t, ctx}
}

func (p browserPage) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatal(err)
	}
}

// waitFor polls a JavaScript condition until it holds (20 s at most).
func (p browserPage) waitFor(what, condition string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 25*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](condition,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		p.t.Fatalf("waiting for %s: %v\nmessages on screen: %q\npage: %s", what, err, p.bodies(), p.summary())
	}
}

// summary says what the page shows, for failure messages.
func (p browserPage) summary() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`JSON.stringify({url: location.href, auth: !document.querySelector('#auth').hidden, authMessage: document.querySelector('#auth-message').textContent, status: document.querySelector('#status').textContent, roomsMessage: document.querySelector('#rooms-message').textContent})`))
	if err != nil {
		return err.Error()
	}
	return v
}

func evalIn[T any](p browserPage, expression string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expression))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expression, err)
	}
	return v
}

// bodies are the texts of the messages the server has confirmed, in the
// order on screen (pending ones left out).
func (p browserPage) bodies() []string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	v, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('#messages .message:not(.pending):not(.failed) .body')].map(e => e.textContent)`))
	return v
}

func (p browserPage) signUp(base, name string) {
	p.t.Helper()
	p.do(chromedp.Navigate(base),
		chromedp.WaitVisible("#username"),
		chromedp.SendKeys("#username", name),
		chromedp.SendKeys("#password", "correct horse"),
		chromedp.Click(`#auth-form button[value="signup"]`))
	p.waitFor(name+" connected", `document.querySelector('#status').dataset.state === 'connected'`)
}

func (p browserPage) send(text string) {
	p.t.Helper()
	p.do(chromedp.SendKeys("#composer", text+kb.Enter))
}

// shows waits until the confirmed messages include text.
func (p browserPage) shows(text string) {
	p.t.Helper()
	p.waitFor("the message "+text, `[...document.querySelectorAll('#messages .message:not(.pending) .body')].some(e => e.textContent === `+jsString(text)+`)`)
}

func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "`", "\\`", "$", `\$`)
	return "`" + r.Replace(s) + "`"
}

// Two people chat; markup arrives as text; the layout holds long words and
// a phone's width; a cut connection comes back without losing or repeating
// a message, and what was typed meanwhile is sent once.
func TestWebClient(t *testing.T) {
	s := startServer(t, envFor(t, "memory"))
	proxy := testenv.StartProxy(t, strings.TrimPrefix(s.base, "http://"))
	alice, bob := newBrowser(t), newBrowser(t)

	// Alice reaches the server through a proxy the test can cut.
	alice.signUp("http://"+proxy.Addr(), "alice")
	alice.do(chromedp.SendKeys("#room-name", "lobby"), chromedp.Click(`#new-room button`))
	alice.waitFor("the room open", `document.querySelector('#room-title').textContent === 'lobby' && !document.querySelector('#composer').disabled`)
	alice.waitFor("the new room listed, live", `document.querySelector('#rooms button[aria-current="true"]')?.dataset.state === 'live'`)

	bob.signUp(s.base, "bob")
	bob.waitFor("the room listed", `[...document.querySelectorAll('#rooms button')].some(b => b.textContent === 'lobby')`)
	bob.do(chromedp.Click(`#rooms button`))
	bob.waitFor("bob joined", `!document.querySelector('#composer').disabled`)
	alice.waitFor("bob in alice's people list", `[...document.querySelectorAll('#members li')].some(li => li.textContent === 'bob')`)

	alice.send("hello bob")
	bob.shows("hello bob")
	bob.do(chromedp.SendKeys("#composer", "hi ali"))
	alice.waitFor("bob typing", `document.querySelector('#typing').textContent === 'bob is typing…'`)
	bob.send("ce")
	alice.shows("hi alice")

	// Markup is shown as text and does not run.
	evil := `<script>window.pwned = 1</script><img src=x onerror="window.pwned = 1"><b>bold</b>`
	alice.send(evil)
	bob.shows(evil)
	if got := evalIn[int](bob, `document.querySelectorAll('#messages script, #messages img, #messages b').length`); got != 0 {
		t.Errorf("the message made %d elements in bob's page, want none", got)
	}
	if pwned := evalIn[bool](bob, `window.pwned !== undefined`); pwned {
		t.Error("the message's script ran in bob's page")
	}
	// A link is a link, opened only by a click, in a tab that cannot
	// reach back.
	alice.send("see https://example.com/docs for more")
	bob.shows("see https://example.com/docs for more")
	if rel := evalIn[string](bob, `document.querySelector('#messages a[href="https://example.com/docs"]')?.rel || ''`); !strings.Contains(rel, "noopener") {
		t.Errorf("link rel %q, want noopener", rel)
	}

	// A new message adds only itself to the list: a person reading with
	// the keyboard keeps their place.
	bob.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#messages a').focus()`))
	alice.send("while bob reads")
	bob.shows("while bob reads")
	if focused := evalIn[bool](bob, `document.activeElement?.href === 'https://example.com/docs'`); !focused {
		t.Error("a new message took the focus away from the link bob was on")
	}

	// A long word wraps instead of widening the page.
	alice.send(strings.Repeat("x", 600))
	bob.shows(strings.Repeat("x", 600))
	if wide := evalIn[bool](bob, `(() => { const m = document.querySelector('#messages'); return m.scrollWidth > m.clientWidth })()`); wide {
		t.Error("a long word overflows the message list sideways")
	}

	// The link slows down, and a message reaches the server but its ack
	// is lost with the connection: alice's client resends it with the same
	// client_id, and it still appears once.
	proxy.SetLatency(1500 * time.Millisecond)
	alice.send("sent as the link died")
	bob.shows("sent as the link died")
	proxy.Cut()
	proxy.SetLatency(0)
	if pending := evalIn[bool](alice, `[...document.querySelectorAll('#messages .message.pending .body')].some(e => e.textContent === 'sent as the link died')`); !pending {
		t.Error("the message whose ack was lost is not pending at alice's")
	}

	// The connection is down: alice sees it, types a message meanwhile,
	// and bob goes on talking.
	alice.waitFor("alice's client noticing the cut", `document.querySelector('#status').dataset.state !== 'connected'`)
	alice.send("typed while offline")
	alice.waitFor("the message pending", `[...document.querySelectorAll('#messages .message.pending .body')].some(e => e.textContent === 'typed while offline')`)
	for _, m := range []string{"missed 1", "missed 2", "missed 3"} {
		bob.send(m)
		bob.shows(m)
	}
	proxy.Restore()
	alice.waitFor("alice reconnected", `document.querySelector('#status').dataset.state === 'connected'`)
	alice.shows("missed 3")
	alice.shows("typed while offline")
	bob.shows("typed while offline")

	want := []string{"hello bob", "hi alice", evil, "see https://example.com/docs for more", "while bob reads", strings.Repeat("x", 600),
		"sent as the link died", "missed 1", "missed 2", "missed 3", "typed while offline"}
	for name, p := range map[string]browserPage{"alice": alice, "bob": bob} {
		if got := p.bodies(); !slices.Equal(got, want) {
			t.Errorf("%s's messages:\n got %q\nwant %q (each once, in order)", name, got, want)
		}
	}
	if n := evalIn[int](alice, `document.querySelectorAll('#messages .message.pending').length`); n != 0 {
		t.Errorf("alice still has %d pending messages", n)
	}

	// Every control has a label a screen reader can read out.
	unlabelled := evalIn[[]string](alice, `[...document.querySelectorAll('input, textarea')].filter(e => e.labels.length === 0).map(e => e.id)
		.concat([...document.querySelectorAll('button')].filter(b => !b.textContent.trim() && !b.getAttribute('aria-label')).map(b => b.outerHTML))`)
	if len(unlabelled) > 0 {
		t.Errorf("controls without a label: %v", unlabelled)
	}

	// The main screen, for people to look at.
	var shot []byte
	ctx, cancel := context.WithTimeout(alice.ctx, 20*time.Second)
	defer cancel()
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil || len(shot) == 0 {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(os.TempDir(), "parley-webclient.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the main screen: %s", path)

	// A phone-sized screen: one column, nothing wider than the screen, the
	// composer on screen and the message list scrolling on its own.
	bob.do(chromedp.EmulateViewport(390, 844))
	bob.waitFor("the phone layout", `(() => {
		const c = document.querySelector('#composer').getBoundingClientRect();
		const m = document.querySelector('#messages');
		return document.documentElement.scrollWidth <= window.innerWidth && c.width > 200 && c.bottom <= window.innerHeight &&
			m.scrollHeight > m.clientHeight && document.documentElement.scrollHeight <= window.innerHeight + 1;
	})()`)
}

// An expired token sends the user back to the log-in form with a message;
// logging in again works from the keyboard alone, and logging out forgets
// the token.
func TestWebClientSession(t *testing.T) {
	env := envFor(t, "memory")
	env["PARLEY_TOKEN_TTL"] = "4s"
	s := startServer(t, env)
	p := newBrowser(t)
	p.signUp(s.base, "carol")
	p.waitFor("the log-in form with a message", `!document.querySelector('#auth').hidden && document.querySelector('#auth-message').textContent.includes('expired')`)
	if ok := evalIn[bool](p, `sessionStorage.getItem('parley.session') === null`); !ok {
		t.Error("the expired token is still kept")
	}
	// Enter in the password field logs in (the form's first button).
	p.do(chromedp.SetValue("#username", "carol"))
	p.do(chromedp.SendKeys("#password", "correct horse"+kb.Enter))
	p.waitFor("carol connected again", `document.querySelector('#status').dataset.state === 'connected'`)
	p.do(chromedp.Click("#logout"))
	p.waitFor("the log-in form", `!document.querySelector('#auth').hidden && sessionStorage.getItem('parley.session') === null`)
	if msg := evalIn[string](p, `document.querySelector('#auth-message').textContent`); msg != "You are logged out." {
		t.Errorf("after log out the form says %q; want the log-out message (not the expiry one)", msg)
	}
}

// Older history arrives when the user scrolls up (before_seq), in order
// and once each.
func TestWebClientLoadsOlderHistory(t *testing.T) {
	env := envFor(t, "memory")
	env["PARLEY_USER_RATE"] = "1000"
	s := startServer(t, env)
	dave := s.mustSignUp("dave")
	room := s.mustCreateRoom(dave.Token, "archive")
	var want []string
	for i := 1; i <= 70; i++ {
		body := fmt.Sprintf("old %d", i)
		want = append(want, body)
		if code := s.call("POST", "/api/v1/rooms/"+room.ID+"/messages", dave.Token, map[string]string{"client_id": body, "body": body}, nil); code != http.StatusCreated {
			t.Fatalf("posting %s: status %d", body, code)
		}
	}
	p := newBrowser(t)
	p.signUp(s.base, "erin")
	p.waitFor("the room listed", `[...document.querySelectorAll('#rooms button')].some(b => b.textContent === 'archive')`)
	p.do(chromedp.Click(`#rooms button`))
	p.waitFor("the newest page", `document.querySelectorAll('#messages .message').length === 50`)
	if got := p.bodies(); !slices.Equal(got, want[20:]) {
		t.Fatalf("first page %q, want the newest 50 in order", got)
	}
	p.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#messages').scrollTop = 0`))
	p.waitFor("the older messages", `document.querySelectorAll('#messages .message').length === 70`)
	if got := p.bodies(); !slices.Equal(got, want) {
		t.Errorf("after scrolling up: %q, want all 70 in order", got)
	}
}

// Every response carries the security headers, the page's and the API's;
// the page loads only its own script and style.
func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	t.Parallel()
	s := startServer(t, envFor(t, "memory"))
	for _, tc := range []struct {
		path        string
		status      int
		contentType string
	}{
		{"/", http.StatusOK, "text/html"},
		{"/assets/app.js", http.StatusOK, "text/javascript"},
		{"/assets/app.css", http.StatusOK, "text/css"},
		{"/assets/", http.StatusNotFound, ""}, // no directory listing
		{"/assets/index.html", http.StatusNotFound, ""},
		{"/api/v1/rooms", http.StatusUnauthorized, "application/json"},
		{"/healthz", http.StatusOK, "application/json"},
		{"/no/such/page", http.StatusNotFound, "application/json"},
	} {
		resp, err := s.http.Get(s.base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentType) {
			t.Errorf("GET %s: %d %s, want %d %s", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.status, tc.contentType)
		}
		for header, want := range map[string]string{
			"Content-Security-Policy": "default-src 'none'; script-src 'self'",
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			"Referrer-Policy":         "no-referrer",
		} {
			if got := resp.Header.Get(header); !strings.HasPrefix(got, want) {
				t.Errorf("GET %s: %s = %q, want %q...", tc.path, header, got, want)
			}
		}
		if csp := resp.Header.Get("Content-Security-Policy"); strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: the CSP allows %q", tc.path, csp)
		}
	}
	// A revalidated asset that has not changed is a 304.
	resp, err := s.http.Get(s.base + "/assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, s.base+"/assets/app.js", nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	again, err := s.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if resp.Header.Get("ETag") == "" || again.StatusCode != http.StatusNotModified {
		t.Errorf("ETag %q, revalidation %d; want a 304", resp.Header.Get("ETag"), again.StatusCode)
	}
}
