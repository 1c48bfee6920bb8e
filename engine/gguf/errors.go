package gguf

import (
	"errors"
	"fmt"
)

// ErrUnknownType is returned for a tensor type dfill cannot read.
var ErrUnknownType = errors.New("gguf: unknown tensor type")

// Sentinel errors for the ways a GGUF image can be bad. Every error Parse,
// Open and Write return wraps one of them (or an I/O error), so callers can
// test with errors.Is; the message itself names the key or tensor and the
// numbers involved.
var (
	// ErrNotGGUF means the image does not start with the magic "GGUF".
	ErrNotGGUF = errors.New("gguf: not a GGUF file")
	// ErrVersion means the file is GGUF, but of a version this package does
	// not read (only 2 and 3, little-endian, are read).
	ErrVersion = errors.New("gguf: unsupported version")
	// ErrTruncated means a count, length or offset points past the end of
	// the image: a short download, or a corrupt field.
	ErrTruncated = errors.New("gguf: truncated file")
	// ErrInvalid means a field holds a value the format does not allow:
	// an unknown value type, a zero or overflowing dimension, a bad
	// alignment, overlapping or misaligned tensor data, and so on.
	ErrInvalid = errors.New("gguf: invalid file")
	// ErrDuplicate means a metadata key or a tensor name occurs twice.
	ErrDuplicate = errors.New("gguf: duplicate name")
)

// formatError is an error whose message is written for people (naming the
// key, tensor and numbers) and which unwraps to one of the sentinel errors.
type formatError struct {
	msg  string
	kind error
}

func (e *formatError) Error() string { return e.msg }
func (e *formatError) Unwrap() error { return e.kind }

// errorf returns a formatError of the given kind.
func errorf(kind error, format string, args ...any) error {
	return &formatError{msg: fmt.Sprintf(format, args...), kind: kind}
}

// within prefixes err's message with a context ("key \"x\"", "element 3"),
// keeping what it unwraps to.
func within(err error, format string, args ...any) error {
	ctx := fmt.Sprintf(format, args...)
	var fe *formatError
	if errors.As(err, &fe) {
		return &formatError{msg: ctx + ": " + fe.msg, kind: fe.kind}
	}
	return fmt.Errorf("%s: %w", ctx, err)
}
