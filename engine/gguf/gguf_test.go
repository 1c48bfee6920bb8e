package gguf

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// allValues returns metadata holding every value type, as scalars and as
// arrays, empty arrays and nested arrays included.
func allValues() []KV {
	return []KV{
		{"u8", Val(uint8(200))},
		{"i8", Val(int8(-100))},
		{"u16", Val(uint16(60000))},
		{"i16", Val(int16(-30000))},
		{"u32", Val(uint32(4000000000))},
		{"i32", Val(int32(-2000000000))},
		{"f32", Val(float32(1.5))},
		{"f32.nan", Val(float32(math.NaN()))},
		{"bool.true", Val(true)},
		{"bool.false", Val(false)},
		{"str", Val("héllo, wörld")},
		{"str.empty", Val("")},
		{"u64", Val(uint64(math.MaxUint64))},
		{"i64", Val(int64(math.MinInt64))},
		{"f64", Val(math.Pi)},
		{"arr.u8", Val([]uint8{0, 1, 255})},
		{"arr.i8", Val([]int8{-128, 0, 127})},
		{"arr.u16", Val([]uint16{0, 65535})},
		{"arr.i16", Val([]int16{-32768, 32767})},
		{"arr.u32", Val([]uint32{1, 2, 3})},
		{"arr.i32", Val([]int32{-1, 0, 1})},
		{"arr.f32", Val([]float32{0.5, float32(math.Inf(-1))})},
		{"arr.bool", Val([]bool{true, false, true})},
		{"arr.str", Val([]string{"a", "", "ccc"})},
		{"arr.u64", Val([]uint64{math.MaxUint64})},
		{"arr.i64", Val([]int64{math.MinInt64, math.MaxInt64})},
		{"arr.f64", Val([]float64{-0.0, 1e300})},
		{"arr.empty", Val([]float32{})},
		{"arr.nested", Val([]Value{Val([]int32{1, 2}), Val([]string{"x"}), Val([]Value{Val([]uint8{})})})},
		{"arr.nested.empty", Val([]Value{})},
	}
}

// randomTensors returns one tensor of every type, filled with random bytes,
// with shapes of one to four dimensions.
func randomTensors(rng *rand.Rand) []TensorData {
	var ts []TensorData
	for _, typ := range []Type{TypeF32, TypeF16, TypeQ8_0, TypeQ4_K, TypeQ6_K, TypeBF16} {
		bs := uint64(typ.BlockSize())
		for nd := 1; nd <= MaxDims; nd++ {
			dims := []uint64{bs * uint64(1+rng.IntN(3))}
			for len(dims) < nd {
				dims = append(dims, uint64(1+rng.IntN(3)))
			}
			size, err := tensorSize(typ, dims)
			if err != nil {
				panic(err)
			}
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			ts = append(ts, TensorData{Name: typ.String() + "." + string(rune('0'+nd)), Type: typ, Dims: dims, Data: data})
		}
	}
	return ts
}

func encode(t testing.TB, meta []KV, tensors []TensorData) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, meta, tensors); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return buf.Bytes()
}

// checkSame fails unless f holds exactly meta and tensors.
func checkSame(t testing.TB, f *File, meta []KV, tensors []TensorData) {
	t.Helper()
	if len(f.Metadata) != len(meta) {
		t.Fatalf("%d metadata entries, want %d", len(f.Metadata), len(meta))
	}
	for i, kv := range meta {
		got := f.Metadata[i]
		if got.Key != kv.Key || !got.Value.Equal(kv.Value) {
			t.Errorf("metadata %d: got %q = %v (%s), want %q = %v (%s)", i, got.Key, got.Value, got.Value.typeName(), kv.Key, kv.Value, kv.Value.typeName())
		}
	}
	if len(f.Tensors) != len(tensors) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(tensors))
	}
	for i, want := range tensors {
		got := f.Tensors[i]
		if got.Name != want.Name || got.Type != want.Type || !slices.Equal(got.Dims, want.Dims) || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("tensor %d: got %q %s %v (%d bytes), want %q %s %v (%d bytes)", i, got.Name, got.Type, got.Dims, len(got.Data), want.Name, want.Type, want.Dims, len(want.Data))
		}
		if got.Offset%uint64(f.Alignment) != 0 {
			t.Errorf("tensor %q: offset %d not aligned to %d", got.Name, got.Offset, f.Alignment)
		}
		if p, ok := f.Tensor(want.Name); !ok || p != &f.Tensors[i] {
			t.Errorf("Tensor(%q) = %p, %v; want the tensor", want.Name, p, ok)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tensors := randomTensors(rng)
	tests := []struct {
		name      string
		meta      []KV
		tensors   []TensorData
		alignment int
	}{
		{"empty", nil, nil, 32},
		{"metadata only", allValues(), nil, 32},
		{"tensors only", nil, tensors, 32},
		{"everything", allValues(), tensors, 32},
		{"alignment 1", append(allValues(), KV{AlignmentKey, Val(uint32(1))}), tensors, 1},
		{"alignment 64", append([]KV{{AlignmentKey, Val(uint32(64))}}, allValues()...), tensors, 64},
		{"alignment 4096", []KV{{AlignmentKey, Val(uint32(4096))}}, tensors[:3], 4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := encode(t, tt.meta, tt.tensors)
			f, err := Parse(data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if f.Version != 3 || f.Alignment != tt.alignment {
				t.Errorf("version %d alignment %d, want 3 and %d", f.Version, f.Alignment, tt.alignment)
			}
			if len(tt.tensors) > 0 && f.DataOffset%int64(tt.alignment) != 0 {
				t.Errorf("data section at %d, not aligned to %d", f.DataOffset, tt.alignment)
			}
			checkSame(t, f, tt.meta, tt.tensors)
			if len(tt.tensors) > 0 && len(data)%tt.alignment != 0 {
				t.Errorf("file of %d bytes does not end on the alignment %d", len(data), tt.alignment)
			}
			// Writing what was read gives the same bytes.
			var again []TensorData
			for _, ti := range f.Tensors {
				again = append(again, TensorData{ti.Name, ti.Type, ti.Dims, ti.Data})
			}
			if data2 := encode(t, f.Metadata, again); !bytes.Equal(data, data2) {
				t.Errorf("rewriting the parsed file changed it: %d bytes, then %d", len(data), len(data2))
			}
		})
	}
}

func TestOpen(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	meta, tensors := allValues(), randomTensors(rng)
	path := filepath.Join(t.TempDir(), "model.gguf")
	if err := os.WriteFile(path, encode(t, meta, tensors), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	checkSame(t, f, meta, tensors)
	// Evicted pages read back the same bytes; a slice outside the mapping
	// is ignored.
	for i := range f.Tensors {
		f.Evict(f.Tensors[i].Data)
	}
	f.Evict(f.mapping) // every whole page
	f.Evict(make([]byte, 8192))
	checkSame(t, f, meta, tensors)
	var params uint64
	var size int64
	for _, td := range tensors {
		n, _ := elements(td.Dims)
		params += n
		size += int64(len(td.Data))
	}
	if got := f.ParameterCount(); got != params {
		t.Errorf("ParameterCount = %d, want %d", got, params)
	}
	if got := f.DataSize(); got != size {
		t.Errorf("DataSize = %d, want %d", got, size)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if f.Tensors[0].Data != nil {
		t.Errorf("tensor Data still set after Close")
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.gguf")
	bad := filepath.Join(dir, "bad.gguf")
	os.WriteFile(empty, nil, 0o644)
	os.WriteFile(bad, []byte("GGUF\x03\x00\x00\x00"), 0o644)
	tests := []struct {
		name string
		path string
		want error
	}{
		{"missing", filepath.Join(dir, "missing.gguf"), os.ErrNotExist},
		{"empty", empty, ErrNotGGUF},
		{"truncated", bad, ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Open(tt.path)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, %v; want %v", f, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	f, err := Parse(encode(t, allValues(), nil))
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		v  any
		ok bool
	}
	r := func(v any, ok bool) result { return result{v, ok} }
	tests := []struct {
		name string
		got  result
		want result
	}{
		{"String", r(f.String("str")), r("héllo, wörld", true)},
		{"String of int", r(f.String("u8")), r("", false)},
		{"String missing", r(f.String("nope")), r("", false)},
		{"Uint u8", r(f.Uint("u8")), r(uint64(200), true)},
		{"Uint u64", r(f.Uint("u64")), r(uint64(math.MaxUint64), true)},
		{"Uint negative", r(f.Uint("i8")), r(uint64(0), false)},
		{"Uint of float", r(f.Uint("f32")), r(uint64(0), false)},
		{"Int i64", r(f.Int("i64")), r(int64(math.MinInt64), true)},
		{"Int u32", r(f.Int("u32")), r(int64(4000000000), true)},
		{"Int u64 too big", r(f.Int("u64")), r(int64(0), false)},
		{"Float f32", r(f.Float("f32")), r(1.5, true)},
		{"Float f64", r(f.Float("f64")), r(math.Pi, true)},
		{"Float int", r(f.Float("i16")), r(-30000.0, true)},
		{"Float string", r(f.Float("str")), r(0.0, false)},
		{"Bool", r(f.Bool("bool.true")), r(true, true)},
		{"Bool of u8", r(f.Bool("u8")), r(false, false)},
		{"Strings", r(f.Strings("arr.str")), r([]string{"a", "", "ccc"}, true)},
		{"Strings of ints", r(f.Strings("arr.i32")), r([]string(nil), false)},
		{"Int32s i32", r(f.Int32s("arr.i32")), r([]int32{-1, 0, 1}, true)},
		{"Int32s u8", r(f.Int32s("arr.u8")), r([]int32{0, 1, 255}, true)},
		{"Int32s i64 too big", r(f.Int32s("arr.i64")), r([]int32(nil), false)},
		{"Int32s u64 too big", r(f.Int32s("arr.u64")), r([]int32(nil), false)},
		{"Int32s of floats", r(f.Int32s("arr.f32")), r([]int32(nil), false)},
		{"Float32s f32", r(f.Float32s("arr.f32")), r([]float32{0.5, float32(math.Inf(-1))}, true)},
		{"Float32s f64", r(f.Float32s("arr.f64")), r([]float32{0, float32(math.Inf(1))}, true)},
		{"Float32s of ints", r(f.Float32s("arr.u8")), r([]float32(nil), false)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !equalAny(tt.got.v, tt.want.v) || tt.got.ok != tt.want.ok {
				t.Errorf("got %#v, %v; want %#v, %v", tt.got.v, tt.got.ok, tt.want.v, tt.want.ok)
			}
		})
	}
	if v, ok := f.Lookup("arr.nested"); !ok || v.Type != ValueArray || v.Elem() != ValueArray || v.Len() != 3 {
		t.Errorf("Lookup(arr.nested) = %v (%s of %s, len %d), %v", v, v.Type, v.Elem(), v.Len(), ok)
	}
}

func equalAny(a, b any) bool {
	va, err1 := MakeValue(a)
	vb, err2 := MakeValue(b)
	if err1 != nil || err2 != nil {
		return false
	}
	// float32(1e300) is +Inf on both sides; nil and empty slices differ only
	// in nil-ness, which callers do not see.
	return va.Equal(vb)
}

func TestValueString(t *testing.T) {
	long := strings.Repeat("é", 100)
	tokens := make([]string, 151936)
	for i := range tokens {
		tokens[i] = string(rune('a' + i%26))
	}
	tests := []struct {
		name string
		v    Value
		want string
	}{
		{"uint", Val(uint32(7)), "7"},
		{"int", Val(int8(-7)), "-7"},
		{"float32", Val(float32(0.1)), "0.1"},
		{"float64", Val(1e-6), "1e-06"},
		{"bool", Val(true), "true"},
		{"string", Val("a\"b\n"), `"a\"b\n"`},
		{"long string", Val(long), `"` + strings.Repeat("é", 40) + `"...(200 bytes)`},
		{"short array", Val([]int32{1, -2, 3}), "[1 -2 3]"},
		{"long array", Val(tokens), `["a" "b" "c" "d" "e" "f" "g" "h" ... 151928 more]`},
		{"nested", Val([]Value{Val([]bool{true}), Val([]float32{})}), "[[true] []]"},
		{"invalid", Val(42), "invalid: no GGUF value type for Go type int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.v.String(); got != tt.want {
				t.Errorf("String() = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	f32 := func(name string, dims ...uint64) TensorData {
		n, _ := elements(dims)
		return TensorData{Name: name, Type: TypeF32, Dims: dims, Data: make([]byte, 4*n)}
	}
	tests := []struct {
		name    string
		meta    []KV
		tensors []TensorData
		want    error
		wantMsg string
	}{
		{"unsupported Go type", []KV{{"n", Val(42)}}, nil, ErrInvalid, `gguf: write: key "n": no GGUF value type for Go type int`},
		{"zero Value", []KV{{"z", Value{}}}, nil, ErrInvalid, `key "z": value of type uint8 holds Go <nil>`},
		{"array of non-arrays", []KV{{"a", Value{Type: ValueArray, elem: ValueArray, v: []Value{Val(1.0)}}}}, nil, ErrInvalid, "element 0 is float64"},
		{"duplicate key", []KV{{"k", Val(true)}, {"k", Val(false)}}, nil, ErrDuplicate, `key "k" appears twice`},
		{"alignment type", []KV{{AlignmentKey, Val(uint64(32))}}, nil, ErrInvalid, "alignment is a uint64, want uint32"},
		{"alignment not power of two", []KV{{AlignmentKey, Val(uint32(48))}}, nil, ErrInvalid, "alignment 48 is not a power of two"},
		{"duplicate tensor", nil, []TensorData{f32("w", 2), f32("w", 2)}, ErrDuplicate, `tensor "w" appears twice`},
		{"unknown type", nil, []TensorData{{Name: "q", Type: 99, Dims: []uint64{32}}}, ErrUnknownType, `tensor "q": unknown tensor type 99`},
		{"short data", nil, []TensorData{{Name: "w", Type: TypeF16, Dims: []uint64{4, 2}, Data: make([]byte, 15)}}, ErrInvalid, `tensor "w": 15 bytes of data, shape [4 2] of F16 needs 16`},
		{"partial block", nil, []TensorData{{Name: "w", Type: TypeQ8_0, Dims: []uint64{16}, Data: make([]byte, 17)}}, ErrInvalid, "row of 16 elements is not a whole number of Q8_0 blocks of 32"},
		{"no dims", nil, []TensorData{{Name: "s", Type: TypeF32, Data: make([]byte, 4)}}, ErrInvalid, "0 dimensions"},
		{"five dims", nil, []TensorData{f32("w", 1, 1, 1, 1, 1)}, ErrInvalid, "5 dimensions"},
		{"zero dim", nil, []TensorData{f32("w", 4, 0)}, ErrInvalid, "dimension 1 of [4 0] is 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Write(&buf, tt.meta, tt.tensors)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Write = %v; want %v containing %q", err, tt.want, tt.wantMsg)
			}
			if buf.Len() != 0 {
				t.Errorf("Write wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

func TestMakeValue(t *testing.T) {
	if _, err := MakeValue(uint(1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("MakeValue(uint) = %v, want ErrInvalid", err)
	}
	if _, err := MakeValue([]Value{Val("x")}); !errors.Is(err, ErrInvalid) {
		t.Errorf("MakeValue([]Value{string}) = %v, want ErrInvalid", err)
	}
	v, err := MakeValue(Val([]uint16{1}))
	if err != nil || v.Type != ValueArray || v.Elem() != ValueUint16 || v.Len() != 1 {
		t.Errorf("MakeValue(Value) = %v (%s of %s), %v", v, v.Type, v.Elem(), err)
	}
}
