//go:build cuda || cudaemu

package cuda

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dfill/dfill/engine"
	"github.com/dfill/dfill/engine/gguf"
)

// models is a folder of random GGUFs for the benchmarks, named
// PRESET-TYPE.gguf (qwen2.5-0.5b-bf16.gguf): cuda/check.sh writes them with
// `dfill model random`, several at once. Without it the benchmarks write
// their own, one at a time.
var models = flag.String("cuda.models", "", "folder of the benchmarks' random GGUFs (PRESET-TYPE.gguf)")

// benchContext is the canvas length of the denoising-step benchmarks.
const benchContext = 1024

// BenchmarkStep measures one denoising step with the prefix/suffix cache
// on: a pass over a span of 32 or 128 masked positions in the middle of a
// 1024-token canvas whose whole pass ran before (not timed), scoring every
// span position, for 1 and 8 canvases at once, on random models of
// Qwen2.5-0.5B's and -1.5B's shapes (dream) in BF16 and Q8_0; and one whole
// pass over the canvas. Beside ns/op it reports the floors of the step:
// floor-bw-ms, the bytes of the weights a step reads (every matrix once:
// the layers' and the output's) over the memory bandwidth the device
// attributes give, and floor-tc-ms, its multiply-adds (the products and
// the attention) over the dense bf16 tensor-core peak Info.TensorFLOPS
// assumes; and positions/s, span positions scored per second.
func BenchmarkStep(b *testing.B) {
	for _, name := range []string{"qwen2.5-0.5b", "qwen2.5-1.5b"} {
		for _, typ := range []gguf.Type{gguf.TypeBF16, gguf.TypeQ8_0} {
			b.Run(name+"/"+typ.String(), func(b *testing.B) {
				m := loadGPU(b, benchModel(b, name, typ))
				for _, span := range []int{32, 128} {
					for _, batch := range []int{1, 8} {
						b.Run(fmt.Sprintf("span=%d/batch=%d", span, batch), func(b *testing.B) {
							benchStep(b, m, span, batch)
						})
					}
				}
				b.Run(fmt.Sprintf("whole=%d/span=32", benchContext), func(b *testing.B) { benchStep(b, m, 32, -1) })
			})
		}
	}
}

// benchModel returns the path of a random model (dream) of the preset's
// shape and typ: from -cuda.models, or written into a temporary folder.
func benchModel(b testing.TB, name string, typ gguf.Type) string {
	file := fmt.Sprintf("%s-%s.gguf", name, strings.ToLower(typ.String()))
	if *models != "" {
		path := filepath.Join(*models, file)
		if _, err := os.Stat(path); err != nil {
			b.Fatal(err)
		}
		return path
	}
	return writeModel(b, b.TempDir(), preset(name, engine.ArchDream, typ))
}

// benchStep times Step over batch canvases scoring a span of span rows:
// a pass over the span, or, with batch −1, a whole pass over one canvas
// (a block's first step).
func benchStep(b *testing.B, m *Model, span, batch int) {
	rng := rand.New(rand.NewPCG(14, 14))
	lo, hi := (benchContext-span)/2, (benchContext+span)/2
	whole := batch < 0
	batch = max(batch, 1)
	var passes []Pass
	for i := 0; i < batch; i++ {
		tokens := randomTokens(rng, benchContext, m.Config)
		for p := lo; p < hi; p++ {
			tokens[p] = m.Config.MaskID
		}
		c := newCanvas(b, m, tokens)
		step(b, m, Pass{Canvas: c, Lo: 0, Hi: benchContext})
		p := Pass{Canvas: c, Lo: lo - 1, Hi: hi}
		if whole {
			p.Lo, p.Hi = 0, benchContext
		}
		for r := lo - 1; r < hi-1; r++ {
			p.Want = append(p.Want, r) // the rows predicting the span (shifted logits)
		}
		passes = append(passes, p)
	}
	rows, wanted := 0, 0
	for _, p := range passes {
		rows += p.Hi - p.Lo
		wanted += len(p.Want)
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Step(ctx, passes); err != nil {
			b.Fatal(err)
		}
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	bytes, flops := m.stepCost(rows, wanted, benchContext)
	info := dev.Info()
	b.ReportMetric(bytes/info.Bandwidth()*1e3, "floor-bw-ms")
	b.ReportMetric(flops/info.TensorFLOPS()*1e3, "floor-tc-ms")
	b.ReportMetric(sec*1e3, "ms/step")
	b.ReportMetric(float64(wanted)/sec, "positions/s")
}

// stepCost returns the bytes of weights a step reads (each layer matrix
// and the output matrix once) and its flops, 2 per multiply-add: the
// layers' products and attention (q·Kᵀ and P·V over T positions) for rows
// rows, the output product for wanted rows.
func (m *Model) stepCost(rows, wanted, T int) (bytes, flops float64) {
	c := m.Config
	var params float64
	for _, L := range m.layers {
		for _, w := range []matrix{L.q, L.k, L.v, L.out, L.gate, L.up, L.down} {
			bytes += float64(w.buf.n)
			params += float64(w.rows) * float64(w.cols)
		}
	}
	bytes += float64(m.output.buf.n)
	attn := 2 * float64(c.Layers) * float64(T) * float64(c.Heads*c.HeadDim)
	out := float64(m.output.rows) * float64(m.output.cols)
	return bytes, 2 * (float64(rows)*(params+attn) + float64(wanted)*out)
}
