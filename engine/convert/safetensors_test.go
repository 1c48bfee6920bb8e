package convert

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// FuzzCheckpoint feeds arbitrary bytes to the safetensors reader as a
// model.safetensors: it returns a checkpoint or an error, never panics,
// and every tensor it indexes reads back within the file.
func FuzzCheckpoint(f *testing.F) {
	valid := func(hdr string, data int) []byte {
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
		return append(append(b, hdr...), make([]byte, data)...)
	}
	f.Add(valid(`{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}`, 24))
	f.Add(valid(`{"b":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]},"c":{"dtype":"F16","shape":[1],"data_offsets":[8,10]}}`, 10))
	f.Add(valid(`{"a":{"dtype":"F32","shape":[9223372036854775807,4],"data_offsets":[0,8]}}`, 8))
	f.Add(valid(`{"a":{"dtype":"I8","shape":[1],"data_offsets":[0,1]}}`, 1))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := openCheckpoint(dir)
		if err != nil {
			return
		}
		defer c.Close()
		for _, x := range c.tensors {
			cols := 1
			if len(x.Shape) > 0 {
				cols = x.Shape[len(x.Shape)-1]
			}
			rows := x.elems() / max(cols, 1)
			vals := make([]float32, x.elems())
			if _, err := x.readRows(0, rows, cols, nil, vals); err != nil {
				t.Errorf("tensor %s indexed but unreadable: %v", x.Name, err)
			}
		}
	})
}
