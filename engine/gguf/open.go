package gguf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ErrNotAFile is returned by Open for a path that is not a regular file: a
// directory, a named pipe, a device or a socket. Opening a pipe would block
// until something writes to it.
var ErrNotAFile = errors.New("not a regular file")

// checkRegular returns an error that says what path is when it is not a
// regular file (symbolic links are followed).
func checkRegular(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if st.Mode().IsRegular() {
		return nil
	}
	return fmt.Errorf("gguf: %s is %s, %w: a model is a .gguf file", path, describeMode(st.Mode()), ErrNotAFile)
}

// describeMode names a file type for an error message.
func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file"
}
