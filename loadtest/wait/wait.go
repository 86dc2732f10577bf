// Package wait is how the load generator waits: for a while, or until
// something holds, and never past the end of its context, so that an
// interrupted run stops at once instead of finishing a sleep.
package wait

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sleep waits for d or until ctx ends, and returns ctx's error if it ended.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Until calls cond every every until it holds, the deadline passes or ctx
// ends, and says how long it took. An error from cond does not stop the
// polling (the next look may succeed); the last one is reported if the
// deadline passes.
func Until(ctx context.Context, every time.Duration, deadline time.Time, cond func() (bool, error)) (time.Duration, error) {
	start := time.Now()
	var last error
	for {
		ok, err := cond()
		if ok {
			return time.Since(start), nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			if last != nil {
				return 0, fmt.Errorf("timed out (last error: %w)", last)
			}
			return 0, errors.New("timed out")
		}
		if err := Sleep(ctx, every); err != nil {
			return 0, err
		}
	}
}
