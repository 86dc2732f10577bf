// Package api is the canary's client of Parley's public protocol (the
// REST calls it needs, and WebSocket connections that know which replica
// serves them). Like the load generator, the canary speaks the protocol
// with types of its own and never imports the server: what it measures is
// what any client would see.
package api

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

// Error is an error answer of the REST API.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// HasStatus reports whether err is an API answer with the HTTP status.
func HasStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// Client calls the REST API at one base URL: the public entry point.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client of the API at base (http or https).
func NewClient(base string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL", base)
	}
	return &Client{base: strings.TrimSuffix(u.String(), "/"), http: httpClient}, nil
}

// WebSocketURL is the URL of /ws behind the same entry point.
func (c *Client) WebSocketURL() string { return "ws" + strings.TrimPrefix(c.base, "http") + "/ws" }

// Session is a signed-in user's bearer token and when it expires.
type Session struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// LogIn opens a session for an existing user.
func (c *Client) LogIn(ctx context.Context, username, password string) (Session, error) {
	var s Session
	err := c.do(ctx, http.MethodPost, "/api/v1/sessions", "", map[string]string{"username": username, "password": password}, &s)
	return s, err
}

// SignUp creates a user and returns their session. The expiry is an
// extension of sign-up (docs/protocol.md); without it the session counts
// as already expiring, so the caller logs in soon for a real one.
func (c *Client) SignUp(ctx context.Context, username, password string) (Session, error) {
	var s Session
	err := c.do(ctx, http.MethodPost, "/api/v1/users", "", map[string]string{"username": username, "password": password}, &s)
	return s, err
}

// Room is a chat room.
type Room struct {
	ID   string `json:"id"`
	Name string `json:"name"`
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
		return &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}
