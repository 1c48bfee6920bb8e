package train

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dfill/dfill/engine"
	"github.com/dfill/dfill/engine/gguf"
	"github.com/dfill/dfill/engine/tokenizer"
)

// tinyCorpus is repetitive Go: a model of a few thousand parameters learns
// it in a few hundred steps.
func tinyCorpus() []string {
	var texts []string
	for i := range 40 {
		texts = append(texts, fmt.Sprintf("package p%d\n\nfunc add%d(a, b int) int {\n\treturn a + b\n}\n", i%4, i%7))
	}
	return texts
}

// tinyData trains a 300-token vocabulary on tinyCorpus and tokenizes it;
// the last 5 texts are held out.
func tinyData(t *testing.T) (tokenizer.Config, Data) {
	t.Helper()
	texts := tinyCorpus()
	vocab, err := TrainVocab(texts, 300, 0)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.New(vocab)
	if err != nil {
		t.Fatal(err)
	}
	return vocab, Data{Train: Tokenize(tok, texts[:35], 2), Eval: Tokenize(tok, texts[35:], 2)}
}

func tinyOptions() Options {
	return Options{
		Shape: Shape{Layers: 2, Dim: 32, Heads: 4, KVHeads: 2, FFN: 64, Seq: 32, Tied: true},
		Batch: 8, Steps: 5, LR: 3e-3, Warmup: 2, WeightDecay: 0.1, Clip: 1, SpanFrac: 0.5, MaxSpan: 12,
		Seed: 1, Threads: 2,
	}
}

// TestTrainingLowersLoss trains the tiny model for 300 steps: the held-out
// loss must fall by more than 40% (from ln(vocab) ≈ 5.4 to about 2.7; the
// masked-diffusion loss has a floor well above 0 where t is near 1 and
// the model must guess most of a sequence).
func TestTrainingLowersLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for a few seconds")
	}
	vocab, data := tinyData(t)
	opt := tinyOptions()
	opt.Steps, opt.Warmup = 300, 20
	tr, err := New(opt, vocab, data)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	before, err := tr.Eval()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	tr.opt.Progress, tr.opt.LogEvery = &out, 100
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := tr.LastEval
	t.Logf("held-out loss %.3f → %.3f\n%s", before, after, out.String())
	if !(after < 0.6*before) {
		t.Errorf("held-out loss went from %.3f to %.3f; want a fall of more than 40%%", before, after)
	}
	if lines := strings.Count(out.String(), "\n"); lines != 3 || !strings.Contains(out.String(), "tok/s") {
		t.Errorf("progress output:\n%s\nwant 3 lines with tok/s", out.String())
	}
}

// TestExportMatchesEngine trains 5 steps, exports F32 and F16 GGUFs and
// checks that engine.Load runs them to the trainer's logits: the same
// architecture, RoPE order, tied or untied output and tensor layout.
// Tolerance: 1e-4 of the largest logit for F32 (float32 rounding in a
// different order), 2e-2 for F16 weights.
func TestExportMatchesEngine(t *testing.T) {
	vocab, data := tinyData(t)
	tests := []struct {
		name string
		tied bool
		typ  gguf.Type
		tol  float64
	}{
		{"tied f32", true, gguf.TypeF32, 1e-4},
		{"untied f32", false, gguf.TypeF32, 1e-4},
		{"tied f16", true, gguf.TypeF16, 2e-2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := tinyOptions()
			opt.Shape.Tied = tt.tied
			tr, err := New(opt, vocab, data)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if err := tr.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "model.gguf")
			var buf bytes.Buffer
			if err := tr.Export(&buf, tt.typ); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := engine.Load(path, engine.LoadOptions{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.Config.Arch != engine.ArchLLaDA || m.Config.ShiftLogits || m.Config.MaskID != vocab.Mask {
				t.Errorf("config %+v", m.Config)
			}
			tokens := m.Tokenizer.Encode("func add(a, b int) int {\n\treturn a + b\n}")
			tokens[3], tokens[5] = vocab.Mask, vocab.Mask
			want, err := tr.Model().Logits(tokens)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Logits(context.Background(), tokens)
			if err != nil {
				t.Fatal(err)
			}
			var scale float64
			for _, v := range want {
				scale = max(scale, math.Abs(float64(v)))
			}
			for i := range want {
				if d := math.Abs(float64(got[i] - want[i])); d > tt.tol*scale {
					t.Fatalf("logit %d (position %d): engine %g, trainer %g", i, i/len(vocab.Tokens), got[i], want[i])
				}
			}
		})
	}
}

// TestResume checks that 3 steps, a checkpoint, and 3 more steps in a new
// trainer give bitwise the weights of 6 steps in one go.
func TestResume(t *testing.T) {
	vocab, data := tinyData(t)
	opt := tinyOptions()
	opt.Steps = 6
	whole, err := New(opt, vocab, data)
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Close()
	if err := whole.Run(context.Background()); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	first, err := New(opt, vocab, data)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	for range 3 {
		if _, err := first.Step(); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, CheckpointName)
	if err := first.SaveCheckpoint(path); err != nil {
		t.Fatal(err)
	}
	ck, err := LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Step != 3 || !slices.Equal(ck.Vocab.Tokens, vocab.Tokens) || ck.Vocab.Mask != vocab.Mask || !slices.Equal(ck.Vocab.Merges, vocab.Merges) {
		t.Fatalf("checkpoint step %d, vocabulary differs: %v", ck.Step, !slices.Equal(ck.Vocab.Tokens, vocab.Tokens))
	}
	opt2 := opt
	opt2.Shape = ck.Shape
	second, err := New(opt2, ck.Vocab, data)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if err := second.Restore(ck); err != nil {
		t.Fatal(err)
	}
	if err := second.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if second.StepCount() != 6 {
		t.Errorf("resumed run ended at step %d", second.StepCount())
	}
	if !slices.Equal(second.Model().W.Data, whole.Model().W.Data) {
		t.Error("resumed weights differ from an uninterrupted run's")
	}
	if second.LastEval != whole.LastEval {
		t.Errorf("eval loss %g after resuming, %g without", second.LastEval, whole.LastEval)
	}
}

// TestSampler checks the masking: masked inputs are the mask token with a
// positive weight, everything else is the target with weight 0; infill
// spans end in EOS; and the weights are normalised so their expected sum
// is 1 (the mean over many batches is within 5%).
func TestSampler(t *testing.T) {
	tokens := make([]int32, 1000)
	for i := range tokens {
		tokens[i] = int32(i % 50)
	}
	const mask, eos = 98, 99
	tests := []struct {
		name     string
		spanFrac float64
	}{
		{"random", 0},
		{"spans", 1},
		{"mixed", 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sampler{tokens: tokens, seq: 64, mask: mask, eos: eos, spanFrac: tt.spanFrac, maxSpan: 16, eps: 1e-3}
			rng := rand.New(rand.NewPCG(1, 2))
			var b Batch
			var sum float64
			eosSeen := 0
			const batches = 400
			for range batches {
				s.fill(&b, 4, rng)
				for i, w := range b.Weights {
					sum += float64(w)
					switch {
					case w > 0 && b.Tokens[i] != mask:
						t.Fatalf("position %d weighs %g but is not masked", i, w)
					case w == 0 && b.Tokens[i] != b.Targets[i]:
						t.Fatalf("position %d is changed but weighs 0", i)
					}
					if b.Targets[i] == eos {
						eosSeen++
					}
				}
			}
			if mean := sum / batches; math.Abs(mean-1) > 0.05 {
				t.Errorf("mean weight sum %.3f, want 1", mean)
			}
			if (eosSeen > 0) != (tt.spanFrac > 0) {
				t.Errorf("%d EOS targets with span fraction %g", eosSeen, tt.spanFrac)
			}
		})
	}
}

func TestReadCorpus(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"a/a.go":              "package a",
		"a/testdata/x.go":     "package x",
		"strings/s.go":        "package strings",
		"strings/inner/i.go":  "package inner",
		"encoding/csv/c.go":   "package csv",
		"b/readme.txt":        "not go",
		"_skip/s.go":          "package skip",
		"container/list/l.go": "package list",
	}
	for name, text := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := ReadCorpus(root, HeldOut)
	if err != nil {
		t.Fatal(err)
	}
	wantTrain := []string{"package a", "package inner"}
	wantEval := []string{"package list", "package csv", "package strings"}
	if !slices.Equal(c.Train, wantTrain) || !slices.Equal(c.Eval, wantEval) {
		t.Errorf("train %q, eval %q; want %q, %q", c.Train, c.Eval, wantTrain, wantEval)
	}
	if _, err := ReadCorpus(filepath.Join(root, "b"), nil); err == nil {
		t.Error("a tree without .go files: no error")
	}
}

// TestCancelWritesCheckpoint cancels a run after its second step: Run
// returns the context's error and leaves a checkpoint that resumes at
// step 2.
func TestCancelWritesCheckpoint(t *testing.T) {
	vocab, data := tinyData(t)
	opt := tinyOptions()
	opt.OutDir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opt.Progress, opt.LogEvery = cancelAfter{cancel, 2}.writer(), 1
	tr, err := New(opt, vocab, data)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Run(ctx); err != context.Canceled {
		t.Fatalf("Run: %v, want context.Canceled", err)
	}
	ck, err := LoadCheckpoint(filepath.Join(opt.OutDir, CheckpointName))
	if err != nil {
		t.Fatal(err)
	}
	if ck.Step != 2 {
		t.Errorf("checkpoint at step %d, want 2", ck.Step)
	}
}

// cancelAfter cancels a context when the n-th progress line is written.
type cancelAfter struct {
	cancel context.CancelFunc
	n      int
}

func (c cancelAfter) writer() *lineCounter { return &lineCounter{c: c} }

type lineCounter struct {
	c     cancelAfter
	lines int
}

func (w *lineCounter) Write(p []byte) (int, error) {
	w.lines += bytes.Count(p, []byte("\n"))
	if w.lines >= w.c.n {
		w.c.cancel()
	}
	return len(p), nil
}

// TestEvalIndependentOfSpanMix checks that the held-out examples do not
// depend on the training mix, so runs with different --span-frac (or a run
// resumed with another) report comparable held-out losses.
func TestEvalIndependentOfSpanMix(t *testing.T) {
	vocab, data := tinyData(t)
	var evals [][]Batch
	for _, frac := range []float64{0.1, 0.9} {
		opt := tinyOptions()
		opt.SpanFrac = frac
		tr, err := New(opt, vocab, data)
		if err != nil {
			t.Fatal(err)
		}
		evals = append(evals, tr.evals)
		tr.Close()
	}
	if len(evals[0]) == 0 || len(evals[0]) != len(evals[1]) {
		t.Fatalf("%d and %d evaluation batches", len(evals[0]), len(evals[1]))
	}
	for i := range evals[0] {
		a, b := evals[0][i], evals[1][i]
		if !slices.Equal(a.Tokens, b.Tokens) || !slices.Equal(a.Targets, b.Targets) || !slices.Equal(a.Weights, b.Weights) {
			t.Fatalf("evaluation batch %d differs between span mixes 0.1 and 0.9", i)
		}
	}
}

// TestFillLine checks line infill examples on text whose lines are
// "indent a b c newline" (token 9 a line break, tokens 1-3 the line's
// text): the span starts inside a line's text, holds the rest of one to
// three lines and then only EOS, and the text after the span resumes at a
// line break, exactly where the middle left off.
func TestFillLine(t *testing.T) {
	const nl, eos, mask = 9, 99, 98
	var tokens []int32
	for i := 0; len(tokens) < 4000; i++ {
		tokens = append(tokens, 7) // indentation
		for k := range 1 + i%5 {
			tokens = append(tokens, int32(1+k%3))
		}
		tokens = append(tokens, nl)
	}
	newline := make([]bool, 100)
	newline[nl] = true
	s := sampler{tokens: tokens, seq: 256, mask: mask, eos: eos, lineFrac: 1, newline: newline, eps: 1e-3}
	rng := rand.New(rand.NewPCG(3, 4))
	tgt := make([]int32, 256)
	for range 500 {
		off := rng.IntN(len(tokens) - 256)
		src := tokens[off:]
		lo, hi, ok := s.fillLine(tgt, src, rng)
		if !ok {
			t.Fatal("no line found in a window full of lines")
		}
		n := hi - lo
		if n != 16 && n != 32 {
			t.Fatalf("span of %d", n)
		}
		if !slices.Equal(tgt[:lo], src[:lo]) || src[lo] == nl || tgt[lo] == eos {
			t.Fatalf("span at %d: the prefix differs or the middle is empty: %v / %v / %v", lo, src[lo-3:lo+5], tgt[lo-3:lo+5], slices.Equal(tgt[:lo], src[:lo]))
		}
		m := lo
		for m < hi && tgt[m] != eos {
			m++
		}
		breaks := 0
		for j := lo; j < m; j++ {
			if tgt[j] != src[j] {
				t.Fatalf("middle differs from the text at %d", j)
			}
			if tgt[j] == nl {
				breaks++
			}
		}
		if breaks > 2 || src[m] != nl {
			t.Fatalf("middle of %d line breaks ends before token %d, want a line break", breaks, src[m])
		}
		for j := m; j < hi; j++ {
			if tgt[j] != eos {
				t.Fatalf("span position %d after the middle holds %d, want EOS", j, tgt[j])
			}
		}
		if !slices.Equal(tgt[hi:], src[m:m+256-hi]) {
			t.Fatal("the text after the span does not resume at the middle's end")
		}
	}
}

// TestInitWeightsFromModel exports a briefly trained model as F32, reads it
// back with LoadModel, and checks that a new trainer started from it has
// its weights exactly, with a fresh step count.
func TestInitWeightsFromModel(t *testing.T) {
	vocab, data := tinyData(t)
	opt := tinyOptions()
	first, err := New(opt, vocab, data)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if err := first.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.gguf")
	var buf bytes.Buffer
	if err := first.Export(&buf, gguf.TypeF32); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ck, err := LoadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	opt.Shape = ck.Shape
	opt.LineFrac = 0.5
	second, err := New(opt, ck.Vocab, data)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if err := second.InitWeights(ck); err != nil {
		t.Fatal(err)
	}
	if second.StepCount() != 0 || !slices.Equal(second.Model().W.Data, first.Model().W.Data) {
		t.Fatal("the started model's weights differ from the exported one's")
	}
	if _, err := second.Step(); err != nil {
		t.Fatal(err)
	}
}
