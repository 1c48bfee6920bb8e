package engine

import (
	"bytes"
	"context"
	"testing"

	"github.com/dfill/dfill/engine/gguf"
)

// FuzzLoadBytes feeds mutated model files to the loader: any of them may
// be refused, none may panic, and one that loads must run a forward.
func FuzzLoadBytes(f *testing.F) {
	for _, arch := range Archs {
		s := Spec{Arch: arch, Layers: 1, Dim: 32, Heads: 2, KVHeads: 1, FFN: 64, Vocab: 270, Context: 64, Type: gguf.TypeQ8_0, Seed: 1}
		if (Config{Arch: arch}).MoE() {
			s.Experts, s.ExpertsUsed, s.ExpertFFN = 4, 2, 32
		}
		var buf bytes.Buffer
		if err := WriteRandom(&buf, s); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := LoadBytes(data, "fuzz.gguf", LoadOptions{Threads: 1})
		if err != nil {
			return
		}
		defer m.Close()
		if _, err := m.Logits(context.Background(), []int32{0, 1, 2}); err != nil {
			return
		}
		m.Infill(context.Background(), Prompt{Prefix: "a", Suffix: "b"}, Options{Lengths: []int{2}}, nil)
	})
}
