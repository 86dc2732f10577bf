package main

import (
	"testing"
	"time"

	"github.com/parleychat/parley/loadtest/scenario"
)

// The scenarios the runner writes are ones the load generator accepts,
// the idle one's rate of zero included, with every user in exactly one
// room.
func TestScenariosAreValidForTheLoadGenerator(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		users, roomSize int
		rate            float64
	}{
		{"fanout", 2000, 10, 2000},
		{"knee", 2000, 10, 16000},
		{"idle", 5000, 100, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sc, err := scenario.Parse([]byte(scenarioYAML(tc.name, tc.users, tc.roomSize, tc.rate, 30*time.Second)), tc.name+".yaml")
			if err != nil {
				t.Fatal(err)
			}
			plan, err := sc.Plan()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := plan.Duration(), 30*time.Second; got != want {
				t.Errorf("plan lasts %v, want %v", got, want)
			}
			seats := map[int]int{}
			for _, r := range sc.Layout() {
				for _, m := range r.Members {
					seats[m]++
				}
			}
			if len(seats) != tc.users {
				t.Errorf("%d users seated, want %d", len(seats), tc.users)
			}
			for u, n := range seats {
				if n != 1 {
					t.Fatalf("user %d is in %d rooms, want 1", u, n)
				}
			}
		})
	}
}
