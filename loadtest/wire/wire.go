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
	"strings"
	"time"
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

// Client calls the REST API of one base URL.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client of the API at base (http or https).
func NewClient(base string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("target %q is not an http(s) URL", base)
	}
	return &Client{base: strings.TrimSuffix(u.String(), "/"), http: httpClient}, nil
}

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

func (c *Client) do(ctx context.Context, method, path, token string, body, out any) error {
	var reader io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(raw)
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
		var e struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal(raw, &e)
		return &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}
