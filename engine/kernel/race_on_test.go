//go:build race

package kernel

// raceEnabled: the race detector's sync.Pool drops items on purpose, so
// nil-Pool MatMuls allocate under it.
const raceEnabled = true
