//go:build unix

package gguf

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Open memory-maps the GGUF file at path read-only and parses it; a path
// that is not a regular file is refused before it is opened (ErrNotAFile). Tensor
// Data points into the mapping, so weights are paged in from disk as they
// are touched; call Close to release it.
func Open(path string) (*File, error) {
	if err := checkRegular(path); err != nil {
		return nil, err
	}
	fd, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	size := st.Size()
	if size == 0 {
		// mmap rejects an empty length; there is nothing to map anyway.
		_, err := parse(nil)
		return nil, within(err, "gguf: %s", path)
	}
	if size < 0 || uint64(size) > maxFileSize {
		return nil, errorf(ErrInvalid, "gguf: %s: size %d cannot be mapped", path, size)
	}
	data, err := unix.Mmap(int(fd.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("gguf: mmap %s: %w", path, err)
	}
	f, err := parse(data)
	if err != nil {
		unix.Munmap(data)
		return nil, within(err, "gguf: %s", path)
	}
	f.mapping = data
	return f, nil
}

func unmap(b []byte) error {
	if err := unix.Munmap(b); err != nil {
		return fmt.Errorf("gguf: munmap: %w", err)
	}
	return nil
}
