package gguf

import "fmt"

// Type is a ggml tensor element type, numbered as ggml numbers them.
type Type uint32

// The tensor types dfill reads and writes.
const (
	TypeF32  Type = 0
	TypeF16  Type = 1
	TypeQ8_0 Type = 8
	TypeQ4_K Type = 12
	TypeQ6_K Type = 14
	TypeBF16 Type = 30
)

type typeInfo struct {
	name      string
	blockSize int // elements per block
	typeSize  int // bytes per block
}

var types = map[Type]typeInfo{
	TypeF32:  {"F32", 1, 4},
	TypeF16:  {"F16", 1, 2},
	TypeQ8_0: {"Q8_0", 32, 34},
	TypeQ4_K: {"Q4_K", 256, 144},
	TypeQ6_K: {"Q6_K", 256, 210},
	TypeBF16: {"BF16", 1, 2},
}

// Known reports whether dfill can read and compute with tensors of type t.
func (t Type) Known() bool { _, ok := types[t]; return ok }

// String returns ggml's name for t ("Q8_0"), or "type(N)" for an unknown one.
func (t Type) String() string {
	if ti, ok := types[t]; ok {
		return ti.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize is the number of elements stored together in one block (1 for float types).
func (t Type) BlockSize() int { return types[t].blockSize }

// TypeSize is the number of bytes one block takes.
func (t Type) TypeSize() int { return types[t].typeSize }

// RowSize returns the bytes n elements of type t take, or an error when t is
// unknown or n is not a whole number of blocks.
func (t Type) RowSize(n int) (int, error) {
	ti, ok := types[t]
	if !ok {
		return 0, fmt.Errorf("%w: %s", ErrUnknownType, t)
	}
	if n < 0 || n%ti.blockSize != 0 {
		return 0, fmt.Errorf("gguf: %d elements is not a whole number of %s blocks of %d", n, t, ti.blockSize)
	}
	return n / ti.blockSize * ti.typeSize, nil
}

// ParseType returns the type named s (case-insensitive: "q8_0", "F16").
func ParseType(s string) (Type, error) {
	for t, ti := range types {
		if equalFold(ti.name, s) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrUnknownType, s)
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'a' <= ca && ca <= 'z' {
			ca -= 'a' - 'A'
		}
		if 'a' <= cb && cb <= 'z' {
			cb -= 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}
