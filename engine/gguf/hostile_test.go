package gguf

import (
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// builder assembles GGUF images byte by byte, valid or not.
type builder struct{ b []byte }

func (b *builder) raw(s string) *builder { b.b = append(b.b, s...); return b }
func (b *builder) u8(x uint8) *builder   { b.b = append(b.b, x); return b }
func (b *builder) u32(x uint32) *builder { b.b = binary.LittleEndian.AppendUint32(b.b, x); return b }
func (b *builder) u64(x uint64) *builder { b.b = binary.LittleEndian.AppendUint64(b.b, x); return b }
func (b *builder) str(s string) *builder { return b.u64(uint64(len(s))).raw(s) }

// header starts an image of version 3 with the given counts.
func header(tensors, kvs uint64) *builder {
	return (&builder{}).raw("GGUF").u32(3).u64(tensors).u64(kvs)
}

// kv appends a key and a value type; the caller appends the value.
func (b *builder) kv(key string, t ValueType) *builder { return b.str(key).u32(uint32(t)) }

// tensor appends a tensor info.
func (b *builder) tensor(name string, typ Type, off uint64, dims ...uint64) *builder {
	b.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		b.u64(d)
	}
	return b.u32(uint32(typ)).u64(off)
}

// data pads to the alignment and appends n bytes of tensor data.
func (b *builder) data(align, n int) *builder {
	for len(b.b)%align != 0 {
		b.b = append(b.b, 0)
	}
	b.b = append(b.b, make([]byte, n)...)
	return b
}

// nested appends a value of type array nested depth arrays deep.
func (b *builder) nested(depth int) *builder {
	for range depth - 1 {
		b.u32(uint32(ValueArray)).u64(1)
	}
	return b.u32(uint32(ValueUint8)).u64(1).u8(7)
}

func TestParseHostile(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want error
		msg  string // a part of the message, naming what was wrong
	}{
		{"empty", nil, ErrNotGGUF, `magic "", want "GGUF"`},
		{"bad magic", []byte("GGML\x03\x00\x00\x00"), ErrNotGGUF, `magic "GGML"`},
		{"version 1", (&builder{}).raw("GGUF").u32(1).u64(0).u64(0).b, ErrVersion, "version 1, want 2 or 3"},
		{"version 0", (&builder{}).raw("GGUF").u32(0).u64(0).u64(0).b, ErrVersion, "version 0, want 2 or 3"},
		{"big-endian", (&builder{}).raw("GGUF").u32(3 << 24).b, ErrVersion, "big-endian file (version 3)"},
		{"truncated header", (&builder{}).raw("GGUF").u32(3).u64(0).b, ErrTruncated, "metadata count at offset 16: need 8 bytes, 0 left"},
		{"huge tensor count", header(1<<60, 0).b, ErrTruncated, "1152921504606846976 tensors need at least 32 bytes each, 0 bytes left"},
		{"huge kv count", header(0, 1<<60).u64(0).b, ErrTruncated, "1152921504606846976 metadata entries"},
		{"key past end", header(0, 1).u64(100).raw("abc").u32(0).u8(1).b, ErrTruncated, "metadata entry 0: key at offset 32: length 100, 8 bytes left"},
		{"string past end", header(0, 1).kv("general.name", ValueString).u64(1 << 62).raw("x").b, ErrTruncated, `key "general.name": string at offset 56: length 4611686018427387904, 1 bytes left`},
		{"array count past end", header(0, 1).kv("a", ValueArray).u32(uint32(ValueUint32)).u64(1 << 40).u32(1).b, ErrTruncated, `key "a": array of 1099511627776 uint32`},
		{"string array count past end", header(0, 1).kv("tokenizer.ggml.tokens", ValueArray).u32(uint32(ValueString)).u64(3).str("a").b, ErrTruncated, `array of 3 string at offset 69 needs at least 8 bytes each, 9 bytes left`},
		{"string in array past end", header(0, 1).kv("t", ValueArray).u32(uint32(ValueString)).u64(2).str("a").u64(9).b, ErrTruncated, `key "t": element 1: string at offset`},
		{"unknown value type", header(0, 1).kv("k", 13).u32(0).b, ErrInvalid, `key "k": value type 13 at offset 33 is not a GGUF type`},
		{"unknown element type", header(0, 1).kv("k", ValueArray).u32(99).u64(0).b, ErrInvalid, `key "k": array element type 99`},
		{"bool not 0 or 1", header(0, 1).kv("b", ValueBool).u8(2).b, ErrInvalid, `key "b": bool at offset 37: byte 2 is not a bool`},
		{"bool array not 0 or 1", header(0, 1).kv("b", ValueArray).u32(uint32(ValueBool)).u64(2).u8(1).u8(9).b, ErrInvalid, `key "b": element 1: bool`},
		{"nested too deep", header(0, 1).kv("n", ValueArray).nested(maxNesting + 1).b, ErrInvalid, `key "n": element 0: element 0: element 0: element 0: element 0: element 0: element 0: element 0: arrays nested more than 8 deep`},
		{"duplicate key", header(0, 2).kv("k", ValueUint8).u8(1).kv("k", ValueUint8).u8(2).b, ErrDuplicate, `key "k" appears twice`},
		{"alignment type", header(0, 1).kv(AlignmentKey, ValueUint64).u64(32).b, ErrInvalid, `key "general.alignment": alignment is a uint64, want uint32`},
		{"alignment 0", header(0, 1).kv(AlignmentKey, ValueUint32).u32(0).b, ErrInvalid, "alignment 0 is not a power of two"},
		{"alignment 48", header(0, 1).kv(AlignmentKey, ValueUint32).u32(48).b, ErrInvalid, "alignment 48 is not a power of two"},
		{"tensor name past end", header(1, 0).u64(1 << 20).raw("w").u32(1).u64(1).u32(0).u64(0).u64(0).b, ErrTruncated, "tensor 0: name at offset"},
		{"n_dims 5", header(1, 0).tensor("w", TypeF32, 0, 1, 1, 1, 1, 1).data(32, 4).b, ErrInvalid, `tensor "w": n_dims 5, want 1 to 4`},
		{"n_dims 0", header(1, 0).tensor("w", TypeF32, 0).u64(0).data(32, 4).b, ErrInvalid, `tensor "w": n_dims 0, want 1 to 4`},
		{"zero dimension", header(1, 0).tensor("w", TypeF32, 0, 4, 0).data(32, 16).b, ErrInvalid, `tensor "w": dimension 1 of [4 0] is 0`},
		{"elements overflow", header(1, 0).tensor("w", TypeF32, 0, 1<<32, 1<<32).data(32, 16).b, ErrInvalid, `tensor "w": shape [4294967296 4294967296]: element count overflows`},
		{"bytes overflow", header(1, 0).tensor("w", TypeF32, 0, 1<<62, 2).data(32, 16).b, ErrInvalid, `tensor "w": shape [4611686018427387904 2]: byte size overflows`},
		{"partial block", header(1, 0).tensor("w", TypeQ8_0, 0, 33).data(32, 34).b, ErrInvalid, `tensor "w": row of 33 elements is not a whole number of Q8_0 blocks of 32`},
		{"unknown tensor type", header(1, 0).tensor("blk.0.ffn_up.weight", 99, 0, 32).data(32, 64).b, ErrUnknownType, `tensor "blk.0.ffn_up.weight": unknown tensor type 99`},
		{"duplicate tensor", header(2, 0).tensor("w", TypeF32, 0, 8).tensor("w", TypeF32, 32, 8).data(32, 64).b, ErrDuplicate, `tensor "w" appears twice`},
		{"data section past end", header(1, 0).tensor("w", TypeF32, 0, 1).b, ErrTruncated, "data section starts at 64, past the end of the file (57 bytes)"},
		{"tensor past end", header(1, 0).tensor("blk.3.attn_q.weight", TypeF32, 0, 8, 8).data(32, 100).b, ErrTruncated, `tensor "blk.3.attn_q.weight": offset 0 + size 256 past end of data (100 bytes)`},
		{"offset past end", header(1, 0).tensor("w", TypeF32, 1<<63, 8).data(32, 64).b, ErrTruncated, `tensor "w": offset 9223372036854775808 + size 32 past end of data (64 bytes)`},
		{"misaligned offset", header(1, 0).tensor("w", TypeF32, 4, 1).data(32, 64).b, ErrInvalid, `tensor "w": offset 4 is not a multiple of the alignment 32`},
		{"overlap", header(2, 0).tensor("a", TypeF32, 0, 16).tensor("b", TypeF32, 32, 8).data(32, 128).b, ErrInvalid, `tensors "a" (bytes 0 to 64) and "b" (from 32) overlap`},
		{"same offset", header(2, 0).tensor("a", TypeF16, 0, 8).tensor("b", TypeF32, 0, 8).data(32, 128).b, ErrInvalid, "overlap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			f, err := Parse(tt.data)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse = %v, %v; want %v", f, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "gguf: ") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q\nwant it to contain %q", err, tt.msg)
			}
			// Nothing is allocated for counts the file cannot hold.
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<16 {
				t.Errorf("Parse allocated %d bytes for a %d-byte file", n, len(tt.data))
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"version 2", (&builder{}).raw("GGUF").u32(2).u64(0).u64(1).kv("k", ValueUint8).u8(1).b},
		{"no tensors, no padding", header(0, 1).kv("k", ValueString).str("abc").b},
		{"unordered offsets", header(2, 0).tensor("a", TypeF32, 32, 8).tensor("b", TypeF32, 0, 8).data(32, 64).b},
		{"gap between tensors", header(2, 0).tensor("a", TypeF32, 0, 8).tensor("b", TypeF32, 64, 8).data(32, 96).b},
		{"nested at the limit", header(0, 1).kv("n", ValueArray).nested(maxNesting).b},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse(tt.data); err != nil {
				t.Fatalf("Parse: %v", err)
			}
		})
	}
}
