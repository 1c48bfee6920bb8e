//go:build cuda || cudaemu

package cuda

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/dfill/dfill/engine/gguf"
	"github.com/dfill/dfill/engine/kernel"
)

// The weights come from the GGUF file's tensors as stored, never from an
// engine.Model, whose matrices Load may have repacked for the CPU kernels.

// tensorMatrix puts the 2-D tensor name of f (dims [cols, rows]) on the
// GPU. F32, F16, BF16, Q8_0, Q4_K and Q6_K go as they are; the other types
// are decoded on the host (engine/kernel.Dequantize) and go as F16, or F32
// where a value does not fit a half. Context held.
func (d *Device) tensorMatrix(f *gguf.File, file, name string, rows, cols int) (matrix, error) {
	info, ok := f.Tensor(name)
	if !ok {
		return matrix{}, fmt.Errorf("%w: %s: missing tensor %s", ErrBadInput, file, name)
	}
	if len(info.Dims) != 2 || info.Dims[0] != uint64(cols) || info.Dims[1] != uint64(rows) {
		return matrix{}, fmt.Errorf("%w: %s: tensor %s: shape %v but the model's hyperparameters need [%d %d]",
			ErrBadInput, file, name, info.Dims, cols, rows)
	}
	if cols%tileK != 0 {
		return matrix{}, fmt.Errorf("%w: %s: tensor %s: rows of %d elements; the GPU kernels need a multiple of %d",
			ErrUnsupported, file, name, cols, tileK)
	}
	km, err := kernel.NewMatrix(info.Type, rows, cols, info.Data)
	if err != nil {
		return matrix{}, fmt.Errorf("%w: %s: tensor %s: %v", ErrBadInput, file, name, err)
	}
	data, typ := info.Data, info.Type
	if _, ok := typeSuffix[typ]; !ok {
		if data, typ, err = widen(km); err != nil {
			return matrix{}, fmt.Errorf("%w: %s: tensor %s: %v", ErrBadInput, file, name, err)
		}
	}
	rowBytes, err := typ.RowSize(cols)
	if err != nil {
		return matrix{}, fmt.Errorf("%w: %s: tensor %s: %v", ErrBadInput, file, name, err)
	}
	m := matrix{typ: typ, rows: rows, cols: cols, rowBytes: int64(rowBytes)}
	if m.buf, err = d.alloc(int64(len(data))); err != nil {
		return matrix{}, fmt.Errorf("%s: tensor %s: %w", file, name, err)
	}
	if err := upload(m.buf, 0, data); err != nil {
		d.free(&m.buf)
		return matrix{}, fmt.Errorf("%s: tensor %s: %w", file, name, err)
	}
	return m, nil
}

// widen decodes a matrix of a type the kernels do not read to F16 bytes,
// or F32 bytes when a value is too large for a half.
func widen(w kernel.Matrix) ([]byte, gguf.Type, error) {
	vals := make([]float32, w.Rows*w.Cols)
	rb := w.RowBytes()
	for r := 0; r < w.Rows; r++ {
		if err := kernel.Dequantize(w.Type, w.Data[r*rb:(r+1)*rb], vals[r*w.Cols:(r+1)*w.Cols]); err != nil {
			return nil, 0, err
		}
	}
	fits := true
	for _, v := range vals {
		if !(math.Abs(float64(v)) <= 65504) {
			fits = false
			break
		}
	}
	if !fits {
		out := make([]byte, 4*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
		}
		return out, gguf.TypeF32, nil
	}
	out := make([]byte, 2*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint16(out[2*i:], kernel.F32ToF16(v))
	}
	return out, gguf.TypeF16, nil
}

// tensorVector puts the 1-D tensor name of f (n elements, any type) on the
// GPU as float32. Context held.
func (d *Device) tensorVector(f *gguf.File, file, name string, n int) (buffer, error) {
	info, ok := f.Tensor(name)
	if !ok {
		return buffer{}, fmt.Errorf("%w: %s: missing tensor %s", ErrBadInput, file, name)
	}
	if len(info.Dims) != 1 || info.Dims[0] != uint64(n) {
		return buffer{}, fmt.Errorf("%w: %s: tensor %s: shape %v but the model's hyperparameters need [%d]",
			ErrBadInput, file, name, info.Dims, n)
	}
	vals := make([]float32, n)
	if err := kernel.Dequantize(info.Type, info.Data, vals); err != nil {
		return buffer{}, fmt.Errorf("%w: %s: tensor %s: %v", ErrBadInput, file, name, err)
	}
	return d.floats(vals)
}

// floats puts vals on the GPU. Context held.
func (d *Device) floats(vals []float32) (buffer, error) {
	b, err := d.alloc(4 * int64(len(vals)))
	if err != nil {
		return buffer{}, err
	}
	if err := upload(b, 0, vals); err != nil {
		d.free(&b)
		return buffer{}, err
	}
	return b, nil
}
