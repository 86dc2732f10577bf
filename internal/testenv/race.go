//go:build race

package testenv

// raceEnabled is whether this test binary has the race detector, which
// GoBuild gives the programs it builds too.
const raceEnabled = true
