package train

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dfill/dfill/engine"
	"github.com/dfill/dfill/engine/gguf"
	"github.com/dfill/dfill/engine/kernel"
	"github.com/dfill/dfill/engine/tokenizer"
)

// Options configure a training run.
type Options struct {
	// Shape is the model's shape; Shape.Vocab is taken from the vocabulary.
	Shape Shape
	// Name is the model's general.name in the exported GGUF.
	Name string
	// Batch is the number of sequences (of Shape.Seq tokens) per step.
	Batch int
	// Steps is the number of optimizer steps of the whole run.
	Steps int
	// LR is the peak learning rate; MinLR the rate the cosine decays to
	// (0: LR/10); Warmup the number of warm-up steps.
	LR, MinLR float64
	Warmup    int
	// WeightDecay is AdamW's decoupled decay, applied to matrices only.
	WeightDecay float64
	// Clip caps the gradient's global L2 norm (0: no clipping).
	Clip float64
	// SpanFrac is the share of sequences that mask one contiguous span
	// padded with EOS (infill examples) instead of random positions;
	// MaxSpan is the longest such span (0: 64).
	SpanFrac float64
	MaxSpan  int
	// LineFrac is the share of sequences that are line infill examples: a
	// span of 16 or 32 positions holding the rest of one to three lines,
	// then EOS, as the completer asks for a line (sampler.fillLine).
	LineFrac float64
	// Seed seeds the initial weights and the data order and masking.
	Seed uint64
	// Threads is the number of CPU threads (0: 1).
	Threads int
	// EvalEvery runs the held-out evaluation every so many steps (0: only
	// at the end); EvalBatches is its number of batches (0: 4).
	EvalEvery, EvalBatches int
	// CheckpointEvery writes a checkpoint to OutDir every so many steps
	// (0: only at the end and when the run is cancelled).
	CheckpointEvery int
	// OutDir is where checkpoints go ("": none).
	OutDir string
	// LogEvery prints a progress line to Progress every so many steps
	// (0: 10). Progress nil prints nothing.
	LogEvery int
	Progress io.Writer
}

// Data is a tokenized corpus: documents, each followed by EOS.
type Data struct {
	Train []int32 // what the model learns from
	Eval  []int32 // the held-out packages, for evaluation only
}

// Trainer trains one model. It is not safe for concurrent use.
type Trainer struct {
	opt   Options
	vocab tokenizer.Config
	model *Model[float32]
	optim *adamW[float32]
	pool  *kernel.Pool
	pcg   *rand.PCG
	rng   *rand.Rand
	train sampler
	evals []Batch
	batch Batch
	step  int

	// LastEval is the held-out loss of the last evaluation (NaN before).
	LastEval float64
}

// CheckpointName is the checkpoint's file name in Options.OutDir.
const CheckpointName = "checkpoint.gguf"

// New returns a trainer for a fresh model of opt.Shape over vocab and data.
func New(opt Options, vocab tokenizer.Config, data Data) (*Trainer, error) {
	if vocab.Mask < 0 || vocab.EOS < 0 {
		return nil, fmt.Errorf("%w: the vocabulary needs a mask and an EOS token", ErrBadOptions)
	}
	if opt.Shape.Vocab != 0 && opt.Shape.Vocab != len(vocab.Tokens) {
		return nil, fmt.Errorf("%w: shape has a vocabulary of %d, the tokenizer %d", ErrBadOptions, opt.Shape.Vocab, len(vocab.Tokens))
	}
	opt.Shape.Vocab = len(vocab.Tokens)
	if opt.Batch < 1 || opt.Steps < 1 || !(opt.LR > 0) || opt.Warmup < 0 || opt.SpanFrac < 0 || opt.LineFrac < 0 || opt.SpanFrac+opt.LineFrac > 1 {
		return nil, fmt.Errorf("%w: batch %d, steps %d, lr %g, warmup %d, span fraction %g, line fraction %g", ErrBadOptions, opt.Batch, opt.Steps, opt.LR, opt.Warmup, opt.SpanFrac, opt.LineFrac)
	}
	if len(data.Train) < opt.Shape.Seq {
		return nil, fmt.Errorf("%w: %d training tokens, fewer than one sequence of %d", ErrBadOptions, len(data.Train), opt.Shape.Seq)
	}
	if opt.MinLR == 0 {
		opt.MinLR = opt.LR / 10
	}
	if opt.MaxSpan == 0 {
		opt.MaxSpan = 64
	}
	if opt.EvalBatches == 0 {
		opt.EvalBatches = 4
	}
	if opt.LogEvery == 0 {
		opt.LogEvery = 10
	}
	pool := kernel.NewPool(opt.Threads)
	m, err := NewModel[float32](opt.Shape, pool, opt.Seed)
	if err != nil {
		pool.Close()
		return nil, err
	}
	opt.Shape = m.Shape
	t := &Trainer{opt: opt, vocab: vocab, model: m, optim: newAdamW[float32](m.Shape, opt.WeightDecay), pool: pool,
		pcg: rand.NewPCG(opt.Seed, 0xda7a), LastEval: math.NaN()}
	t.rng = rand.New(t.pcg)
	t.train = sampler{tokens: data.Train, seq: m.Shape.Seq, mask: vocab.Mask, eos: vocab.EOS,
		spanFrac: opt.SpanFrac, maxSpan: opt.MaxSpan, eps: 1e-3}
	if opt.LineFrac > 0 {
		t.train.lineFrac, t.train.newline = opt.LineFrac, newlineTokens(vocab)
	}
	if len(data.Eval) >= m.Shape.Seq {
		// The evaluation batches are drawn once, from their own seed and
		// with a fixed share of infill spans, so every evaluation (and a
		// resumed run's, whatever its --span-frac) scores the same examples.
		ev := t.train
		ev.tokens = data.Eval
		ev.spanFrac, ev.lineFrac = EvalSpanFrac, 0
		rng := rand.New(rand.NewPCG(opt.Seed, 0xe7a1))
		t.evals = make([]Batch, opt.EvalBatches)
		for i := range t.evals {
			ev.fill(&t.evals[i], opt.Batch, rng)
		}
	}
	return t, nil
}

// newlineTokens returns, for each token of vocab, whether its text holds a
// line break.
func newlineTokens(vocab tokenizer.Config) []bool {
	nl := make([]bool, len(vocab.Tokens))
	for id, tok := range vocab.Tokens {
		nl[id] = strings.Contains(tokenizer.DecodeBytes(tok), "\n")
	}
	return nl
}

// InitWeights sets the trainer's weights to ck's (a checkpoint, or a model
// read by LoadModel) and leaves its optimizer, step count and data order
// fresh: a new run that starts from trained weights. ck must have the
// trainer's shape and vocabulary.
func (t *Trainer) InitWeights(ck *Checkpoint) error {
	a, b := t.model.Shape, ck.Shape
	a.Eps, b.Eps = float64(float32(a.Eps)), float64(float32(b.Eps))
	if a != b {
		return fmt.Errorf("%w: initial weights of shape %+v, trainer %+v", ErrBadOptions, ck.Shape, t.model.Shape)
	}
	if !slices.Equal(t.vocab.Tokens, ck.Vocab.Tokens) {
		return fmt.Errorf("%w: the initial weights' vocabulary differs from the trainer's", ErrBadOptions)
	}
	copy(t.model.W.Data, ck.w)
	return nil
}

// EvalSpanFrac is the share of the held-out evaluation's sequences that
// mask one infill span, whatever the training mix.
const EvalSpanFrac = 0.5

// Close stops the trainer's threads.
func (t *Trainer) Close() { t.pool.Close() }

// Model is the model being trained.
func (t *Trainer) Model() *Model[float32] { return t.model }

// StepCount is the number of steps taken.
func (t *Trainer) StepCount() int { return t.step }

// StepStats describes one optimizer step.
type StepStats struct {
	Loss     float64 // the batch's masked-diffusion loss
	GradNorm float64 // before clipping
	LR       float64
	Tokens   int // tokens the step ran through the model
}

// Step trains on one batch.
func (t *Trainer) Step() (StepStats, error) {
	o := t.opt
	lr := schedule(t.step, o.Steps, o.Warmup, o.LR, o.MinLR)
	t.train.fill(&t.batch, o.Batch, t.rng)
	loss, err := t.model.Loss(&t.batch, true)
	if err != nil {
		return StepStats{}, err
	}
	norm := gradNorm(t.model.G.Data)
	if math.IsNaN(loss) || math.IsInf(loss, 0) || math.IsNaN(norm) || math.IsInf(norm, 0) {
		return StepStats{}, fmt.Errorf("train: step %d: loss %g, gradient norm %g: the run diverged (lower --lr?)", t.step, loss, norm)
	}
	scale := 1.0
	if o.Clip > 0 && norm > o.Clip {
		scale = o.Clip / norm
	}
	t.optim.update(t.pool, t.model.W, t.model.G, scale, lr)
	t.step++
	return StepStats{Loss: loss, GradNorm: norm, LR: lr, Tokens: o.Batch * o.Shape.Seq}, nil
}

// Eval returns the mean loss over the held-out batches, NaN without
// held-out data.
func (t *Trainer) Eval() (float64, error) {
	if len(t.evals) == 0 {
		return math.NaN(), nil
	}
	var sum float64
	for i := range t.evals {
		l, err := t.model.Loss(&t.evals[i], false)
		if err != nil {
			return 0, err
		}
		sum += l
	}
	t.LastEval = sum / float64(len(t.evals))
	return t.LastEval, nil
}

// Run trains until Options.Steps, printing progress, evaluating and
// writing checkpoints as the options ask. When ctx is cancelled it writes
// a checkpoint (with OutDir set) and returns ctx's error.
func (t *Trainer) Run(ctx context.Context) error {
	o := t.opt
	start, startStep := time.Now(), t.step
	var lossSum float64
	var lossN, tokens int
	for t.step < o.Steps {
		if err := ctx.Err(); err != nil {
			if o.OutDir != "" {
				if cerr := t.SaveCheckpoint(filepath.Join(o.OutDir, CheckpointName)); cerr != nil {
					return fmt.Errorf("%w (and the checkpoint failed: %v)", err, cerr)
				}
			}
			return err
		}
		st, err := t.Step()
		if err != nil {
			return err
		}
		lossSum += st.Loss
		lossN++
		tokens += st.Tokens
		last := t.step == o.Steps
		evaluated := (o.EvalEvery > 0 && t.step%o.EvalEvery == 0) || last
		if evaluated {
			if _, err := t.Eval(); err != nil {
				return err
			}
		}
		if o.Progress != nil && evaluated && !(t.step%o.LogEvery == 0 || last) {
			fmt.Fprintf(o.Progress, "step %d/%d  eval %.4f\n", t.step, o.Steps, t.LastEval)
		}
		if o.Progress != nil && (t.step%o.LogEvery == 0 || last) {
			el := time.Since(start)
			done := t.step - startStep
			left := time.Duration(float64(el) / float64(done) * float64(o.Steps-t.step))
			line := fmt.Sprintf("step %d/%d  loss %.4f  lr %.2e  |g| %.2f  %.0f tok/s  elapsed %s  left %s",
				t.step, o.Steps, lossSum/float64(lossN), st.LR, st.GradNorm, float64(tokens)/el.Seconds(),
				el.Round(time.Second), left.Round(time.Second))
			if evaluated && !math.IsNaN(t.LastEval) {
				line += fmt.Sprintf("  eval %.4f", t.LastEval)
			}
			fmt.Fprintln(o.Progress, line)
			lossSum, lossN = 0, 0
		}
		if o.OutDir != "" && ((o.CheckpointEvery > 0 && t.step%o.CheckpointEvery == 0) || last) {
			if err := t.SaveCheckpoint(filepath.Join(o.OutDir, CheckpointName)); err != nil {
				return err
			}
		}
	}
	return nil
}

// EngineConfig is the engine's description of the model being trained.
func (t *Trainer) EngineConfig() engine.Config {
	name := t.opt.Name
	if name == "" {
		s := t.model.Shape
		name = fmt.Sprintf("dfill-llada-%dx%d", s.Layers, s.Dim)
	}
	return t.model.Shape.EngineConfig(name, t.vocab.Mask)
}

// Export writes the model as a GGUF that engine.Load runs, its matrices
// stored as typ (F32, F16, Q8_0, ...).
func (t *Trainer) Export(w io.Writer, typ gguf.Type) error {
	return engine.WriteModel(w, t.EngineConfig(), t.vocab, Tensors(t.model.Shape, t.model.W), typ,
		gguf.KV{Key: "dfill.train.steps", Value: gguf.Val(uint64(t.step))})
}

// Tensors returns the weights in p under the engine's GGUF tensor names,
// the fused QKV and gate-up matrices split into the engine's tensors. The
// slices alias p.
func Tensors[T Float](s Shape, p *Params[T]) map[string][]T {
	hd := s.HeadDim()
	qDim, kvDim := s.Heads*hd, s.KVHeads*hd
	ts := map[string][]T{"token_embd.weight": p.Embd, "output_norm.weight": p.OutNorm}
	if !s.Tied {
		ts["output.weight"] = p.Out
	}
	for l, L := range p.Layers {
		pre := "blk." + strconv.Itoa(l) + "."
		ts[pre+"attn_norm.weight"] = L.AttnNorm
		ts[pre+"attn_q.weight"] = L.QKV[:qDim*s.Dim]
		ts[pre+"attn_k.weight"] = L.QKV[qDim*s.Dim : (qDim+kvDim)*s.Dim]
		ts[pre+"attn_v.weight"] = L.QKV[(qDim+kvDim)*s.Dim:]
		ts[pre+"attn_output.weight"] = L.AttnOut
		ts[pre+"ffn_norm.weight"] = L.FFNNorm
		ts[pre+"ffn_gate.weight"] = L.GateUp[:s.FFN*s.Dim]
		ts[pre+"ffn_up.weight"] = L.GateUp[s.FFN*s.Dim:]
		ts[pre+"ffn_down.weight"] = L.Down
	}
	return ts
}
