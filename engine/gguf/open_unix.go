//go:build unix

package gguf

import (
	"fmt"
	"os"
	"unsafe"

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

// Evict tells the kernel that b, a part of the file's mapping, will not be
// read soon: its pages leave the process's resident set (the page cache
// keeps them; a later read maps them back). It is for weights the engine
// has copied into a layout of its own. The whole pages inside b are
// evicted; b outside the mapping, or a File held in memory, is a no-op.
func (f *File) Evict(b []byte) {
	if f.mapping == nil || len(b) == 0 {
		return
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(f.mapping)))
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if start < base || start+uintptr(len(b)) > base+uintptr(len(f.mapping)) {
		return
	}
	page := uintptr(os.Getpagesize())
	lo := (start - base + page - 1) / page * page
	hi := (start - base + uintptr(len(b))) / page * page
	if hi > lo {
		unix.Madvise(f.mapping[lo:hi], unix.MADV_DONTNEED)
	}
}
