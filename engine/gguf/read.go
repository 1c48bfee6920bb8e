package gguf

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
)

// magic is the first four bytes of every GGUF file.
const magic = "GGUF"

// DefaultAlignment is the alignment of tensor data when a file has no
// general.alignment key.
const DefaultAlignment = 32

// AlignmentKey is the metadata key that sets the alignment of tensor data.
const AlignmentKey = "general.alignment"

// MaxDims is the most dimensions a tensor may have.
const MaxDims = 4

// File is a parsed GGUF file: its metadata, the description of each tensor,
// and each tensor's bytes. A File is safe for concurrent reads; Close must
// not run concurrently with them.
type File struct {
	// Version is the file's GGUF version (2 or 3).
	Version uint32
	// Metadata holds the key/value pairs in file order.
	Metadata []KV
	// Tensors describes the tensors in file order; their Data aliases the
	// parsed image.
	Tensors []TensorInfo
	// Alignment is the alignment of the data section and of every tensor
	// offset in it: general.alignment, or DefaultAlignment.
	Alignment int
	// DataOffset is where the data section starts in the file.
	DataOffset int64

	keys    map[string]int // Metadata index by key
	tensors map[string]int // Tensors index by name
	mapping []byte         // the memory mapping Open made, released by Close
}

// KV is one metadata key/value pair.
type KV struct {
	// Key names the value, dotted ("general.architecture").
	Key string
	// Value is the value.
	Value Value
}

// TensorInfo describes one tensor and holds its bytes.
type TensorInfo struct {
	// Name is the tensor's name ("blk.0.attn_q.weight").
	Name string
	// Dims is the tensor's shape, innermost (contiguous) dimension first, as
	// ggml's ne: a weight matrix of r rows of c columns has Dims [c, r].
	Dims []uint64
	// Type is the element type.
	Type Type
	// Offset is where the tensor's bytes start, relative to the data section.
	Offset uint64
	// Data is the tensor's bytes, aliasing the parsed image (the mapping, for
	// a File from Open: invalid after Close).
	Data []byte
}

// Elements returns the number of elements of the tensor: the product of its
// dimensions (0 if that overflows, which Parse never lets through).
func (t *TensorInfo) Elements() uint64 {
	n, ok := elements(t.Dims)
	if !ok {
		return 0
	}
	return n
}

// Size returns the number of bytes the tensor's data takes, or 0 when its
// type is unknown or its shape is not whole blocks of that type.
func (t *TensorInfo) Size() int {
	n, err := tensorSize(t.Type, t.Dims)
	if err != nil || n > math.MaxInt {
		return 0
	}
	return int(n)
}

// elements returns the product of dims, and false if it overflows uint64.
func elements(dims []uint64) (uint64, bool) {
	n := uint64(1)
	for _, d := range dims {
		hi, lo := bits.Mul64(n, d)
		if hi != 0 {
			return 0, false
		}
		n = lo
	}
	return n, true
}

// tensorSize returns the bytes a tensor of type t and shape dims takes:
// rows of dims[0] elements, each a whole number of t's blocks.
func tensorSize(t Type, dims []uint64) (uint64, error) {
	if !t.Known() {
		return 0, errorf(ErrUnknownType, "unknown tensor type %d", uint32(t))
	}
	if len(dims) == 0 || len(dims) > MaxDims {
		return 0, errorf(ErrInvalid, "%d dimensions, want 1 to %d", len(dims), MaxDims)
	}
	for i, d := range dims {
		if d == 0 {
			return 0, errorf(ErrInvalid, "dimension %d of %v is 0", i, dims)
		}
	}
	n, ok := elements(dims)
	if !ok {
		return 0, errorf(ErrInvalid, "shape %v: element count overflows", dims)
	}
	bs := uint64(t.BlockSize())
	if dims[0]%bs != 0 {
		return 0, errorf(ErrInvalid, "row of %d elements is not a whole number of %s blocks of %d", dims[0], t, bs)
	}
	hi, size := bits.Mul64(n/bs, uint64(t.TypeSize()))
	if hi != 0 {
		return 0, errorf(ErrInvalid, "shape %v: byte size overflows", dims)
	}
	return size, nil
}

// Parse parses a GGUF image held in memory. The returned File's tensor Data
// aliases data, which must not change while the File is in use; Close on it
// does nothing. Parse trusts nothing in data: every count, length, shape and
// offset is checked against the bytes there are before it is used, and no
// allocation is larger than a small multiple of len(data).
func Parse(data []byte) (*File, error) {
	f, err := parse(data)
	if err != nil {
		return nil, within(err, "gguf")
	}
	return f, nil
}

func parse(data []byte) (*File, error) {
	r := &reader{b: data}
	if len(data) < 4 || string(data[:4]) != magic {
		m := data[:min(len(data), 4)]
		return nil, errorf(ErrNotGGUF, "magic %q, want %q", m, magic)
	}
	r.off = 4
	version, err := r.u32("version")
	if err != nil {
		return nil, err
	}
	if version != 2 && version != 3 {
		if v := bits.ReverseBytes32(version); v == 2 || v == 3 {
			return nil, errorf(ErrVersion, "big-endian file (version %d); only little-endian files are read", v)
		}
		return nil, errorf(ErrVersion, "version %d, want 2 or 3", version)
	}
	nTensors, err := r.u64("tensor count")
	if err != nil {
		return nil, err
	}
	nKV, err := r.u64("metadata count")
	if err != nil {
		return nil, err
	}
	// Each key/value takes at least a key length, a value type and one byte;
	// each tensor info at least a name length, n_dims, one dimension, a
	// type and an offset.
	const minKV, minTensor = 8 + 4 + 1, 8 + 4 + 8 + 4 + 8
	if nKV > uint64(r.left())/minKV {
		return nil, errorf(ErrTruncated, "%d metadata entries need at least %d bytes each, %d bytes left", nKV, minKV, r.left())
	}
	if nTensors > uint64(r.left())/minTensor {
		return nil, errorf(ErrTruncated, "%d tensors need at least %d bytes each, %d bytes left", nTensors, minTensor, r.left())
	}

	f := &File{
		Version:   version,
		Metadata:  make([]KV, 0, nKV),
		Tensors:   make([]TensorInfo, 0, nTensors),
		Alignment: DefaultAlignment,
		keys:      make(map[string]int, nKV),
		tensors:   make(map[string]int, nTensors),
	}
	for i := range nKV {
		key, err := r.str("key")
		if err != nil {
			return nil, within(err, "metadata entry %d", i)
		}
		if _, dup := f.keys[key]; dup {
			return nil, errorf(ErrDuplicate, "key %q appears twice", key)
		}
		t, err := r.u32("value type")
		if err != nil {
			return nil, within(err, "key %q", key)
		}
		v, err := r.value(ValueType(t), 0)
		if err != nil {
			return nil, within(err, "key %q", key)
		}
		f.keys[key] = len(f.Metadata)
		f.Metadata = append(f.Metadata, KV{Key: key, Value: v})
	}
	if v, ok := f.Lookup(AlignmentKey); ok {
		a, err := alignment(v)
		if err != nil {
			return nil, within(err, "key %q", AlignmentKey)
		}
		f.Alignment = a
	}

	for i := range nTensors {
		name, err := r.str("name")
		if err != nil {
			return nil, within(err, "tensor %d", i)
		}
		t, err := r.tensorInfo(name)
		if err != nil {
			return nil, within(err, "tensor %q", name)
		}
		if _, dup := f.tensors[t.Name]; dup {
			return nil, errorf(ErrDuplicate, "tensor %q appears twice", t.Name)
		}
		f.tensors[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}

	// The data section starts at the next multiple of the alignment. A file
	// without tensors may end before it.
	start := alignUp(uint64(r.off), uint64(f.Alignment))
	f.DataOffset = int64(min(start, uint64(len(data))))
	if len(f.Tensors) == 0 {
		return f, nil
	}
	if start > uint64(len(data)) {
		return nil, errorf(ErrTruncated, "data section starts at %d, past the end of the file (%d bytes)", start, len(data))
	}
	section := data[start:]
	n := uint64(len(section))
	for i := range f.Tensors {
		t := &f.Tensors[i]
		size, _ := tensorSize(t.Type, t.Dims) // checked by tensorInfo
		if t.Offset%uint64(f.Alignment) != 0 {
			return nil, errorf(ErrInvalid, "tensor %q: offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.Alignment)
		}
		if t.Offset > n || size > n-t.Offset {
			return nil, errorf(ErrTruncated, "tensor %q: offset %d + size %d past end of data (%d bytes)", t.Name, t.Offset, size, n)
		}
		t.Data = section[t.Offset : t.Offset+size : t.Offset+size]
	}
	if err := checkOverlap(f.Tensors); err != nil {
		return nil, err
	}
	return f, nil
}

// checkOverlap returns an error if the data of two tensors overlap.
func checkOverlap(ts []TensorInfo) error {
	order := make([]int, len(ts))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		switch {
		case ts[a].Offset < ts[b].Offset:
			return -1
		case ts[a].Offset > ts[b].Offset:
			return 1
		}
		return 0
	})
	for k := 1; k < len(order); k++ {
		p, c := &ts[order[k-1]], &ts[order[k]]
		if end := p.Offset + uint64(len(p.Data)); end > c.Offset {
			return errorf(ErrInvalid, "tensors %q (bytes %d to %d) and %q (from %d) overlap", p.Name, p.Offset, end, c.Name, c.Offset)
		}
	}
	return nil
}

// alignment returns the alignment general.alignment sets: a uint32 power of
// two.
func alignment(v Value) (int, error) {
	a, ok := v.v.(uint32)
	if !ok || v.Type != ValueUint32 {
		return 0, errorf(ErrInvalid, "alignment is a %s, want uint32", v.typeName())
	}
	if a == 0 || a&(a-1) != 0 {
		return 0, errorf(ErrInvalid, "alignment %d is not a power of two", a)
	}
	return int(a), nil
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

// reader reads little-endian fields from an image, checking each against
// the bytes left.
type reader struct {
	b   []byte
	off int
}

func (r *reader) left() int { return len(r.b) - r.off }

// take returns the next n bytes, or ErrTruncated naming what was being read.
func (r *reader) take(n uint64, what string) ([]byte, error) {
	if n > uint64(r.left()) {
		return nil, errorf(ErrTruncated, "%s at offset %d: need %d bytes, %d left", what, r.off, n, r.left())
	}
	b := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return b, nil
}

func (r *reader) u8(what string) (uint8, error) {
	b, err := r.take(1, what)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (r *reader) u16(what string) (uint16, error) {
	b, err := r.take(2, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (r *reader) u32(what string) (uint32, error) {
	b, err := r.take(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (r *reader) u64(what string) (uint64, error) {
	b, err := r.take(8, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// str reads a GGUF string: a uint64 length and that many bytes, copied.
func (r *reader) str(what string) (string, error) {
	b, err := r.strBytes(what)
	return string(b), err
}

// strBytes reads a GGUF string and returns its bytes, aliasing the image.
func (r *reader) strBytes(what string) ([]byte, error) {
	if r.left() < 8 {
		return nil, errorf(ErrTruncated, "%s length at offset %d: need 8 bytes, %d left", what, r.off, r.left())
	}
	n := binary.LittleEndian.Uint64(r.b[r.off:])
	r.off += 8
	if n > uint64(r.left()) {
		return nil, errorf(ErrTruncated, "%s at offset %d: length %d, %d bytes left", what, r.off, n, r.left())
	}
	b := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return b, nil
}

// strings reads n strings. They share one allocation, made after a first
// pass has checked every length, because a vocabulary holds hundreds of
// thousands of them.
func (r *reader) strings(n int) ([]string, error) {
	start, total := r.off, 0
	for i := range n {
		b, err := r.strBytes("string")
		if err != nil {
			return nil, within(err, "element %d", i)
		}
		total += len(b)
	}
	buf := make([]byte, 0, total)
	r.off = start
	for range n {
		b, _ := r.strBytes("")
		buf = append(buf, b...)
	}
	all := string(buf)
	s := make([]string, n)
	r.off, total = start, 0
	for i := range s {
		b, _ := r.strBytes("")
		s[i] = all[total : total+len(b)]
		total += len(b)
	}
	return s, nil
}

func (r *reader) bool(what string) (bool, error) {
	b, err := r.u8(what)
	if err != nil {
		return false, err
	}
	if b > 1 {
		return false, errorf(ErrInvalid, "%s at offset %d: byte %d is not a bool (0 or 1)", what, r.off-1, b)
	}
	return b == 1, nil
}

// value reads a value of type t; level is the number of arrays enclosing it.
func (r *reader) value(t ValueType, level int) (Value, error) {
	var x any
	var err error
	switch t {
	case ValueUint8:
		x, err = r.u8("uint8")
	case ValueInt8:
		var u uint8
		u, err = r.u8("int8")
		x = int8(u)
	case ValueUint16:
		x, err = r.u16("uint16")
	case ValueInt16:
		var u uint16
		u, err = r.u16("int16")
		x = int16(u)
	case ValueUint32:
		x, err = r.u32("uint32")
	case ValueInt32:
		var u uint32
		u, err = r.u32("int32")
		x = int32(u)
	case ValueUint64:
		x, err = r.u64("uint64")
	case ValueInt64:
		var u uint64
		u, err = r.u64("int64")
		x = int64(u)
	case ValueFloat32:
		var u uint32
		u, err = r.u32("float32")
		x = math.Float32frombits(u)
	case ValueFloat64:
		var u uint64
		u, err = r.u64("float64")
		x = math.Float64frombits(u)
	case ValueBool:
		x, err = r.bool("bool")
	case ValueString:
		x, err = r.str("string")
	case ValueArray:
		return r.array(level)
	default:
		return Value{}, errorf(ErrInvalid, "value type %d at offset %d is not a GGUF type", uint32(t), r.off-4)
	}
	if err != nil {
		return Value{}, err
	}
	return Value{Type: t, v: x}, nil
}

// array reads an array value: element type, count, elements. level is the
// number of arrays enclosing it.
func (r *reader) array(level int) (Value, error) {
	if level >= maxNesting {
		return Value{}, errorf(ErrInvalid, "arrays nested more than %d deep at offset %d", maxNesting, r.off)
	}
	et, err := r.u32("array element type")
	if err != nil {
		return Value{}, err
	}
	elem := ValueType(et)
	if !elem.valid() {
		return Value{}, errorf(ErrInvalid, "array element type %d at offset %d is not a GGUF type", et, r.off-4)
	}
	n64, err := r.u64("array length")
	if err != nil {
		return Value{}, err
	}
	if m := uint64(elem.minSize()); n64 > uint64(r.left())/m {
		return Value{}, errorf(ErrTruncated, "array of %d %s at offset %d needs at least %d bytes each, %d bytes left", n64, elem, r.off, m, r.left())
	}
	n := int(n64)
	switch elem {
	case ValueUint8:
		b, _ := r.take(n64, "")
		return array(elem, slices.Clone(b)), nil
	case ValueInt8:
		b, _ := r.take(n64, "")
		s := make([]int8, n)
		for i, x := range b {
			s[i] = int8(x)
		}
		return array(elem, s), nil
	case ValueUint16:
		return array(elem, readInts[uint16](r, n, 2)), nil
	case ValueInt16:
		return array(elem, readInts[int16](r, n, 2)), nil
	case ValueUint32:
		return array(elem, readInts[uint32](r, n, 4)), nil
	case ValueInt32:
		return array(elem, readInts[int32](r, n, 4)), nil
	case ValueUint64:
		return array(elem, readInts[uint64](r, n, 8)), nil
	case ValueInt64:
		return array(elem, readInts[int64](r, n, 8)), nil
	case ValueFloat32:
		s := make([]float32, n)
		for i := range s {
			u, _ := r.u32("")
			s[i] = math.Float32frombits(u)
		}
		return array(elem, s), nil
	case ValueFloat64:
		s := make([]float64, n)
		for i := range s {
			u, _ := r.u64("")
			s[i] = math.Float64frombits(u)
		}
		return array(elem, s), nil
	case ValueBool:
		s := make([]bool, n)
		for i := range s {
			if s[i], err = r.bool("bool"); err != nil {
				return Value{}, within(err, "element %d", i)
			}
		}
		return array(elem, s), nil
	case ValueString:
		s, err := r.strings(n)
		if err != nil {
			return Value{}, err
		}
		return array(elem, s), nil
	default: // ValueArray
		s := make([]Value, n)
		for i := range s {
			if s[i], err = r.array(level + 1); err != nil {
				return Value{}, within(err, "element %d", i)
			}
		}
		return array(elem, s), nil
	}
}

// readInts reads n fixed-size integers; the caller has checked that the
// bytes are there.
func readInts[T uint16 | int16 | uint32 | int32 | uint64 | int64](r *reader, n, size int) []T {
	s := make([]T, n)
	b := r.b[r.off : r.off+n*size]
	r.off += n * size
	for i := range s {
		switch size {
		case 2:
			s[i] = T(binary.LittleEndian.Uint16(b[2*i:]))
		case 4:
			s[i] = T(binary.LittleEndian.Uint32(b[4*i:]))
		default:
			s[i] = T(binary.LittleEndian.Uint64(b[8*i:]))
		}
	}
	return s
}

// tensorInfo reads the rest of the description of the tensor called name
// and checks its shape and type.
func (r *reader) tensorInfo(name string) (TensorInfo, error) {
	t := TensorInfo{Name: name}
	nDims, err := r.u32("n_dims")
	if err != nil {
		return t, err
	}
	if nDims == 0 || nDims > MaxDims {
		return t, errorf(ErrInvalid, "n_dims %d, want 1 to %d", nDims, MaxDims)
	}
	t.Dims = make([]uint64, nDims)
	for i := range t.Dims {
		if t.Dims[i], err = r.u64("dimension"); err != nil {
			return t, err
		}
	}
	typ, err := r.u32("type")
	if err != nil {
		return t, err
	}
	t.Type = Type(typ)
	if t.Offset, err = r.u64("offset"); err != nil {
		return t, err
	}
	if _, err := tensorSize(t.Type, t.Dims); err != nil {
		return t, err
	}
	return t, nil
}
