package wait

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestSleepEndsWithItsContext(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		if got := time.Since(start); got != time.Second {
			t.Errorf("slept %v, want the second until the context ended", got)
		}
		if err := Sleep(t.Context(), time.Minute); err != nil {
			t.Errorf("a sleep that ran its course: got %v, want nil", err)
		}
	})
}

func TestUntil(t *testing.T) {
	t.Parallel()
	t.Run("holds after a few looks", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			looks := 0
			took, err := Until(t.Context(), time.Second, time.Now().Add(time.Minute), func() (bool, error) {
				looks++
				return looks == 4, nil
			})
			if err != nil || took != 3*time.Second {
				t.Fatalf("got %v, %v; want 3s (three waits between four looks)", took, err)
			}
		})
	})
	t.Run("times out naming the last error", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			looks := 0
			_, err := Until(t.Context(), time.Second, time.Now().Add(5*time.Second), func() (bool, error) {
				looks++
				if looks == 2 {
					return false, errors.New("connection refused")
				}
				return false, nil
			})
			if err == nil || !strings.Contains(err.Error(), "timed out (last error: connection refused)") {
				t.Fatalf("got %v, want a time-out naming the last error", err)
			}
			if looks != 7 {
				t.Errorf("looked %d times, want 7 (at 0s to 6s: one look past the deadline)", looks)
			}
		})
	})
	t.Run("stops when its context ends", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2500*time.Millisecond)
			defer cancel()
			_, err := Until(ctx, time.Second, time.Now().Add(time.Hour), func() (bool, error) { return false, nil })
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, want the context's error", err)
			}
		})
	})
}
