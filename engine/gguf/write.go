package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// TensorData is one tensor to write: its name, type, shape (innermost
// dimension first, as TensorInfo.Dims) and bytes.
type TensorData struct {
	// Name is the tensor's name.
	Name string
	// Type is the element type.
	Type Type
	// Dims is the shape, innermost (contiguous) dimension first.
	Dims []uint64
	// Data is the tensor's bytes: exactly rows of Dims[0] elements of Type.
	Data []byte
}

// Write writes a GGUF version 3 file holding meta (in order) and tensors (in
// order, each at the next multiple of the alignment in the data section).
// The alignment is that of meta's general.alignment, which must then be a
// uint32 power of two, or DefaultAlignment; Write adds no key of its own.
// Everything is checked before the first byte is written: keys and tensor
// names unique, values well formed (not an invalid Val), tensor types known,
// 1 to 4 dimensions, none zero, and len(Data) equal to the shape's size.
func Write(w io.Writer, meta []KV, tensors []TensorData) error {
	specs := make([]TensorSpec, len(tensors))
	for i, t := range tensors {
		specs[i] = TensorSpec{Name: t.Name, Type: t.Type, Dims: t.Dims}
		size, err := tensorSize(t.Type, t.Dims)
		if err == nil && uint64(len(t.Data)) != size {
			return errorf(ErrInvalid, "gguf: write: tensor %q: %d bytes of data, shape %v of %s needs %d", t.Name, len(t.Data), t.Dims, t.Type, size)
		}
	}
	return WriteStream(w, meta, specs, func(i int, dst []byte) error {
		copy(dst, tensors[i].Data)
		return nil
	})
}

// TensorSpec names a tensor WriteStream writes: its name, type and shape.
type TensorSpec struct {
	Name string
	Type Type
	Dims []uint64
}

// WriteStream is Write for tensors too large to hold at once: fill is called
// for each tensor in order with a buffer of exactly its size to fill in, so
// only one tensor is in memory at a time.
func WriteStream(w io.Writer, meta []KV, tensors []TensorSpec, fill func(i int, dst []byte) error) error {
	align := uint64(DefaultAlignment)
	keys := make(map[string]bool, len(meta))
	for _, kv := range meta {
		if keys[kv.Key] {
			return errorf(ErrDuplicate, "gguf: write: key %q appears twice", kv.Key)
		}
		keys[kv.Key] = true
		if err := kv.Value.check(0); err != nil {
			return within(err, "gguf: write: key %q", kv.Key)
		}
		if kv.Key == AlignmentKey {
			a, err := alignment(kv.Value)
			if err != nil {
				return within(err, "gguf: write: key %q", kv.Key)
			}
			align = uint64(a)
		}
	}
	names := make(map[string]bool, len(tensors))
	offsets := make([]uint64, len(tensors))
	sizes := make([]uint64, len(tensors))
	var off uint64
	for i, t := range tensors {
		if names[t.Name] {
			return errorf(ErrDuplicate, "gguf: write: tensor %q appears twice", t.Name)
		}
		names[t.Name] = true
		size, err := tensorSize(t.Type, t.Dims)
		if err != nil {
			return within(err, "gguf: write: tensor %q", t.Name)
		}
		sizes[i] = size
		offsets[i] = off
		off = alignUp(off+size, align)
	}

	e := &encoder{w: bufio.NewWriterSize(w, 1<<16)}
	e.bytes([]byte(magic))
	e.u32(3)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(meta)))
	for _, kv := range meta {
		e.str(kv.Key)
		e.u32(uint32(kv.Value.Type))
		e.value(kv.Value)
	}
	for i, t := range tensors {
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(offsets[i])
	}
	if len(tensors) > 0 {
		e.pad(align)
		var buf []byte
		for i := range tensors {
			if e.err != nil {
				break
			}
			if uint64(cap(buf)) < sizes[i] {
				buf = make([]byte, sizes[i])
			}
			buf = buf[:sizes[i]]
			if err := fill(i, buf); err != nil {
				return fmt.Errorf("gguf: write: tensor %q: %w", tensors[i].Name, err)
			}
			e.bytes(buf)
			e.pad(align)
		}
	}
	if e.err == nil {
		e.err = e.w.Flush()
	}
	if e.err != nil {
		return fmt.Errorf("gguf: write: %w", e.err)
	}
	return nil
}

// encoder writes little-endian fields, keeping the first error and the
// number of bytes written.
type encoder struct {
	w   *bufio.Writer
	n   uint64
	err error
	buf [8]byte
}

func (e *encoder) bytes(b []byte) {
	if e.err != nil {
		return
	}
	var n int
	n, e.err = e.w.Write(b)
	e.n += uint64(n)
}

func (e *encoder) u8(x uint8) {
	e.buf[0] = x
	e.bytes(e.buf[:1])
}

func (e *encoder) u16(x uint16) {
	binary.LittleEndian.PutUint16(e.buf[:], x)
	e.bytes(e.buf[:2])
}

func (e *encoder) u32(x uint32) {
	binary.LittleEndian.PutUint32(e.buf[:], x)
	e.bytes(e.buf[:4])
}

func (e *encoder) u64(x uint64) {
	binary.LittleEndian.PutUint64(e.buf[:], x)
	e.bytes(e.buf[:8])
}

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	if e.err == nil {
		var n int
		n, e.err = e.w.WriteString(s)
		e.n += uint64(n)
	}
}

func (e *encoder) bool(b bool) {
	if b {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

// pad writes zeros up to the next multiple of align.
func (e *encoder) pad(align uint64) {
	var zeros [64]byte
	for k := alignUp(e.n, align) - e.n; k > 0 && e.err == nil; {
		m := min(k, uint64(len(zeros)))
		e.bytes(zeros[:m])
		k -= m
	}
}

// value writes v (without its type, which the caller has written); v has
// passed check.
func (e *encoder) value(v Value) {
	switch x := v.v.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float32:
		e.u32(math.Float32bits(x))
	case float64:
		e.u64(math.Float64bits(x))
	case bool:
		e.bool(x)
	case string:
		e.str(x)
	default:
		e.u32(uint32(v.elem))
		e.u64(uint64(v.Len()))
		e.array(v)
	}
}

func (e *encoder) array(v Value) {
	switch s := v.v.(type) {
	case []uint8:
		e.bytes(s)
	case []int8:
		for _, x := range s {
			e.u8(uint8(x))
		}
	case []uint16:
		for _, x := range s {
			e.u16(x)
		}
	case []int16:
		for _, x := range s {
			e.u16(uint16(x))
		}
	case []uint32:
		for _, x := range s {
			e.u32(x)
		}
	case []int32:
		for _, x := range s {
			e.u32(uint32(x))
		}
	case []uint64:
		for _, x := range s {
			e.u64(x)
		}
	case []int64:
		for _, x := range s {
			e.u64(uint64(x))
		}
	case []float32:
		for _, x := range s {
			e.u32(math.Float32bits(x))
		}
	case []float64:
		for _, x := range s {
			e.u64(math.Float64bits(x))
		}
	case []bool:
		for _, x := range s {
			e.bool(x)
		}
	case []string:
		for _, x := range s {
			e.str(x)
		}
	case []Value:
		for _, x := range s {
			e.value(x)
		}
	}
}
