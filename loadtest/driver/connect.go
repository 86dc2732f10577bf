package driver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// crowd is the running virtual users, and what runs beside them until
// they stop.
type crowd struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// stop ends every user's connection and waits for them; stopping twice
// is stopping once.
func (c *crowd) stop() {
	c.cancel()
	c.wg.Wait()
}

// joinTimeout is how long a user may take to connect and join its rooms
// while the run sets up.
const joinTimeout = 30 * time.Second

// connect starts every active user and waits, SetupConcurrency at a time,
// for each to join its rooms: the connection rate of the setup. The users
// run until the crowd stops; they are stopped already if connect fails.
func (r *run) connect(ctx context.Context) (*crowd, error) {
	r.progress("connecting %d users", len(r.active))
	usersCtx, cancel := context.WithCancel(ctx)
	c := &crowd{ctx: usersCtx, cancel: cancel}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.SetupConcurrency)
	for _, u := range r.active {
		c.wg.Go(func() { u.run(usersCtx) })
		g.Go(func() error {
			select {
			case <-u.joined:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			case <-time.After(joinTimeout):
				return fmt.Errorf("user %d did not join its rooms in %v", u.idx, joinTimeout)
			}
		})
	}
	if err := g.Wait(); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}
