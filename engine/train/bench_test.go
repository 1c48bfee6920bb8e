package train

import (
	"fmt"
	"testing"
)

// BenchmarkStep times one training step of a few shapes on random tokens
// (Measure's setup); tokens/s is reported as a metric.
func BenchmarkStep(b *testing.B) {
	shapes := []struct {
		layers, dim, heads, seq, batch int
	}{
		{2, 128, 4, 128, 4},
		{4, 256, 4, 256, 4},
	}
	for _, s := range shapes {
		b.Run(fmt.Sprintf("L%d-D%d-T%d-B%d", s.layers, s.dim, s.seq, s.batch), func(b *testing.B) {
			opt := Options{Shape: Shape{Layers: s.layers, Dim: s.dim, Heads: s.heads, KVHeads: s.heads,
				FFN: (8*s.dim/3 + 31) / 32 * 32, Vocab: 4096, Seq: s.seq, Tied: true},
				Batch: s.batch, LR: 1e-3, Clip: 1, SpanFrac: 0.5, Threads: 2}
			th, err := Measure(opt, b.N)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(th.TokensPerSec, "tokens/s")
		})
	}
}
