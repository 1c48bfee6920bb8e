package engine

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dfill/dfill/engine/gguf"
)

// rewrite writes a copy of a random model with edit applied to its metadata
// and tensors, and returns the copy's path.
func rewrite(t *testing.T, s Spec, edit func(meta []gguf.KV, ts []gguf.TensorData) ([]gguf.KV, []gguf.TensorData)) string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteRandom(&buf, s); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var ts []gguf.TensorData
	for _, ti := range f.Tensors {
		ts = append(ts, gguf.TensorData{Name: ti.Name, Type: ti.Type, Dims: ti.Dims, Data: ti.Data})
	}
	meta, ts := edit(append([]gguf.KV(nil), f.Metadata...), ts)
	var out bytes.Buffer
	if err := gguf.Write(&out, meta, ts); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bad.gguf")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadRejectsBadModels(t *testing.T) {
	s := testSpec(ArchDream, gguf.TypeF32)
	setMeta := func(key string, v gguf.Value) func([]gguf.KV, []gguf.TensorData) ([]gguf.KV, []gguf.TensorData) {
		return func(meta []gguf.KV, ts []gguf.TensorData) ([]gguf.KV, []gguf.TensorData) {
			for i := range meta {
				if meta[i].Key == key {
					meta[i].Value = v
				}
			}
			return meta, ts
		}
	}
	tests := []struct {
		name    string
		edit    func([]gguf.KV, []gguf.TensorData) ([]gguf.KV, []gguf.TensorData)
		wantErr error
		wantMsg string
	}{
		{
			name: "missing tensor",
			edit: func(meta []gguf.KV, ts []gguf.TensorData) ([]gguf.KV, []gguf.TensorData) {
				var out []gguf.TensorData
				for _, x := range ts {
					if x.Name != "blk.1.attn_k.weight" {
						out = append(out, x)
					}
				}
				return meta, out
			},
			wantErr: ErrBadModel, wantMsg: "missing tensor blk.1.attn_k.weight",
		},
		{
			name: "missing dream bias",
			edit: func(meta []gguf.KV, ts []gguf.TensorData) ([]gguf.KV, []gguf.TensorData) {
				var out []gguf.TensorData
				for _, x := range ts {
					if x.Name != "blk.0.attn_q.bias" {
						out = append(out, x)
					}
				}
				return meta, out
			},
			wantErr: ErrBadModel, wantMsg: "missing tensor blk.0.attn_q.bias",
		},
		{
			name: "mis-shaped tensor",
			edit: func(meta []gguf.KV, ts []gguf.TensorData) ([]gguf.KV, []gguf.TensorData) {
				for i := range ts {
					if ts[i].Name == "blk.0.ffn_up.weight" {
						ts[i].Dims = []uint64{ts[i].Dims[1], ts[i].Dims[0]}
					}
				}
				return meta, ts
			},
			wantErr: ErrBadModel, wantMsg: "tensor blk.0.ffn_up.weight: shape [512 256] but the model's hyperparameters need [256 512]",
		},
		{name: "unknown arch", edit: setMeta("general.architecture", gguf.Val("mamba")), wantErr: ErrUnsupportedArch, wantMsg: `"mamba"`},
		{name: "heads not dividing", edit: setMeta("dream.attention.head_count_kv", gguf.Val(uint32(3))), wantErr: ErrBadModel, wantMsg: "head_count 4 is not a multiple of head_count_kv 3"},
		{name: "causal", edit: setMeta("dream.attention.causal", gguf.Val(true)), wantErr: ErrBadModel, wantMsg: "attention.causal is true"},
		{name: "mask out of range", edit: setMeta("tokenizer.ggml.mask_token_id", gguf.Val(uint32(99999))), wantErr: ErrBadModel, wantMsg: "99999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(rewrite(t, s, tt.edit), LoadOptions{})
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("got %v, want %v containing %q", err, tt.wantErr, tt.wantMsg)
			}
		})
	}
	t.Run("not a gguf", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "x.gguf")
		os.WriteFile(path, []byte("hello, this is not a model"), 0o644)
		if _, err := Load(path, LoadOptions{}); !errors.Is(err, gguf.ErrNotGGUF) {
			t.Errorf("got %v, want gguf.ErrNotGGUF", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		if _, err := Load(filepath.Join(t.TempDir(), "nope.gguf"), LoadOptions{}); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("got %v, want os.ErrNotExist", err)
		}
	})
}

func TestRandomPresetsValidate(t *testing.T) {
	for _, name := range PresetNames() {
		archs := []Arch{ArchDream, ArchLLaDA}
		if a := Presets[name].Arch; a != "" {
			archs = []Arch{a}
		}
		for _, arch := range archs {
			s := Presets[name]
			s.Arch, s.Type = arch, gguf.TypeQ8_0
			if err := s.validate(); err != nil {
				t.Errorf("%s/%s: %v", name, arch, err)
			}
		}
	}
}
