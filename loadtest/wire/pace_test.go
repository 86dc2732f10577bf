package wire

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"
)

// handlerTransport serves requests with a handler in the caller's
// goroutine: no socket, so the client's waits run on a synctest bubble's
// clock.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

func bubbleClient(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	c, err := NewClient("http://parley.test", &http.Client{Transport: handlerTransport{h}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// refuse answers 429 as the server does: Retry-After in whole seconds, and
// the finer retry_after in the envelope when envelope is not zero.
func refuse(w http.ResponseWriter, header string, envelope float64) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", header)
	w.WriteHeader(http.StatusTooManyRequests)
	if envelope > 0 {
		fmt.Fprintf(w, `{"error":{"code":"rate_limited","message":"slow down","retry_after":%g}}`, envelope)
	} else {
		fmt.Fprint(w, `{"error":{"code":"rate_limited","message":"slow down"}}`)
	}
}

func signedUp(w http.ResponseWriter) {
	w.WriteHeader(http.StatusCreated)
	fmt.Fprint(w, `{"user":{"id":"u1","username":"alice"},"token":"t1"}`)
}

// A 429 is waited out for the time it asks, then the same call succeeds.
func TestCallWaitsOutA429(t *testing.T) {
	tests := []struct {
		name     string
		header   string
		envelope float64
		want     time.Duration
	}{
		{"Retry-After in seconds", "1", 0, time.Second},
		{"the envelope's finer retry_after", "1", 0.25, 250 * time.Millisecond},
		{"Retry-After as an HTTP date", "Sat, 01 Jan 2000 00:00:02 GMT", 0, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int32
				c := bubbleClient(t, func(w http.ResponseWriter, r *http.Request) {
					if calls.Add(1) == 1 {
						refuse(w, tt.header, tt.envelope)
						return
					}
					signedUp(w)
				})
				if tt.header != "1" {
					// The bubble's clock starts at 2000-01-01 00:00:00 UTC.
					if now := time.Now().UTC(); now != time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) {
						t.Fatalf("the bubble starts at %v; the date case needs 2000-01-01", now)
					}
				}
				start := time.Now()
				s, err := c.SignUp(context.Background(), "alice", "correct horse")
				if err != nil || s.Token != "t1" {
					t.Fatalf("got %+v, %v; want the session after the wait", s, err)
				}
				if got := time.Since(start); got < tt.want || got > tt.want+tt.want/10 {
					t.Errorf("the call took %v, want %v plus at most a tenth of jitter", got, tt.want)
				}
				if got := calls.Load(); got != 2 {
					t.Errorf("got %d attempts, want 2", got)
				}
				if got := c.Paced(); got.Refusals != 1 || got.Waits != 1 || got.Waited < tt.want {
					t.Errorf("got %+v, want 1 refusal and 1 wait of at least %v", got, tt.want)
				}
			})
		})
	}
}

// A call whose context ends while it waits out a 429 ends then, with the
// context's error, and is not made again.
func TestCallEndsWithItsContextWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		c := bubbleClient(t, func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			refuse(w, "5", 0)
		})
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.LogIn(ctx, "alice", "correct horse")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want the context's deadline", err)
		}
		if got := time.Since(start); got != 500*time.Millisecond {
			t.Errorf("the call ended after %v, want 500ms, when its context did", got)
		}
		if got := calls.Load(); got != 1 {
			t.Errorf("got %d attempts, want 1", got)
		}
	})
}

// A server that keeps refusing gets its 429 back after maxRefusals waits,
// and one that asks for more than maxWait gets it back at once.
func TestRetriesAreBounded(t *testing.T) {
	tests := []struct {
		name      string
		header    string
		wantCalls int32
		wantTook  time.Duration
	}{
		{"always refused", "1", maxRefusals + 1, maxRefusals * time.Second},
		{"asked to wait an hour", "3600", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int32
				c := bubbleClient(t, func(w http.ResponseWriter, r *http.Request) {
					calls.Add(1)
					refuse(w, tt.header, 0)
				})
				start := time.Now()
				_, err := c.CreateRoom(context.Background(), "token", "general")
				if !HasStatus(err, http.StatusTooManyRequests) {
					t.Fatalf("got %v, want the server's 429", err)
				}
				if got := calls.Load(); got != tt.wantCalls {
					t.Errorf("got %d attempts, want %d", got, tt.wantCalls)
				}
				if got := time.Since(start); got < tt.wantTook || got > tt.wantTook+tt.wantTook/10 {
					t.Errorf("gave up after %v, want %v plus jitter", got, tt.wantTook)
				}
			})
		})
	}
}

// Many callers refused at once do not retry together, round after round:
// against a limit of 10 calls a second (no burst), 32 concurrent sign-ups
// all succeed, paced to the limit, with about one refusal each. Retrying
// each refusal after its own wait alone (every caller told "100 ms") would
// refuse all but one caller every round: hundreds of refusals, and some
// callers out of retries.
func TestConcurrentRefusalsArePaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			callers  = 32
			interval = 100 * time.Millisecond
		)
		var (
			mu       sync.Mutex
			nextFree time.Time // the limit's next free moment
			refused  int
		)
		c := bubbleClient(t, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			now := time.Now()
			if now.Before(nextFree) {
				refused++
				wait := nextFree.Sub(now)
				mu.Unlock()
				refuse(w, "1", wait.Seconds())
				return
			}
			nextFree = now.Add(interval)
			mu.Unlock()
			signedUp(w)
		})
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for i := range callers {
			wg.Go(func() {
				if _, err := c.SignUp(context.Background(), fmt.Sprint("user", i), "correct horse"); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("sign-up failed: %v", err)
		}
		took := time.Since(start)
		t.Logf("%d sign-ups against %v a call: %d refusals, %v in all", callers, interval, refused, took)
		if refused > 2*callers {
			t.Errorf("got %d refusals, want at most %d: the retries were not spaced", refused, 2*callers)
		}
		if least := (callers - 1) * interval; took < least || took > 2*least {
			t.Errorf("took %v, want about %v: the rate the server allows", took, least)
		}
		if got := c.Paced(); got.Refusals != int64(refused) {
			t.Errorf("the client counted %d refusals, the server made %d", got.Refusals, refused)
		}
	})
}

func TestPacerSpacesRefusedAttempts(t *testing.T) {
	var p Pacer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := p.Hold(now); got != 0 {
		t.Fatalf("Hold before any refusal: got %v, want 0", got)
	}
	step := 100 * time.Millisecond
	for i := 1; i <= 3; i++ {
		want := time.Duration(i) * step
		if got := p.Refused(now, step); got < want || got >= want+step/10 {
			t.Errorf("refusal %d: got a wait of %v, want %v plus under a tenth", i, got, want)
		}
	}
	if got, want := p.Hold(now), 4*step; got < want || got >= want+step/10 {
		t.Errorf("Hold while pacing: got %v, want %v, the slot after the refused", got, want)
	}
	if got := p.Hold(now.Add(time.Second)); got != 0 {
		t.Errorf("Hold after the slots have passed: got %v, want 0", got)
	}
}

// A refused upgrade's 429 carries its wait to the caller, which dials
// again no sooner.
func TestDialRefusedByALimitSaysHowLongToWait(t *testing.T) {
	t.Parallel()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse(w, "1", 0.3)
	}))
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := Dial(ctx, &websocket.Dialer{}, "ws"+strings.TrimPrefix(hs.URL, "http")+"/ws", "token")
	if !HasStatus(err, http.StatusTooManyRequests) {
		t.Fatalf("got %v, want the server's 429", err)
	}
	if got, ok := RetryAfterOf(err); !ok || got != 300*time.Millisecond {
		t.Errorf("got a wait of %v, %v; want 300ms, true", got, ok)
	}
}
