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

	"github.com/dfill/dfill/engine/gguf"
	"github.com/dfill/dfill/engine/tokenizer"
	"github.com/dfill/dfill/engine/train"
)

func init() {
	register("train", "train a small llada diffusion model on a source tree and write a GGUF", runTrain)
}

// trainSummary is what `dfill train --json` prints when it is done.
type trainSummary struct {
	Out      string   `json:"out"`
	Steps    int      `json:"steps"`
	Params   int      `json:"params"`
	Vocab    int      `json:"vocab"`
	EvalLoss *float64 `json:"eval_loss,omitempty"` // absent without held-out data
	Seconds  float64  `json:"seconds"`
}

func runTrain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	src := fs.String("src", "", "source `dir` to train on (default: $(go env GOROOT)/src)")
	vocabSize := fs.Int("vocab", 4096, "BPE vocabulary size, special tokens included")
	vocabMB := fs.Int("vocab-mb", 32, "MiB of source the vocabulary is learned from (0: all)")
	layers := fs.Int("layers", 4, "transformer blocks")
	dim := fs.Int("dim", 256, "embedding width")
	heads := fs.Int("heads", 4, "attention heads")
	kvHeads := fs.Int("kv-heads", 0, "key/value heads (0: as many as --heads)")
	ffn := fs.Int("ffn", 0, "feed-forward width (0: 8/3·dim rounded up to a multiple of 32)")
	seq := fs.Int("seq", 256, "sequence length in tokens")
	untied := fs.Bool("untied", false, "a separate output matrix instead of the embedding's transpose")
	batch := fs.Int("batch", 8, "sequences per step")
	steps := fs.Int("steps", 1000, "optimizer steps")
	tokens := fs.Int64("tokens", 0, "train on this many tokens instead of --steps (tokens / (batch·seq) steps)")
	lr := fs.Float64("lr", 1e-3, "peak learning rate")
	minLR := fs.Float64("min-lr", 0, "final learning rate of the cosine decay (0: lr/10)")
	warmup := fs.Int("warmup", 100, "linear warm-up steps")
	wd := fs.Float64("weight-decay", 0.1, "AdamW weight decay (matrices only)")
	clip := fs.Float64("clip", 1, "gradient-norm clipping (0: none)")
	spanFrac := fs.Float64("span-frac", 0.5, "share of sequences that mask one EOS-padded span (infill examples)")
	lineFrac := fs.Float64("line-frac", 0, "share of sequences that are line infill examples: the rest of 1-3 lines in a span of 16 or 32, EOS-padded")
	maxSpan := fs.Int("max-span", 64, "longest masked span, EOS padding included")
	seed := fs.Uint64("seed", 1, "seed for the weights, data order and masking")
	threads := fs.Int("threads", runtime.NumCPU(), "CPU threads")
	outDir := fs.String("out-dir", "train-out", "`dir` for the checkpoint (and the model, without --out)")
	out := fs.String("out", "", "final GGUF `path` (default: OUT-DIR/model.gguf)")
	typ := fs.String("type", "q8_0", "matrix type of the exported model: f32, f16 or q8_0")
	name := fs.String("name", "", "the model's general.name")
	evalEvery := fs.Int("eval-every", 200, "steps between held-out evaluations (0: only at the end)")
	ckEvery := fs.Int("checkpoint-every", 500, "steps between checkpoints (0: only at the end)")
	logEvery := fs.Int("log-every", 10, "steps between progress lines")
	resume := fs.Bool("resume", false, "continue from OUT-DIR/"+train.CheckpointName+" (its shape and vocabulary win over the flags)")
	initFrom := fs.String("init", "", "start from the weights of this `model` (a GGUF dfill trained; its shape and vocabulary win over the flags), with a fresh optimizer and schedule")
	measure := fs.Bool("measure", false, "only time --measure-steps steps of this shape on random tokens and report throughput")
	measureSteps := fs.Int("measure-steps", 20, "steps --measure times")
	asJSON := fs.Bool("json", false, "print the result as JSON on stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "dfill train: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	exportType, err := gguf.ParseType(*typ)
	if err != nil || (exportType != gguf.TypeF32 && exportType != gguf.TypeF16 && exportType != gguf.TypeQ8_0) {
		return fmt.Errorf("--type %q: want f32, f16 or q8_0", *typ)
	}
	if *kvHeads == 0 {
		*kvHeads = *heads
	}
	if *ffn == 0 {
		*ffn = (8**dim/3 + 31) / 32 * 32
	}
	opt := train.Options{
		Shape: train.Shape{Layers: *layers, Dim: *dim, Heads: *heads, KVHeads: *kvHeads, FFN: *ffn,
			Vocab: *vocabSize, Seq: *seq, Tied: !*untied},
		Name: *name, Batch: *batch, Steps: *steps, LR: *lr, MinLR: *minLR, Warmup: *warmup, WeightDecay: *wd,
		Clip: *clip, SpanFrac: *spanFrac, LineFrac: *lineFrac, MaxSpan: *maxSpan, Seed: *seed, Threads: *threads,
		EvalEvery: *evalEvery, CheckpointEvery: *ckEvery, OutDir: *outDir, LogEvery: *logEvery, Progress: os.Stderr,
	}
	if *tokens > 0 {
		perStep := int64(*batch) * int64(*seq)
		opt.Steps = int((*tokens + perStep - 1) / perStep)
	}

	if *measure {
		th, err := train.Measure(opt, *measureSteps)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(th)
		}
		fmt.Printf("%d params, batch %d × seq %d: %.0f ms/step, %.0f tokens/s, %.1fM tokens/hour; %.0f CPU-ms/step, %.0f tokens/CPU-s\n",
			th.Params, th.Batch, th.Seq, th.MsPerStep, th.TokensPerSec, th.TokensPerHour/1e6, th.CPUMsPerStep, th.TokensPerCPUSec)
		return nil
	}

	start := time.Now()
	logf := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Since(start).Round(time.Second), fmt.Sprintf(format, a...))
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return err
	}
	if *out == "" {
		*out = filepath.Join(*outDir, "model.gguf")
	}
	var ck *train.Checkpoint
	switch {
	case *resume && *initFrom != "":
		return errors.New("--resume and --init: give one")
	case *resume:
		path := filepath.Join(*outDir, train.CheckpointName)
		if ck, err = train.LoadCheckpoint(path); err != nil {
			return err
		}
		opt.Shape = ck.Shape
		logf("resuming %s at step %d", path, ck.Step)
	case *initFrom != "":
		if ck, err = train.LoadModel(*initFrom); err != nil {
			return err
		}
		opt.Shape = ck.Shape
		logf("starting from the weights of %s", *initFrom)
	}

	if *src == "" {
		root := goroot()
		if root == "" {
			return errors.New("no --src given and no GOROOT found")
		}
		*src = filepath.Join(root, "src")
	}
	corpus, err := train.ReadCorpus(*src, train.HeldOut)
	if err != nil {
		return err
	}
	logf("%s: %d files (%.1f MiB) to train on, %d held out (%.1f MiB: %s)", *src, len(corpus.Train),
		float64(corpus.TrainBytes)/(1<<20), len(corpus.Eval), float64(corpus.EvalBytes)/(1<<20), strings.Join(train.HeldOut, ", "))

	var vocab tokenizer.Config
	if ck != nil {
		vocab = ck.Vocab
	} else {
		if vocab, err = train.TrainVocab(corpus.Train, *vocabSize, int64(*vocabMB)<<20); err != nil {
			return err
		}
		if len(vocab.Tokens) < *vocabSize {
			logf("the corpus has merges for only %d of the %d tokens asked for", len(vocab.Tokens), *vocabSize)
		}
		logf("learned a vocabulary of %d tokens", len(vocab.Tokens))
		opt.Shape.Vocab = len(vocab.Tokens)
	}
	tok, err := tokenizer.New(vocab)
	if err != nil {
		return fmt.Errorf("vocabulary: %w", err)
	}
	data := train.Data{Train: train.Tokenize(tok, corpus.Train, *threads), Eval: train.Tokenize(tok, corpus.Eval, *threads)}
	corpus = nil // the text is no longer needed
	logf("%d training tokens, %d held-out tokens; %d steps of %d tokens", len(data.Train), len(data.Eval), opt.Steps, opt.Batch*opt.Shape.Seq)

	tr, err := train.New(opt, vocab, data)
	if err != nil {
		return err
	}
	defer tr.Close()
	switch {
	case *resume:
		err = tr.Restore(ck)
	case ck != nil:
		err = tr.InitWeights(ck)
	}
	if err != nil {
		return err
	}
	logf("model: %d parameters", tr.Model().Shape.Params())
	if err := tr.Run(ctx); err != nil {
		if errors.Is(err, context.Canceled) {
			logf("interrupted at step %d; checkpoint in %s, continue with --resume", tr.StepCount(), *outDir)
		}
		return err
	}

	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := tr.Export(f, exportType); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", *out, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	logf("wrote %s (held-out loss %.4f)", *out, tr.LastEval)
	if *asJSON {
		sum := trainSummary{Out: *out, Steps: tr.StepCount(), Params: tr.Model().Shape.Params(),
			Vocab: len(vocab.Tokens), Seconds: time.Since(start).Seconds()}
		if l := tr.LastEval; !math.IsNaN(l) {
			sum.EvalLoss = &l
		}
		return printJSON(sum)
	}
	return nil
}
