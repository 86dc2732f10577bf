//go:build race

package systemtest

// raceEnabled tells process tests to build the server with the race
// detector too.
const raceEnabled = true
