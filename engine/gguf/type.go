package gguf

import "fmt"

// Type is a ggml tensor element type, numbered as ggml numbers them.
type Type uint32

// The tensor types dfill reads and writes.
const (
	TypeF32    Type = 0
	TypeF16    Type = 1
	TypeQ4_0   Type = 2
	TypeQ4_1   Type = 3
	TypeQ5_0   Type = 6
	TypeQ5_1   Type = 7
	TypeQ8_0   Type = 8
	TypeQ2_K   Type = 10
	TypeQ3_K   Type = 11
	TypeQ4_K   Type = 12
	TypeQ5_K   Type = 13
	TypeQ6_K   Type = 14
	TypeIQ4_NL Type = 20
	TypeIQ4_XS Type = 23
	TypeBF16   Type = 30
)

type typeInfo struct {
	name      string
	blockSize int // elements per block
	typeSize  int // bytes per block
}

// The block geometry is ggml's (ggml-common.h, block_q4_0 … block_iq4_xs).
var types = map[Type]typeInfo{
	TypeF32:    {"F32", 1, 4},
	TypeF16:    {"F16", 1, 2},
	TypeQ4_0:   {"Q4_0", 32, 18},     // f16 d, qs[16]
	TypeQ4_1:   {"Q4_1", 32, 20},     // f16 d, f16 m, qs[16]
	TypeQ5_0:   {"Q5_0", 32, 22},     // f16 d, qh[4], qs[16]
	TypeQ5_1:   {"Q5_1", 32, 24},     // f16 d, f16 m, qh[4], qs[16]
	TypeQ8_0:   {"Q8_0", 32, 34},     // f16 d, int8 qs[32]
	TypeQ2_K:   {"Q2_K", 256, 84},    // scales[16], qs[64], f16 d, f16 dmin
	TypeQ3_K:   {"Q3_K", 256, 110},   // hmask[32], qs[64], scales[12], f16 d
	TypeQ4_K:   {"Q4_K", 256, 144},   // f16 d, f16 dmin, scales[12], qs[128]
	TypeQ5_K:   {"Q5_K", 256, 176},   // f16 d, f16 dmin, scales[12], qh[32], qs[128]
	TypeQ6_K:   {"Q6_K", 256, 210},   // ql[128], qh[64], int8 scales[16], f16 d
	TypeIQ4_NL: {"IQ4_NL", 32, 18},   // f16 d, qs[16]
	TypeIQ4_XS: {"IQ4_XS", 256, 136}, // f16 d, u16 scales_h, scales_l[4], qs[128]
	TypeBF16:   {"BF16", 1, 2},
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
