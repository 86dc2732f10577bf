// Package wire speaks Parley's public protocol (the REST API and the
// WebSocket frames of protocol v1) with types of its own: the load
// generator is a black-box client, so it doubles as a contract test of the
// server.
package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parleychat/parley/loadtest/wait"
)

// User is a user as the API shows it.
type User struct {
	ID       string `json:"id"`
	Username string `json:"username"`
}

// Session is a signed-in user, the bearer token to act as them, and when
// the token expires (zero where the server does not say: sign-up's expiry
// is an extension, docs/protocol.md).
type Session struct {
	User      User      `json:"user"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Room is a chat room.
type Room struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	LastSeq int64  `json:"last_seq"`
}

// Message is a stored chat message.
type Message struct {
	ID       string    `json:"id"`
	Room     string    `json:"room"`
	Seq      int64     `json:"seq"`
	ClientID string    `json:"client_id"`
	User     User      `json:"user"`
	Body     string    `json:"body"`
	TS       time.Time `json:"ts"`
}

// APIError is an error answer of the REST API.
type APIError struct {
	Status  int
	Code    string
	Message string
	// RetryAfter is the wait a 429 asked for: the envelope's retry_after
	// when it has one (an extension, finer than the header), or else the
	// Retry-After header.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

// IsConflict reports whether err is the API's 409 (a name already taken).
func IsConflict(err error) bool { return HasStatus(err, http.StatusConflict) }

// HasStatus reports whether err is an API answer with the HTTP status.
func HasStatus(err error, status int) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.Status == status
}

// Client calls the REST API of one base URL. It honours the server's rate
// limits: a call answered 429 waits the time the server asks and is made
// again, and calls of the same endpoint are spaced while the server is
// refusing them (Pacer), up to maxRefusals per call and never past the
// call's context.
type Client struct {
	base string
	http *http.Client

	paced    PaceCounter
	pacersMu sync.Mutex
	pacers   map[string]*Pacer // by method and path
}

// NewClient returns a client of the API at base (http or https).
func NewClient(base string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("target %q is not an http(s) URL", base)
	}
	return &Client{base: strings.TrimSuffix(u.String(), "/"), http: httpClient, pacers: map[string]*Pacer{}}, nil
}

// Paced says how much the server's rate limits have held the client's
// calls back so far.
func (c *Client) Paced() Paced { return c.paced.Load() }

// Base is the URL the client calls.
func (c *Client) Base() string { return c.base }

// WebSocketURL is the URL of /ws on the same server.
func (c *Client) WebSocketURL() string {
	return "ws" + strings.TrimPrefix(c.base, "http") + "/ws"
}

// SignUp creates a user and returns their session.
func (c *Client) SignUp(ctx context.Context, username, password string) (Session, error) {
	var s Session
	err := c.do(ctx, http.MethodPost, "/api/v1/users", "", map[string]string{"username": username, "password": password}, &s)
	return s, err
}

// LogIn opens a session for an existing user.
func (c *Client) LogIn(ctx context.Context, username, password string) (Session, error) {
	var s Session
	err := c.do(ctx, http.MethodPost, "/api/v1/sessions", "", map[string]string{"username": username, "password": password}, &s)
	return s, err
}

// Rooms lists every room.
func (c *Client) Rooms(ctx context.Context, token string) ([]Room, error) {
	var out struct{ Rooms []Room }
	err := c.do(ctx, http.MethodGet, "/api/v1/rooms", token, nil, &out)
	return out.Rooms, err
}

// CreateRoom creates a room named name.
func (c *Client) CreateRoom(ctx context.Context, token, name string) (Room, error) {
	var out struct{ Room Room }
	err := c.do(ctx, http.MethodPost, "/api/v1/rooms", token, map[string]string{"name": name}, &out)
	return out.Room, err
}

// The bounds of waiting out 429s: a server that keeps refusing a call
// ends it with its 429 rather than holding it for ever.
const (
	// maxRefusals is how many 429s one call waits out. Pacing makes a
	// second refusal of the same call rare; ten is far beyond it.
	maxRefusals = 10
	// maxWait is the longest wait a call honours: a server asking for
	// more is answered with its 429 at once.
	maxWait = 2 * time.Minute
	// defaultWait stands in for a 429 that says nothing of how long to
	// wait (protocol v1 promises Retry-After, so only a proxy's would).
	defaultWait = time.Second
)

// do makes a call, waiting out the server's 429s.
func (c *Client) do(ctx context.Context, method, path, token string, body, out any) error {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return err
		}
	}
	pacer := c.pacer(method + " " + path)
	if err := c.pause(ctx, pacer.Hold(time.Now())); err != nil {
		return fmt.Errorf("%s %s: waiting for the server's pace: %w", method, path, err)
	}
	for refusals := 0; ; refusals++ {
		err := c.once(ctx, method, path, token, raw, out)
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusTooManyRequests {
			return err
		}
		if refusals == maxRefusals {
			return fmt.Errorf("%s %s: still refused after waiting %d times: %w", method, path, refusals, err)
		}
		if apiErr.RetryAfter > maxWait {
			return fmt.Errorf("%s %s: the server asks to wait %v, more than %v: %w", method, path, apiErr.RetryAfter, maxWait, err)
		}
		c.paced.Refused()
		// The wait is the call's slot: it does not Hold again.
		if err := c.pause(ctx, pacer.Refused(time.Now(), apiErr.RetryAfter)); err != nil {
			return fmt.Errorf("%s %s: waiting out a 429: %w", method, path, err)
		}
	}
}

// pacer is the Pacer of an endpoint.
func (c *Client) pacer(endpoint string) *Pacer {
	c.pacersMu.Lock()
	defer c.pacersMu.Unlock()
	p := c.pacers[endpoint]
	if p == nil {
		p = &Pacer{}
		c.pacers[endpoint] = p
	}
	return p
}

// pause waits d, or until ctx ends, and counts the wait.
func (c *Client) pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	start := time.Now()
	err := wait.Sleep(ctx, d)
	c.paced.Waited(time.Since(start))
	return err
}

// once makes a call once.
func (c *Client) once(ctx context.Context, method, path, token string, body []byte, out any) error {
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, reader)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return apiError(resp, raw)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// apiError is the error answer resp, whose body is raw.
func apiError(resp *http.Response, raw []byte) *APIError {
	var e struct {
		Error struct {
			Code, Message string
			RetryAfter    float64 `json:"retry_after"`
		}
	}
	_ = json.Unmarshal(raw, &e)
	apiErr := &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	if resp.StatusCode == http.StatusTooManyRequests {
		apiErr.RetryAfter = retryAfter(e.Error.RetryAfter, resp.Header.Get("Retry-After"), time.Now())
	}
	return apiErr
}

// refused is a refused WebSocket upgrade's error answer, of which the
// WebSocket library keeps the first kilobyte: enough for the envelope.
func refused(resp *http.Response) *APIError {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return apiError(resp, raw)
}

// RetryAfterOf is the wait a 429 in err's chain asks for, if there is one.
func RetryAfterOf(err error) (time.Duration, bool) {
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusTooManyRequests {
		return apiErr.RetryAfter, true
	}
	return 0, false
}

// retryAfter is the wait a 429 asks for: the envelope's seconds when
// present, or else the Retry-After header's (seconds, or an HTTP date, as
// RFC 9110 allows), or else defaultWait; at least a millisecond (the
// smallest the protocol names), so that a 429 is never retried at once.
func retryAfter(envelope float64, header string, now time.Time) time.Duration {
	var d time.Duration
	if envelope > 0 {
		d = Seconds(envelope)
	} else if n, err := strconv.ParseFloat(strings.TrimSpace(header), 64); err == nil && n >= 0 {
		d = Seconds(n)
	} else if at, err := http.ParseTime(header); err == nil {
		d = at.Sub(now)
	} else {
		d = defaultWait
	}
	return max(d, time.Millisecond)
}

// Seconds is a wait the server gave in seconds, as a duration; a wait
// beyond a day (or too large to be a duration) is a day, which no caller
// waits out anyway.
func Seconds(s float64) time.Duration {
	const longest = 24 * time.Hour
	if s >= longest.Seconds() {
		return longest
	}
	return time.Duration(s * float64(time.Second))
}
