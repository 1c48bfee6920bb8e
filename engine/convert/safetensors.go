package convert

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/dfill/dfill/engine/kernel"
)

// maxHeader bounds a safetensors JSON header (the format's own limit is
// 100 MB).
const maxHeader = 100 << 20

// tensor is one tensor of a checkpoint: where its bytes lie and what they
// hold.
type tensor struct {
	Name  string
	File  string // the safetensors file, for errors
	DType string // "F32", "F16" or "BF16"
	Shape []int  // outermost dimension first, as PyTorch writes it
	f     *os.File
	off   int64 // of the first byte, from the start of the file
	size  int64
}

// elems returns the number of elements t holds.
func (t *tensor) elems() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// elemSize returns the bytes one element of dtype takes, or 0 for a dtype
// the converter does not read.
func elemSize(dtype string) int {
	switch dtype {
	case "F32":
		return 4
	case "F16", "BF16":
		return 2
	}
	return 0
}

// readRows reads rows [lo, hi) of t, a matrix of cols columns (or a vector
// when cols is its length), converted to float32, into dst.
func (t *tensor) readRows(lo, hi, cols int, buf []byte, dst []float32) ([]byte, error) {
	es := elemSize(t.DType)
	n := (hi - lo) * cols
	buf = slices.Grow(buf[:0], n*es)[:n*es]
	if _, err := t.f.ReadAt(buf, t.off+int64(lo*cols*es)); err != nil {
		return buf, fmt.Errorf("%w: %s: tensor %s: %v", ErrBadCheckpoint, t.File, t.Name, err)
	}
	switch t.DType {
	case "F32":
		for i := range dst[:n] {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
		}
	case "F16":
		for i := range dst[:n] {
			dst[i] = kernel.F16ToF32(binary.LittleEndian.Uint16(buf[2*i:]))
		}
	case "BF16":
		for i := range dst[:n] {
			dst[i] = kernel.BF16ToF32(binary.LittleEndian.Uint16(buf[2*i:]))
		}
	}
	return buf, nil
}

// checkpoint is the tensors of a checkpoint folder, from one
// model.safetensors or the shards model.safetensors.index.json lists.
type checkpoint struct {
	tensors map[string]*tensor
	files   []*os.File
}

// openCheckpoint indexes the safetensors files of dir.
func openCheckpoint(dir string) (_ *checkpoint, err error) {
	files := []string{"model.safetensors"}
	indexPath := filepath.Join(dir, "model.safetensors.index.json")
	var weightMap map[string]string
	if b, err := os.ReadFile(indexPath); err == nil {
		var index struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(b, &index); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadCheckpoint, indexPath, err)
		}
		if len(index.WeightMap) == 0 {
			return nil, fmt.Errorf("%w: %s: no weight_map", ErrBadCheckpoint, indexPath)
		}
		weightMap = index.WeightMap
		files = files[:0]
		for _, f := range index.WeightMap {
			if filepath.Base(f) != f {
				return nil, fmt.Errorf("%w: %s: shard %q is not a file of the folder", ErrBadCheckpoint, indexPath, f)
			}
			if !slices.Contains(files, f) {
				files = append(files, f)
			}
		}
		slices.Sort(files)
	} else if !os.IsNotExist(err) {
		return nil, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	c := &checkpoint{tensors: map[string]*tensor{}}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	for _, name := range files {
		if err := c.addFile(filepath.Join(dir, name)); err != nil {
			return nil, err
		}
	}
	for name, file := range weightMap {
		t, ok := c.tensors[name]
		if !ok {
			return nil, fmt.Errorf("%w: %s: tensor %s is not in %s", ErrBadCheckpoint, indexPath, name, file)
		}
		if t.File != filepath.Join(dir, file) {
			return nil, fmt.Errorf("%w: %s: tensor %s is in %s, not %s", ErrBadCheckpoint, indexPath, name, t.File, file)
		}
	}
	return c, nil
}

// addFile reads the header of the safetensors file at path and indexes its
// tensors.
func (c *checkpoint) addFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	c.files = append(c.files, f)
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	var lenBuf [8]byte
	if _, err := io.ReadFull(f, lenBuf[:]); err != nil {
		return fmt.Errorf("%w: %s: header length: %v", ErrBadCheckpoint, path, err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > maxHeader || int64(n) > st.Size()-8 {
		return fmt.Errorf("%w: %s: header of %d bytes in a file of %d", ErrBadCheckpoint, path, n, st.Size())
	}
	hdr := make([]byte, n)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return fmt.Errorf("%w: %s: header: %v", ErrBadCheckpoint, path, err)
	}
	var entries map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &entries); err != nil {
		return fmt.Errorf("%w: %s: header: %v", ErrBadCheckpoint, path, err)
	}
	base := int64(8 + n)
	for name, raw := range entries {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			DType   string   `json:"dtype"`
			Shape   []int    `json:"shape"`
			Offsets [2]int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("%w: %s: tensor %s: %v", ErrBadCheckpoint, path, name, err)
		}
		if _, dup := c.tensors[name]; dup {
			return fmt.Errorf("%w: %s: tensor %s appears in two files", ErrBadCheckpoint, path, name)
		}
		t := &tensor{Name: name, File: path, DType: e.DType, Shape: e.Shape, f: f, off: base + e.Offsets[0], size: e.Offsets[1] - e.Offsets[0]}
		if elemSize(e.DType) == 0 {
			return fmt.Errorf("%w: %s: tensor %s has dtype %s (F32, F16 and BF16 are read)", ErrUnsupported, path, name, e.DType)
		}
		elems := int64(1)
		for _, d := range e.Shape {
			if d <= 0 || elems > math.MaxInt64/int64(d) {
				return fmt.Errorf("%w: %s: tensor %s: bad shape %v", ErrBadCheckpoint, path, name, e.Shape)
			}
			elems *= int64(d)
		}
		if elems > st.Size() {
			return fmt.Errorf("%w: %s: tensor %s: shape %v is larger than the file", ErrBadCheckpoint, path, name, e.Shape)
		}
		if e.Offsets[0] < 0 || t.size != elems*int64(elemSize(e.DType)) || t.off+t.size > st.Size() {
			return fmt.Errorf("%w: %s: tensor %s: offsets %v do not hold %v %s in a file of %d bytes", ErrBadCheckpoint, path, name, e.Offsets, e.Shape, e.DType, st.Size())
		}
		c.tensors[name] = t
	}
	return nil
}

// tensor returns the tensor called name, or an error naming it.
func (c *checkpoint) tensor(name string) (*tensor, error) {
	t, ok := c.tensors[name]
	if !ok {
		return nil, fmt.Errorf("%w: no tensor %s", ErrBadCheckpoint, name)
	}
	return t, nil
}

// Close closes the checkpoint's files.
func (c *checkpoint) Close() error {
	var first error
	for _, f := range c.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
