//go:build !unix

package gguf

import (
	"fmt"
	"os"
)

// Open reads the GGUF file at path into memory and parses it (a path
// that is not a regular file is refused: ErrNotAFile) (this platform
// has no memory mapping here). Close releases the tensors' Data.
func Open(path string) (*File, error) {
	if err := checkRegular(path); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := parse(data)
	if err != nil {
		return nil, within(err, "gguf: %s", path)
	}
	f.mapping = data
	return f, nil
}

func unmap([]byte) error { return nil }

// Evict does nothing where the file is read into memory rather than
// mapped (see the unix Evict).
func (f *File) Evict([]byte) {}
