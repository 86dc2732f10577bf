package driver

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/parleychat/parley/loadtest/ledger"
	"github.com/parleychat/parley/loadtest/scenario"
	"github.com/parleychat/parley/loadtest/stats"
	"github.com/parleychat/parley/loadtest/wire"
)

// setUp signs the scenario's users up (or reads their tokens), creates
// its rooms, and makes a virtual user of each, starting the run's clock.
func (r *run) setUp(ctx context.Context) error {
	api := r.apis[0] // every target serves the same data
	r.progress("run %s: setting up %d users and %d rooms on %s", r.cfg.RunID, r.sc.Users.Count, roomCount(r.sc.Rooms), strings.Join(r.cfg.Targets, ", "))
	tokens, err := r.signUp(ctx, api)
	if err != nil {
		return err
	}
	if r.rooms, err = r.createRooms(ctx, api, tokens[0]); err != nil {
		return err
	}
	if p := api.Paced(); p.Waits > 0 {
		r.progress("setup paced by the server: %d refusals (429), calls waited %v in all", p.Refusals, p.Waited.Round(time.Millisecond))
	}
	r.started = time.Now()
	r.ledger = ledger.New(r.started, time.Second)
	r.counters = &stats.Counters{}
	r.users = make([]*vuser, len(tokens))
	for i, t := range tokens {
		ws := r.apis[i%len(r.apis)].WebSocketURL()
		dial := func(ctx context.Context, token string) (*wire.Conn, error) {
			return wire.Dial(ctx, r.ws, ws, token)
		}
		r.users[i] = newVUser(int32(i), t, r.ledger, r.counters, dial)
	}
	for _, rm := range r.rooms {
		for _, m := range rm.members {
			r.users[m].rooms = append(r.users[m].rooms, rm)
		}
	}
	for _, u := range r.users {
		if len(u.rooms) > 0 {
			r.active = append(r.active, u)
		}
	}
	return nil
}

func roomCount(groups []scenario.RoomGroup) int {
	n := 0
	for _, g := range groups {
		n += g.Count
	}
	return n
}

// signUp signs up the scenario's users, or reads their tokens from the
// scenario's token file.
func (r *run) signUp(ctx context.Context, api *wire.Client) ([]string, error) {
	users := r.sc.Users
	if users.TokenFile != "" {
		raw, err := os.ReadFile(users.TokenFile)
		if err != nil {
			return nil, err
		}
		tokens := strings.Fields(string(raw))
		if len(tokens) < users.Count {
			return nil, fmt.Errorf("%s holds %d tokens, the scenario needs %d", users.TokenFile, len(tokens), users.Count)
		}
		return tokens[:users.Count], nil
	}
	tokens := make([]string, users.Count)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.SetupConcurrency)
	for i := range tokens {
		g.Go(func() error {
			name := fmt.Sprintf("%s-%s-%d", users.Prefix, r.cfg.RunID, i)
			s, err := api.SignUp(gctx, name, r.cfg.Password)
			if wire.IsConflict(err) {
				s, err = api.LogIn(gctx, name, r.cfg.Password)
			}
			if err != nil {
				return fmt.Errorf("user %s: %w", name, err)
			}
			tokens[i] = s.Token
			return nil
		})
	}
	return tokens, g.Wait()
}

// createRooms creates the scenario's rooms, with the members its layout
// gives each.
func (r *run) createRooms(ctx context.Context, api *wire.Client, token string) ([]*room, error) {
	var rooms []*room
	for _, lr := range r.sc.Layout() {
		name := fmt.Sprintf("%s-%s-%s", r.sc.Users.Prefix, r.cfg.RunID, lr.Name)
		created, err := api.CreateRoom(ctx, token, name)
		if err != nil {
			return nil, fmt.Errorf("room %s: %w", name, err)
		}
		rm := &room{id: created.ID}
		for _, m := range lr.Members {
			rm.members = append(rm.members, int32(m))
		}
		rooms = append(rooms, rm)
	}
	return rooms, nil
}
