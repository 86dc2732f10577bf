package auth

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"golang.org/x/crypto/bcrypt"
)

// With every hashing slot taken, a request waits, and gives up when its
// context is cancelled instead of queueing on.
func TestHashingWaitsForASlotAndHonoursCancellation(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		svc := New(nil, Config{Secret: []byte("secret"), PasswordCost: bcrypt.MinCost})
		for range cap(svc.hashSlots) {
			svc.hashSlots <- struct{}{}
		}

		ctx, cancel := context.WithCancel(t.Context())
		var err error
		returned := false
		go func() {
			_, err = svc.Register(ctx, "alice", "correct horse")
			returned = true
		}()

		synctest.Wait()
		if returned {
			t.Fatalf("Register returned %v while every hashing slot was taken, want it to wait", err)
		}
		cancel()
		synctest.Wait()
		if !returned || !errors.Is(err, context.Canceled) {
			t.Fatalf("Register after cancel: returned %v with %v, want context.Canceled", returned, err)
		}
	})
}
