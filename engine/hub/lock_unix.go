//go:build unix

package hub

import (
	"errors"
	"syscall"
)

// processAlive reports whether a process with the id pid exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// canProbePID says that processAlive tells a live process from a gone one.
const canProbePID = true
