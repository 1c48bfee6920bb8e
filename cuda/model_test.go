//go:build cuda || cudaemu

package cuda

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/dfill/dfill/engine"
	"github.com/dfill/dfill/engine/gguf"
)

// writeModel writes a random model of spec s to a file in dir and returns
// its path.
func writeModel(t testing.TB, dir string, s engine.Spec) string {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("%s-%s-%dx%d.gguf", s.Arch, s.Type, s.Layers, s.Dim))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := engine.WriteRandom(w, s); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadGPU loads the model at path onto the test GPU, closed at the test's end.
func loadGPU(t testing.TB, path string) *Model {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := Load(dev, f, filepath.Base(path))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

// loadCPU loads the model at path on the CPU. A quantized model is first
// dequantized to F32 (engine.Quantize, exact): the CPU's products with
// Q8_0 and K-quant weights quantize their activations to 8 bits (the VNNI
// kernels), and the GPU's do not, so the reference is the engine's float32
// forward over the very weights the GPU multiplies.
func loadCPU(t testing.TB, path string, typ gguf.Type) *engine.Model {
	t.Helper()
	if typ != gguf.TypeF32 && typ != gguf.TypeF16 && typ != gguf.TypeBF16 {
		in, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "f32.gguf")
		f, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		w := bufio.NewWriterSize(f, 1<<20)
		if _, err := engine.Quantize(context.Background(), in, w, engine.MixF32); err != nil {
			t.Fatal(err)
		}
		if err := errors.Join(w.Flush(), f.Close(), in.Close()); err != nil {
			t.Fatal(err)
		}
		path = out
	}
	m, err := engine.Load(path, engine.LoadOptions{Threads: runtime.NumCPU()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// modelCase is a random model of the tests.
type modelCase struct {
	name string
	spec engine.Spec
	tol  float64 // of relRMS(GPU logits − CPU logits)
	simt bool    // the plain float32 product kernels instead of the tensor-core ones
}

// path returns the case's model file: written into dir, or, for a
// qwen2.5 shape when -cuda.models names a folder, the file there of that
// preset and type (cuda/check.sh writes them before the tests run).
func (tc modelCase) path(t testing.TB, dir string) string {
	t.Helper()
	if *models != "" && strings.HasPrefix(tc.spec.Name, "qwen2.5-") {
		return benchModel(t, tc.spec.Name, tc.spec.Type)
	}
	return writeModel(t, dir, tc.spec)
}

// preset returns the named preset's shape with arch and typ.
func preset(name string, arch engine.Arch, typ gguf.Type) engine.Spec {
	s := engine.Presets[name]
	s.Arch, s.Type, s.Seed, s.Name = arch, typ, 11, name
	return s
}

// kquantSpec has rows of whole K-quant super-blocks, as engine's tests'.
func kquantSpec(arch engine.Arch, typ gguf.Type) engine.Spec {
	return engine.Spec{Arch: arch, Layers: 2, Dim: 256, Heads: 4, KVHeads: 2, FFN: 512, Vocab: 320, Context: 256,
		RopeBase: 10000, Eps: 1e-6, Tied: arch == engine.ArchDream, Type: typ, Seed: 7}
}

// The models the logits are checked on. Tolerance: relRMS 1e-3. The GPU's
// products round activations to a pair of 16-bit halves (about 16 bits of
// mantissa) and both sides sum in float32 in different orders: about 1e-5
// per layer, which 24 layers of a random model amplify; a wrong kernel is
// off by order 1. tiny at Q4_K is Q5_0 (its rows are not whole K-quant
// blocks), which Load widens to F16 on the host, rounding each weight to
// 11 bits: 2e-3 there (7e-4 measured in the cudaemu build).
var modelCases = []modelCase{
	{"tiny llada F32", preset("tiny", engine.ArchLLaDA, gguf.TypeF32), 1e-3, false},
	{"tiny dream BF16", preset("tiny", engine.ArchDream, gguf.TypeBF16), 1e-3, false},
	{"tiny dream BF16 plain", preset("tiny", engine.ArchDream, gguf.TypeBF16), 1e-3, true},
	{"tiny llada F16", preset("tiny", engine.ArchLLaDA, gguf.TypeF16), 1e-3, false},
	{"tiny dream Q5_0 (widened)", preset("tiny", engine.ArchDream, gguf.TypeQ4_K), 2e-3, false},
	{"dream Q4_K", kquantSpec(engine.ArchDream, gguf.TypeQ4_K), 1e-3, false},
	{"llada Q6_K", kquantSpec(engine.ArchLLaDA, gguf.TypeQ6_K), 1e-3, false},
	{"llada Q8_0", kquantSpec(engine.ArchLLaDA, gguf.TypeQ8_0), 1e-3, false},
	{"qwen2.5-0.5b dream BF16", preset("qwen2.5-0.5b", engine.ArchDream, gguf.TypeBF16), 1e-3, false},
	{"qwen2.5-0.5b dream Q8_0", preset("qwen2.5-0.5b", engine.ArchDream, gguf.TypeQ8_0), 1e-3, false},
}

// TestLogits checks the GPU's logits against engine.Model.Logits (relRMS
// within the case's tolerance) and that their argmax is the same at every
// position but near-ties: positions whose CPU top two logits are closer
// than 8× the largest difference between the two backends' logits there.
func TestLogits(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range modelCases {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path(t, dir)
			gpu, cpu := loadGPU(t, path), loadCPU(t, path, tc.spec.Type)
			gpu.gemm.simt = tc.simt
			tokens := randomTokens(rand.New(rand.NewPCG(9, 9)), 48, gpu.Config)
			got, err := gpu.Logits(context.Background(), tokens)
			if err != nil {
				t.Fatal(err)
			}
			want, err := cpu.Logits(context.Background(), tokens)
			if err != nil {
				t.Fatal(err)
			}
			if e := relRMS(got, want); !(e <= tc.tol) {
				t.Fatalf("relRMS %.3g, want ≤ %g", e, tc.tol)
			}
			vocab, ties := gpu.Config.Vocab, 0
			for p := range tokens {
				g, w := got[p*vocab:(p+1)*vocab], want[p*vocab:(p+1)*vocab]
				ga, wa := argmax(g), argmax(w)
				if ga == wa {
					continue
				}
				var diff float64
				for i := range g {
					diff = max(diff, math.Abs(float64(g[i]-w[i])))
				}
				if float64(w[wa]-w[ga]) > 8*diff {
					t.Fatalf("position %d: GPU argmax %d, CPU %d (CPU logits %g vs %g, backends differ by ≤ %.3g)", p, ga, wa, w[wa], w[ga], diff)
				}
				ties++
			}
			t.Logf("relRMS %.3g; %d of %d argmaxes differ at near-ties", relRMS(got, want), ties, len(tokens))
		})
	}
}

// randomTokens returns n token ids of the vocabulary other than the mask.
func randomTokens(rng *rand.Rand, n int, c engine.Config) []int32 {
	out := make([]int32, n)
	for i := range out {
		for out[i] = int32(rng.IntN(c.Vocab)); out[i] == c.MaskID; {
			out[i] = int32(rng.IntN(c.Vocab))
		}
	}
	return out
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// relRMS is ‖got − want‖ / ‖want‖.
func relRMS(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(num / den)
}

// TestStep checks Step's choices against the statistics of Logits' rows
// (the token exactly but at near-ties, the probabilities to 1e-4
// relative: one model, two splits of the same products), that a pass over
// the span alone after a whole pass gives the same choices while the span
// is unchanged, and that two canvases in one Step give what each gives
// alone.
func TestStep(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []modelCase{modelCaseNamed("tiny llada F32"), modelCaseNamed("tiny dream BF16")} {
		t.Run(tc.name, func(t *testing.T) {
			m := loadGPU(t, tc.path(t, dir))
			c := m.Config
			shift := 0
			if c.ShiftLogits {
				shift = 1
			}
			rng := rand.New(rand.NewPCG(10, 10))
			tokens := randomTokens(rng, 40, c)
			start, n := 10, 16
			for i := start; i < start+n; i++ {
				tokens[i] = c.MaskID
			}
			var want []int
			for i := start; i < start+n; i++ {
				want = append(want, i-shift)
			}
			logits, err := m.Logits(context.Background(), tokens)
			if err != nil {
				t.Fatal(err)
			}
			ref := make([]Choice, len(want))
			for k, row := range want {
				s := hostStats(logits[row*c.Vocab:(row+1)*c.Vocab], c.MaskID)
				if ref[k], err = choiceOf(s[:]); err != nil {
					t.Fatal(err)
				}
			}

			a, b := newCanvas(t, m, tokens), newCanvas(t, m, tokens[:33])
			whole := step(t, m, Pass{Canvas: a, Lo: 0, Hi: len(tokens), Want: want})[0]
			sameChoices(t, "whole pass", whole, ref)
			span := step(t, m, Pass{Canvas: a, Lo: start - shift, Hi: start + n, Want: want})[0]
			sameChoices(t, "span pass", span, ref)

			alone := step(t, m, Pass{Canvas: b, Lo: 0, Hi: b.Len(), Want: []int{0, 32}})[0]
			both := step(t, m, Pass{Canvas: a, Lo: start - shift, Hi: start + n, Want: want},
				Pass{Canvas: b, Lo: 0, Hi: b.Len(), Want: []int{0, 32}})
			sameChoices(t, "batched span pass", both[0], ref)
			sameChoices(t, "batched whole pass", both[1], alone)
		})
	}
}

func newCanvas(t testing.TB, m *Model, tokens []int32) *Canvas {
	t.Helper()
	c, err := m.NewCanvas(tokens)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func step(t testing.TB, m *Model, passes ...Pass) [][]Choice {
	t.Helper()
	out, err := m.Step(context.Background(), passes)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range passes {
		if len(out[i]) != len(p.Want) {
			t.Fatalf("pass %d: %d choices for %d wanted rows", i, len(out[i]), len(p.Want))
		}
	}
	return out
}

// sameChoices fails t unless got and want agree: the same tokens, except
// where want's top two are within 1e-3 of each other, and probabilities
// within 1e-4 relative.
func sameChoices(t *testing.T, what string, got, want []Choice) {
	t.Helper()
	for i := range want {
		g, w := got[i], want[i]
		if g.Token != w.Token && w.Prob-w.SecondProb > 1e-3*w.Prob {
			t.Fatalf("%s: row %d: token %d, want %d (probability %g, runner-up %g)", what, i, g.Token, w.Token, w.Prob, w.SecondProb)
		}
		if g.Token == w.Token && (math.Abs(g.Prob-w.Prob) > 1e-4*w.Prob || math.Abs(g.NegEntropy-w.NegEntropy) > 1e-4*math.Abs(w.NegEntropy)) {
			t.Fatalf("%s: row %d: %+v, want %+v", what, i, g, w)
		}
	}
}

// TestStepErrors checks that Step and the canvas refuse what does not fit.
func TestStepErrors(t *testing.T) {
	m := loadGPU(t, writeModel(t, t.TempDir(), preset("tiny", engine.ArchLLaDA, gguf.TypeF32)))
	tokens := randomTokens(rand.New(rand.NewPCG(12, 12)), 20, m.Config)
	fresh, filled := newCanvas(t, m, tokens), newCanvas(t, m, tokens)
	step(t, m, Pass{Canvas: filled, Lo: 0, Hi: 20})
	for _, tt := range []struct {
		name   string
		passes []Pass
	}{
		{"no passes", nil},
		{"part of a canvas no whole pass ran", []Pass{{Canvas: fresh, Lo: 5, Hi: 10}}},
		{"rows beyond the canvas", []Pass{{Canvas: filled, Lo: 5, Hi: 21}}},
		{"empty rows", []Pass{{Canvas: filled, Lo: 5, Hi: 5}}},
		{"wanted row outside the rows", []Pass{{Canvas: filled, Lo: 5, Hi: 10, Want: []int{10}}}},
		{"one canvas twice", []Pass{{Canvas: filled, Lo: 0, Hi: 20}, {Canvas: filled, Lo: 0, Hi: 20}}},
		{"no canvas", []Pass{{Lo: 0, Hi: 1}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := m.Step(context.Background(), tt.passes); !errors.Is(err, ErrBadInput) {
				t.Fatalf("Step: %v, want ErrBadInput", err)
			}
		})
	}
	t.Run("token outside the vocabulary", func(t *testing.T) {
		if _, err := m.NewCanvas([]int32{1, int32(m.Config.Vocab)}); !errors.Is(err, ErrBadInput) {
			t.Fatalf("NewCanvas: %v, want ErrBadInput", err)
		}
		if err := filled.SetToken(3, -1); !errors.Is(err, ErrBadInput) {
			t.Fatalf("SetToken: %v, want ErrBadInput", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := m.Step(ctx, []Pass{{Canvas: filled, Lo: 0, Hi: 20}}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Step: %v, want context.Canceled", err)
		}
	})
}

// TestGreedyDenoise checks greedy denoising on the GPU against the engine's
// on the CPU: the same tokens for one span, LLaDA's block schedule with one
// commit per step, with and without the prefix/suffix cache. The loop below
// is the engine's run for those options (engine/infill.go); a different
// token is an error unless the GPU saw a near-tie (two positions' scores,
// or a position's top two probabilities, within 1e-3 relative) on its way.
func TestGreedyDenoise(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []modelCase{modelCaseNamed("tiny llada F32"), modelCaseNamed("qwen2.5-0.5b dream BF16")} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path(t, dir)
			gpu, cpu := loadGPU(t, path), loadCPU(t, path, tc.spec.Type)
			rng := rand.New(rand.NewPCG(13, 13))
			prefix, suffix := randomTokens(rng, 20, gpu.Config), randomTokens(rng, 12, gpu.Config)
			canvasPrefix := prefix
			if bos := cpu.Tokenizer.BOS(); bos >= 0 && cpu.Tokenizer.AddBOS() {
				canvasPrefix = append([]int32{bos}, prefix...)
			}
			n := 12
			for _, cache := range []bool{false, true} {
				t.Run(fmt.Sprintf("cache=%v", cache), func(t *testing.T) {
					opt := engine.Options{Lengths: []int{n}, Steps: n, Schedule: engine.ScheduleBlocks, EndAnywhere: true, Cache: cache}
					cands, err := cpu.Denoise(context.Background(), prefix, suffix, opt, nil)
					if err != nil {
						t.Fatal(err)
					}
					got, nearTie := greedy(t, gpu, canvasPrefix, suffix, n, cache)
					if want := cands[0].Tokens; !slices.Equal(got, want) {
						if !nearTie {
							t.Fatalf("GPU tokens %v, CPU %v", got, want)
						}
						t.Logf("GPU tokens %v, CPU %v: they part at a near-tie", got, want)
					}
				})
			}
		})
	}
}

// modelCaseNamed returns the case of modelCases called name.
func modelCaseNamed(name string) modelCase {
	for _, c := range modelCases {
		if c.name == name {
			return c
		}
	}
	panic("no model case " + name)
}

// greedy denoises a span of n masks between prefix and suffix with
// engine.Options{Steps: n, Schedule: ScheduleBlocks, EndAnywhere: true,
// Cache: cache}, as engine's run does, and returns the span's tokens and
// whether a near-tie was met.
func greedy(t *testing.T, m *Model, prefix, suffix []int32, n int, cache bool) ([]int32, bool) {
	c := m.Config
	shift := 0
	if c.ShiftLogits {
		shift = 1
	}
	tokens := slices.Concat(prefix, slices.Repeat([]int32{c.MaskID}, n), suffix)
	canvas := newCanvas(t, m, tokens)
	start := len(prefix)
	masked := slices.Repeat([]bool{true}, n)
	nearTie := false
	for s := 0; s < n; s++ {
		var cand, want []int
		for i, mk := range masked {
			if mk {
				cand = append(cand, i)
				want = append(want, start+i-shift)
			}
		}
		p := Pass{Canvas: canvas, Lo: 0, Hi: len(tokens), Want: want}
		if cache && s > 0 {
			p.Lo, p.Hi = start-shift, start+n
		}
		choices := step(t, m, p)[0]
		order := make([]int, len(cand)) // indices into cand, most confident first
		for k := range order {
			order[k] = k
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(choices[b].Prob, choices[a].Prob) })
		commit := 1
		if s == n-1 {
			commit = len(order)
		} else if choices[order[0]].Prob-choices[order[1]].Prob < 1e-3*choices[order[0]].Prob {
			nearTie = true // which position commits is a near-tie
		}
		for _, k := range order[:commit] {
			if ch := choices[k]; ch.Prob-ch.SecondProb < 1e-3*ch.Prob {
				nearTie = true // which token it takes is a near-tie
			}
			i := cand[k]
			masked[i] = false
			if err := canvas.SetToken(start+i, choices[k].Token); err != nil {
				t.Fatal(err)
			}
		}
	}
	return canvas.Tokens()[start : start+n], nearTie
}

// TestEngineOnDevice runs the engine's own denoising with its forwards on
// the device (engine.Model.Accelerate(m.Accelerator())) and wants the CPU
// engine's tokens: every schedule and score, the cache on and off, two
// spans batched. The tiny F32 model's choices are far from ties at this
// seed (TestGreedyDenoise checks near-ties for the larger model).
func TestEngineOnDevice(t *testing.T) {
	tc := modelCaseNamed("tiny llada F32")
	path := tc.path(t, t.TempDir())
	gpu, cpu := loadGPU(t, path), loadCPU(t, path, tc.spec.Type)
	onDev := loadCPU(t, path, tc.spec.Type)
	onDev.Accelerate(gpu.Accelerator())
	rng := rand.New(rand.NewPCG(21, 21))
	prefix, suffix := randomTokens(rng, 20, gpu.Config), randomTokens(rng, 12, gpu.Config)
	// Every schedule with the cache, the scores and the cache off on one
	// schedule: the emulation is slow.
	type setting struct {
		sched engine.Schedule
		score engine.Score
		cache bool
	}
	settings := []setting{
		{engine.ScheduleTimestep, engine.ScoreConfidence, true}, {engine.ScheduleBlocks, engine.ScoreConfidence, true},
		{engine.ScheduleThreshold, engine.ScoreConfidence, true}, {engine.ScheduleLeftToRight, engine.ScoreConfidence, true},
		{engine.ScheduleBlocks, engine.ScoreMargin, true}, {engine.ScheduleBlocks, engine.ScoreEntropy, true},
		{engine.ScheduleBlocks, engine.ScoreConfidence, false},
	}
	for _, st := range settings {
		t.Run(fmt.Sprintf("%s/%s/cache=%v", st.sched, st.score, st.cache), func(t *testing.T) {
			opt := engine.Options{Lengths: []int{6, 10}, Steps: 5, Schedule: st.sched, Score: st.score, BlockSize: 4, Cache: st.cache, Threshold: 0.2}
			want, err := cpu.Denoise(context.Background(), prefix, suffix, opt, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := onDev.Denoise(context.Background(), prefix, suffix, opt, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if !slices.Equal(got[i].Tokens, want[i].Tokens) || got[i].Steps != want[i].Steps {
					t.Errorf("span %d: device %v in %d steps, CPU %v in %d", i, got[i].Tokens, got[i].Steps, want[i].Tokens, want[i].Steps)
				}
			}
		})
	}
}
