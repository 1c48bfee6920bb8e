package train

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/dfill/dfill/engine"
	"github.com/dfill/dfill/engine/gguf"
	"github.com/dfill/dfill/engine/kernel"
)

// embeddedModel is the model dfill embeds, a llada GGUF that dfill train
// wrote (Q8_0 matrices, tied output).
var embeddedModel = filepath.Join("..", "..", "cmd", "dfill", "model", "dfill-go.gguf")

// TestLoadModelMatchesEngine reads models with LoadModel and with
// engine.Load, and checks that the trainer starts from the shape, the
// vocabulary and, bitwise, the weights the engine runs: the embedded
// model, and an untrained one exported as Q8_0 with an output matrix of
// its own.
func TestLoadModelMatchesEngine(t *testing.T) {
	vocab, data := tinyData(t)
	opt := tinyOptions()
	opt.Shape.Tied = false
	tr, err := New(opt, vocab, data)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var buf bytes.Buffer
	if err := tr.Export(&buf, gguf.TypeQ8_0); err != nil {
		t.Fatal(err)
	}
	untied := filepath.Join(t.TempDir(), "untied.gguf")
	if err := os.WriteFile(untied, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name, path string
		tied       bool
	}{
		{"embedded", embeddedModel, true},
		{"untied q8_0", untied, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ck, err := LoadModel(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			m, err := engine.Load(tt.path, engine.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			c, s := m.Config, ck.Shape
			want := Shape{Layers: c.Layers, Dim: c.Dim, Heads: c.Heads, KVHeads: c.KVHeads, FFN: c.FFN, Vocab: c.Vocab,
				Seq: c.Context, RopeBase: c.RopeBase, Eps: float64(c.Eps), Tied: tt.tied}
			if s != want {
				t.Fatalf("shape %+v, the engine's model %+v", s, want)
			}
			if len(ck.Vocab.Tokens) != c.Vocab || ck.Vocab.Mask != c.MaskID || ck.Vocab.EOS != m.Tokenizer.EOS() {
				t.Errorf("vocabulary of %d tokens, mask %d, EOS %d; the engine's: %d, %d, %d",
					len(ck.Vocab.Tokens), ck.Vocab.Mask, ck.Vocab.EOS, c.Vocab, c.MaskID, m.Tokenizer.EOS())
			}
			if ck.Step != 0 || slices.ContainsFunc(ck.m, nonZero) || slices.ContainsFunc(ck.v, nonZero) {
				t.Error("a model read as a checkpoint has optimizer state")
			}
			p := NewParams[float32](s)
			copy(p.Data, ck.w)
			engineWeights := engineTensors(m)
			got := Tensors(s, p)
			if len(got) != len(engineWeights) {
				t.Fatalf("%d tensors, the engine's model %d", len(got), len(engineWeights))
			}
			for name, w := range got {
				mat, ok := engineWeights[name]
				if !ok {
					t.Fatalf("tensor %s: not in the engine's model", name)
				}
				if !slices.Equal(w, mat) {
					t.Errorf("tensor %s differs from the engine's", name)
				}
			}
		})
	}
}

func nonZero(v float32) bool { return v != 0 }

// engineTensors returns the weights of m by GGUF tensor name, decoded.
func engineTensors(m *engine.Model) map[string][]float32 {
	decode := func(w kernel.Matrix) []float32 {
		out := make([]float32, w.Rows*w.Cols)
		if err := kernel.Dequantize(w.Type, w.Data[:w.Rows*w.RowBytes()], out); err != nil {
			panic(err)
		}
		return out
	}
	ts := map[string][]float32{"token_embd.weight": decode(m.TokenEmbd), "output_norm.weight": m.OutputNorm}
	if _, ok := m.File().Tensor("output.weight"); ok {
		ts["output.weight"] = decode(m.Output)
	}
	for l, L := range m.Layers {
		pre := "blk." + strconv.Itoa(l) + "."
		ts[pre+"attn_norm.weight"] = L.AttnNorm
		ts[pre+"attn_q.weight"] = decode(L.Q)
		ts[pre+"attn_k.weight"] = decode(L.K)
		ts[pre+"attn_v.weight"] = decode(L.V)
		ts[pre+"attn_output.weight"] = decode(L.Out)
		ts[pre+"ffn_norm.weight"] = L.FFNNorm
		ts[pre+"ffn_gate.weight"] = decode(L.Gate)
		ts[pre+"ffn_up.weight"] = decode(L.Up)
		ts[pre+"ffn_down.weight"] = decode(L.Down)
	}
	return ts
}

// TestLoadRejects checks that LoadModel and LoadCheckpoint refuse, with
// ErrBadOptions, files the trainer cannot start from.
func TestLoadRejects(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, write func(*bytes.Buffer) error) string {
		var buf bytes.Buffer
		if err := write(&buf); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	dream := write("dream.gguf", func(b *bytes.Buffer) error {
		return engine.WriteRandom(b, engine.Spec{Arch: engine.ArchDream, Layers: 1, Dim: 32, Heads: 4, KVHeads: 2, FFN: 64,
			Vocab: 300, Context: 64, Type: gguf.TypeF32, Seed: 1})
	})
	vocab, data := tinyData(t)
	tr, err := New(tinyOptions(), vocab, data)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	model := write("model.gguf", func(b *bytes.Buffer) error { return tr.Export(b, gguf.TypeF32) })
	tests := []struct {
		name string
		load func(string) (*Checkpoint, error)
		path string
	}{
		{"a dream model", LoadModel, dream},
		{"a model as a checkpoint", LoadCheckpoint, model},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.load(tt.path); !errors.Is(err, ErrBadOptions) {
				t.Fatalf("error %v, want ErrBadOptions", err)
			}
		})
	}
}
