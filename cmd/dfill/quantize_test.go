package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/dfill/dfill/engine"
	"github.com/dfill/dfill/engine/gguf"
)

// TestModelQuantize runs `dfill model quantize` as a user types it: a
// random F32 model quantizes to a GGUF that loads with the mix's types,
// and a failure exits non-zero, says why on stderr and leaves no file.
func TestModelQuantize(t *testing.T) {
	src := filepath.Join(t.TempDir(), "f32.gguf")
	spec := engine.Presets["tiny"] // width 64: the K types fall back
	spec.Arch, spec.Type = engine.ArchDream, gguf.TypeF32
	var buf bytes.Buffer
	if err := engine.WriteRandom(&buf, spec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		in       string
		args     []string
		code     int
		stderr   string    // in stderr
		fileType uint64    // general.file_type, when written
		attnQ    gguf.Type // of blk.0.attn_q.weight, when written
	}{
		// Q4_K of rows of 64 falls back to Q5_0, as llama.cpp's.
		{name: "q4_k_m", in: src, args: []string{"--type", "q4_k_m"}, fileType: 15, attnQ: gguf.TypeQ5_0},
		{name: "q8_0 json", in: src, args: []string{"--type", "Q8_0", "--json"}, fileType: 7, attnQ: gguf.TypeQ8_0},
		{name: "no --type", in: src, code: 2, stderr: "--type is required"},
		{name: "unknown mix", in: src, args: []string{"--type", "q4_k_x"}, code: 2, stderr: "q4_k_x"},
		{name: "missing input", in: filepath.Join(t.TempDir(), "none.gguf"), args: []string{"--type", "q6_k"}, code: 1, stderr: "none.gguf"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			outDir := t.TempDir()
			out := filepath.Join(outDir, "q.gguf")
			args := append([]string{"model", "quantize", tc.in, out}, tc.args...)
			if !runWrites(t, args, outDir, tc.code, tc.stderr) {
				return
			}
			m, err := engine.Load(out, engine.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if v, _ := m.File().Uint("general.file_type"); v != tc.fileType {
				t.Errorf("general.file_type = %d, want %d", v, tc.fileType)
			}
			if q, _ := m.File().Tensor("blk.0.attn_q.weight"); q.Type != tc.attnQ {
				t.Errorf("blk.0.attn_q.weight is %s, want %s", q.Type, tc.attnQ)
			}
			if _, err := m.Logits(context.Background(), []int32{104, 105, 257}); err != nil {
				t.Errorf("Logits: %v", err)
			}
		})
	}
}
