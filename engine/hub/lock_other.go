//go:build !unix

package hub

// processAlive reports true: where a process cannot be probed, only a
// lock's stopped heartbeat makes it stale.
func processAlive(pid int) bool { return true }

// canProbePID says that processAlive cannot tell a gone process.
const canProbePID = false
