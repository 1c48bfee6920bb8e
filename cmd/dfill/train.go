package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/dfill/dfill/cmd/dfill/internal/cli"
	"github.com/dfill/dfill/engine/gguf"
	"github.com/dfill/dfill/engine/tokenizer"
	"github.com/dfill/dfill/engine/train"
)

// trainSummary is what `dfill train --json` prints when it is done.
type trainSummary struct {
	Out      string   `json:"out"`
	Steps    int      `json:"steps"`
	Params   int      `json:"params"`
	Vocab    int      `json:"vocab"`
	EvalLoss *float64 `json:"eval_loss,omitempty"` // absent without held-out data
	Seconds  float64  `json:"seconds"`
}

// trainFlags are the flags of `dfill train`.
type trainFlags struct {
	src          string
	vocabSize    int
	vocabMB      int
	layers       int
	dim          int
	heads        int
	kvHeads      int
	ffn          int
	seq          int
	untied       bool
	batch        int
	steps        int
	tokens       int64
	lr           float64
	minLR        float64
	warmup       int
	wd           float64
	clip         float64
	spanFrac     float64
	lineFrac     float64
	maxSpan      int
	seed         uint64
	threads      int
	outDir       string
	out          string
	typ          string
	name         string
	evalEvery    int
	ckEvery      int
	logEvery     int
	resume       bool
	initFrom     string
	measure      bool
	measureSteps int
	asJSON       bool
}

func trainCommand() *cli.Command {
	f := &trainFlags{}
	return &cli.Command{
		Name:    "train",
		Summary: "train a small llada diffusion model on a source tree and write a GGUF",
		Flags:   f.register,
		Run:     func(ctx context.Context, _ []string) error { return f.run(ctx) },
	}
}

func (f *trainFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.src, "src", "", "source `dir` to train on (default: $(go env GOROOT)/src)")
	fs.IntVar(&f.vocabSize, "vocab", 4096, "BPE vocabulary size, special tokens included")
	fs.IntVar(&f.vocabMB, "vocab-mb", 32, "MiB of source the vocabulary is learned from (0: all)")
	fs.IntVar(&f.layers, "layers", 4, "transformer blocks")
	fs.IntVar(&f.dim, "dim", 256, "embedding width")
	fs.IntVar(&f.heads, "heads", 4, "attention heads")
	fs.IntVar(&f.kvHeads, "kv-heads", 0, "key/value heads (0: as many as --heads)")
	fs.IntVar(&f.ffn, "ffn", 0, "feed-forward width (0: 8/3·dim rounded up to a multiple of 32)")
	fs.IntVar(&f.seq, "seq", 256, "sequence length in tokens")
	fs.BoolVar(&f.untied, "untied", false, "a separate output matrix instead of the embedding's transpose")
	fs.IntVar(&f.batch, "batch", 8, "sequences per step")
	fs.IntVar(&f.steps, "steps", 1000, "optimizer steps")
	fs.Int64Var(&f.tokens, "tokens", 0, "train on this many tokens instead of --steps (tokens / (batch·seq) steps)")
	fs.Float64Var(&f.lr, "lr", 1e-3, "peak learning rate")
	fs.Float64Var(&f.minLR, "min-lr", 0, "final learning rate of the cosine decay (0: lr/10)")
	fs.IntVar(&f.warmup, "warmup", 100, "linear warm-up steps")
	fs.Float64Var(&f.wd, "weight-decay", 0.1, "AdamW weight decay (matrices only)")
	fs.Float64Var(&f.clip, "clip", 1, "gradient-norm clipping (0: none)")
	fs.Float64Var(&f.spanFrac, "span-frac", 0.5, "share of sequences that mask one EOS-padded span (infill examples)")
	fs.Float64Var(&f.lineFrac, "line-frac", 0, "share of sequences that are line infill examples: the rest of 1-3 lines in a span of 16 or 32, EOS-padded")
	fs.IntVar(&f.maxSpan, "max-span", 64, "longest masked span, EOS padding included")
	fs.Uint64Var(&f.seed, "seed", 1, "seed for the weights, data order and masking")
	fs.IntVar(&f.threads, "threads", runtime.NumCPU(), "CPU threads")
	fs.StringVar(&f.outDir, "out-dir", "train-out", "`dir` for the checkpoint (and the model, without --out)")
	fs.StringVar(&f.out, "out", "", "final GGUF `path` (default: OUT-DIR/model.gguf)")
	fs.StringVar(&f.typ, "type", "q8_0", "matrix type of the exported model: f32, f16 or q8_0")
	fs.StringVar(&f.name, "name", "", "the model's general.name")
	fs.IntVar(&f.evalEvery, "eval-every", 200, "steps between held-out evaluations (0: only at the end)")
	fs.IntVar(&f.ckEvery, "checkpoint-every", 500, "steps between checkpoints (0: only at the end)")
	fs.IntVar(&f.logEvery, "log-every", 10, "steps between progress lines")
	fs.BoolVar(&f.resume, "resume", false, "continue from OUT-DIR/"+train.CheckpointName+" (its shape and vocabulary win over the flags)")
	fs.StringVar(&f.initFrom, "init", "", "start from the weights of this `model` (a GGUF dfill trained; its shape and vocabulary win over the flags), with a fresh optimizer and schedule")
	fs.BoolVar(&f.measure, "measure", false, "only time --measure-steps steps of this shape on random tokens and report throughput")
	fs.IntVar(&f.measureSteps, "measure-steps", 20, "steps --measure times")
	fs.BoolVar(&f.asJSON, "json", false, "print the result as JSON on stdout")
}

// run trains a model as the flags say and writes it, or with --measure
// only times a few steps.
func (f *trainFlags) run(ctx context.Context) error {
	opt, exportType, err := f.options()
	if err != nil {
		return err
	}
	if f.measure {
		return f.printThroughput(opt)
	}

	start := time.Now()
	logf := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Since(start).Round(time.Second), fmt.Sprintf(format, a...))
	}
	if err := os.MkdirAll(f.outDir, 0o755); err != nil {
		return err
	}
	out := f.out
	if out == "" {
		out = filepath.Join(f.outDir, "model.gguf")
	}
	ck, err := f.startingPoint(logf)
	if err != nil {
		return err
	}
	vocab, data, err := f.prepareData(ck, logf)
	if err != nil {
		return err
	}
	if ck != nil {
		opt.Shape = ck.Shape // the checkpoint's shape and vocabulary win over the flags
	} else {
		opt.Shape.Vocab = len(vocab.Tokens)
	}
	logf("%d training tokens, %d held-out tokens; %d steps of %d tokens", len(data.Train), len(data.Eval), opt.Steps, opt.Batch*opt.Shape.Seq)

	tr, err := f.train(ctx, opt, vocab, data, ck, logf)
	if err != nil {
		return err
	}
	defer tr.Close()
	if err := exportModel(tr, out, exportType); err != nil {
		return err
	}
	logf("wrote %s (held-out loss %.4f)", out, tr.LastEval)
	if f.asJSON {
		sum := trainSummary{Out: out, Steps: tr.StepCount(), Params: tr.Model().Shape.Params(),
			Vocab: len(vocab.Tokens), Seconds: time.Since(start).Seconds()}
		if l := tr.LastEval; !math.IsNaN(l) {
			sum.EvalLoss = &l
		}
		return cli.PrintJSON(sum)
	}
	return nil
}

// options returns the training options the flags give, and the matrix type
// of the exported model.
func (f *trainFlags) options() (train.Options, gguf.Type, error) {
	exportType, err := gguf.ParseType(f.typ)
	if err != nil || (exportType != gguf.TypeF32 && exportType != gguf.TypeF16 && exportType != gguf.TypeQ8_0) {
		return train.Options{}, 0, fmt.Errorf("--type %q: want f32, f16 or q8_0", f.typ)
	}
	kvHeads, ffn := f.kvHeads, f.ffn
	if kvHeads == 0 {
		kvHeads = f.heads
	}
	if ffn == 0 {
		ffn = (8*f.dim/3 + 31) / 32 * 32
	}
	opt := train.Options{
		Shape: train.Shape{Layers: f.layers, Dim: f.dim, Heads: f.heads, KVHeads: kvHeads, FFN: ffn,
			Vocab: f.vocabSize, Seq: f.seq, Tied: !f.untied},
		Name: f.name, Batch: f.batch, Steps: f.steps, LR: f.lr, MinLR: f.minLR, Warmup: f.warmup, WeightDecay: f.wd,
		Clip: f.clip, SpanFrac: f.spanFrac, LineFrac: f.lineFrac, MaxSpan: f.maxSpan, Seed: f.seed, Threads: f.threads,
		EvalEvery: f.evalEvery, CheckpointEvery: f.ckEvery, OutDir: f.outDir, LogEvery: f.logEvery, Progress: os.Stderr,
	}
	if f.tokens > 0 {
		perStep := int64(f.batch) * int64(f.seq)
		opt.Steps = int((f.tokens + perStep - 1) / perStep)
	}
	return opt, exportType, nil
}

// printThroughput times --measure-steps steps of opt's shape and prints
// the throughput (--measure).
func (f *trainFlags) printThroughput(opt train.Options) error {
	th, err := train.Measure(opt, f.measureSteps)
	if err != nil {
		return err
	}
	if f.asJSON {
		return cli.PrintJSON(th)
	}
	fmt.Printf("%d params, batch %d × seq %d: %.0f ms/step, %.0f tokens/s, %.1fM tokens/hour; %.0f CPU-ms/step, %.0f tokens/CPU-s\n",
		th.Params, th.Batch, th.Seq, th.MsPerStep, th.TokensPerSec, th.TokensPerHour/1e6, th.CPUMsPerStep, th.TokensPerCPUSec)
	return nil
}

// startingPoint returns the checkpoint training starts from: the one in
// --out-dir with --resume, the weights of --init, or nil for fresh weights.
func (f *trainFlags) startingPoint(logf func(string, ...any)) (*train.Checkpoint, error) {
	switch {
	case f.resume && f.initFrom != "":
		return nil, errors.New("--resume and --init: give one")
	case f.resume:
		path := filepath.Join(f.outDir, train.CheckpointName)
		ck, err := train.LoadCheckpoint(path)
		if err != nil {
			return nil, err
		}
		logf("resuming %s at step %d", path, ck.Step)
		return ck, nil
	case f.initFrom != "":
		ck, err := train.LoadModel(f.initFrom)
		if err != nil {
			return nil, err
		}
		logf("starting from the weights of %s", f.initFrom)
		return ck, nil
	}
	return nil, nil
}

// prepareData reads the corpus, learns its vocabulary (or takes ck's) and
// tokenizes it.
func (f *trainFlags) prepareData(ck *train.Checkpoint, logf func(string, ...any)) (tokenizer.Config, train.Data, error) {
	corpus, err := f.readCorpus(logf)
	if err != nil {
		return tokenizer.Config{}, train.Data{}, err
	}
	var vocab tokenizer.Config
	if ck != nil {
		vocab = ck.Vocab
	} else if vocab, err = f.learnVocab(corpus, logf); err != nil {
		return vocab, train.Data{}, err
	}
	tok, err := tokenizer.New(vocab)
	if err != nil {
		return vocab, train.Data{}, fmt.Errorf("vocabulary: %w", err)
	}
	return vocab, train.Data{Train: train.Tokenize(tok, corpus.Train, f.threads), Eval: train.Tokenize(tok, corpus.Eval, f.threads)}, nil
}

// readCorpus reads the source files of --src (the Go installation's by
// default), the held-out packages apart.
func (f *trainFlags) readCorpus(logf func(string, ...any)) (*train.Corpus, error) {
	src := f.src
	if src == "" {
		root := cli.GoRoot()
		if root == "" {
			return nil, errors.New("no --src given and no GOROOT found")
		}
		src = filepath.Join(root, "src")
	}
	corpus, err := train.ReadCorpus(src, train.HeldOut)
	if err != nil {
		return nil, err
	}
	logf("%s: %d files (%.1f MiB) to train on, %d held out (%.1f MiB: %s)", src, len(corpus.Train),
		float64(corpus.TrainBytes)/(1<<20), len(corpus.Eval), float64(corpus.EvalBytes)/(1<<20), strings.Join(train.HeldOut, ", "))
	return corpus, nil
}

// learnVocab learns a BPE vocabulary of --vocab tokens from the corpus.
func (f *trainFlags) learnVocab(corpus *train.Corpus, logf func(string, ...any)) (tokenizer.Config, error) {
	vocab, err := train.TrainVocab(corpus.Train, f.vocabSize, int64(f.vocabMB)<<20)
	if err != nil {
		return vocab, err
	}
	if len(vocab.Tokens) < f.vocabSize {
		logf("the corpus has merges for only %d of the %d tokens asked for", len(vocab.Tokens), f.vocabSize)
	}
	logf("learned a vocabulary of %d tokens", len(vocab.Tokens))
	return vocab, nil
}

// train runs the optimizer from ck (a checkpoint to resume, weights to
// start from, or nil) and returns the trainer, which the caller closes.
func (f *trainFlags) train(ctx context.Context, opt train.Options, vocab tokenizer.Config, data train.Data, ck *train.Checkpoint, logf func(string, ...any)) (*train.Trainer, error) {
	tr, err := train.New(opt, vocab, data)
	if err != nil {
		return nil, err
	}
	switch {
	case f.resume:
		err = tr.Restore(ck)
	case ck != nil:
		err = tr.InitWeights(ck)
	}
	if err != nil {
		tr.Close()
		return nil, err
	}
	logf("model: %d parameters", tr.Model().Shape.Params())
	if err := tr.Run(ctx); err != nil {
		if errors.Is(err, context.Canceled) {
			logf("interrupted at step %d; checkpoint in %s, continue with --resume", tr.StepCount(), f.outDir)
		}
		tr.Close()
		return nil, err
	}
	return tr, nil
}

// exportModel writes the trained model to path with matrices of type typ.
func exportModel(tr *train.Trainer, path string, typ gguf.Type) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := tr.Export(f, typ); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
