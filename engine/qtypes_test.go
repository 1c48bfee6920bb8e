package engine

import (
	"context"
	"testing"

	"github.com/dfill/dfill/engine/gguf"
)

// newQTypes are the tensor types of issue 16 item 5.
var newQTypes = []gguf.Type{
	gguf.TypeQ4_0, gguf.TypeQ4_1, gguf.TypeQ5_0, gguf.TypeQ5_1,
	gguf.TypeQ2_K, gguf.TypeQ3_K, gguf.TypeQ5_K, gguf.TypeIQ4_NL, gguf.TypeIQ4_XS,
}

// TestNewTypesRun loads a random model whose 2-D weights are of each new
// type, checks its logits against the float64 reference forward over the
// same decoded weights (1e-4 of their RMS, as TestForwardMatchesReference),
// and denoises with it.
func TestNewTypesRun(t *testing.T) {
	tokens := []int32{5, 77, 300, 12, 12, 199, 3, 64, 250}
	for _, arch := range []Arch{ArchDream, ArchLLaDA} {
		for _, typ := range newQTypes {
			if testing.Short() && arch == ArchLLaDA {
				continue // -short: the Dream models only
			}
			t.Run(string(arch)+"/"+typ.String(), func(t *testing.T) {
				s := testSpec(arch, typ)
				s.Layers, s.FFN = 1, 256 // widths still whole K-quant blocks
				m := loadRandom(t, s, 2)
				if got := m.Layers[0].Q.Type; got != typ {
					t.Fatalf("blk.0.attn_q.weight is %s, want %s", got, typ)
				}
				got, err := m.Logits(context.Background(), tokens)
				if err != nil {
					t.Fatal(err)
				}
				if e := relRMS(got, referenceLogits(t, m, tokens)); e > 1e-4 {
					t.Errorf("relative RMS error %.2e against the float64 reference, want ≤ 1e-4", e)
				}
				if c := tinyDenoise(t, m, Options{Lengths: []int{8}, Steps: 4}); len(c) == 0 {
					t.Errorf("denoising gave %d candidates, want some", len(c))
				}
			})
		}
	}
}
