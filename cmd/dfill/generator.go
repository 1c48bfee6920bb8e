package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"

	"go.uber.org/zap"

	"github.com/dfill/dfill/cmd/dfill/internal/bench"
	"github.com/dfill/dfill/cmd/dfill/internal/cli"
	"github.com/dfill/dfill/completion"
	"github.com/dfill/dfill/engine"
	"github.com/dfill/dfill/engine/hub"
	"github.com/dfill/dfill/fim"
	"github.com/dfill/dfill/remote"
)

// generatorConfig says which model to load and how to run it.
type generatorConfig struct {
	Model   string // GGUF path; empty means the embedded model (cpu)
	Backend string // cpu, cuda (a build with -tags cuda) or remote
	Threads int
	// Remote is the served model the remote backend asks.
	Remote remote.Config
	// Progress is told how a download of Model (a catalog name or Hub
	// reference not yet cached) goes; nil: a bar or lines on stderr.
	Progress func(done, total int64)

	// EndAnywhere lets end tokens appear anywhere in a span (see
	// engine.Options.EndAnywhere); for measuring the default against it.
	EndAnywhere bool
}

// newGenerator loads the model cfg names and returns it as the completion
// pipeline's Generator, and the func that releases it (model mappings,
// threads).
func newGenerator(ctx context.Context, cfg generatorConfig, log *zap.Logger) (gen completion.Generator, release func(), err error) {
	switch cfg.Backend {
	case "", "cpu":
	case "remote":
		return newRemoteGenerator(cfg.Remote, log)
	case "cuda":
		if err := cudaBuilt(); err != nil {
			return nil, nil, err
		}
	default:
		return nil, nil, fmt.Errorf("unknown backend %q: cpu, cuda or remote", cfg.Backend)
	}
	progress := cfg.Progress
	if progress == nil {
		progress = cliProgress(cfg.Model)
	}
	m, err := loadModelCtx(ctx, cfg.Model, cfg.Threads, progress)
	if err != nil {
		return nil, nil, err
	}
	log.Info("model loaded", zap.String("model", m.Name()), zap.String("arch", string(m.Config.Arch)),
		zap.Int("layers", m.Config.Layers), zap.Int("dim", m.Config.Dim), zap.Int("threads", m.Threads()))
	release = func() { m.Close() }
	if cfg.Backend == "cuda" {
		gpuRelease, err := accelerate(m, log)
		if err != nil {
			m.Close()
			return nil, nil, err
		}
		release = func() { gpuRelease(); m.Close() }
	}
	cal, ok, err := readCalibration(m.File())
	switch {
	case err != nil:
		log.Warn("model's score calibration ignored", zap.Error(err))
	case !ok:
		log.Info("model has no score calibration: candidates are scored by their mean token probability")
	}
	g := &engineGenerator{m: m, endAnywhere: cfg.EndAnywhere, cal: cal}
	if d, ok := catalogDefaults(cfg.Model); ok {
		g.defaults = &d
		log.Info("the catalog's sampler settings are the defaults", zap.String("model", cfg.Model), zap.Any("defaults", d))
	}
	return g, release, nil
}

// catalogDefaults returns the sampler settings the catalog gives for the
// model ref names (a catalog name, or a Hub reference to a repository of
// the catalog), when it gives some.
func catalogDefaults(ref string) (hub.Defaults, bool) {
	if ref == "" {
		return hub.Defaults{}, false
	}
	r, err := hub.ParseRef(ref)
	if err != nil {
		return hub.Defaults{}, false
	}
	m, ok := r.Model()
	return m.Defaults, ok
}

// benchGenerator is newGenerator for the model the shared flags name, as
// the benchmarks load it (bench.Models).
func benchGenerator(ctx context.Context, sf *cli.Shared, endAnywhere bool, log *zap.Logger) (completion.Generator, func(), error) {
	return newGenerator(ctx, generatorConfig{Model: sf.Model, Backend: sf.Backend, Threads: sf.Threads, Remote: remoteFlags(sf), EndAnywhere: endAnywhere}, log)
}

// benchModels wires the engine into the benchmarks and `dfill model
// calibrate`.
var benchModels = bench.Models{Generator: benchGenerator, Engine: loadModel, SaveCalibrated: writeCalibrated}

// engineGenerator adapts the native engine to completion.Generator.
type engineGenerator struct {
	m           *engine.Model
	endAnywhere bool
	cal         completion.Calibration // from the model's GGUF, or the zero one
	// defaults are the sampler settings the catalog gives for the model,
	// used where the request leaves one to the default; nil: dfill's.
	defaults *hub.Defaults
}

func (g *engineGenerator) Calibration() completion.Calibration { return g.cal }

func (g *engineGenerator) Name() string             { return g.m.Name() }
func (g *engineGenerator) ContextTokens() int       { return g.m.Config.Context }
func (g *engineGenerator) CountTokens(s string) int { return len(g.m.Tokenizer.EncodePlain(s)) }

// Infill denoises spans of opt.MaxTokens and shorter (spanLengths) in one
// batch, with the confidence threshold schedule, at most 3·MaxTokens/16 steps
// unless told otherwise, and the dual cache.
func (g *engineGenerator) Infill(ctx context.Context, p fim.Prompt, opt completion.GenerateOptions, onStep func(completion.Step)) ([]completion.Candidate, error) {
	eo, err := engineOptions(opt)
	if err != nil {
		return nil, err
	}
	if g.defaults != nil {
		if eo, err = withDefaults(eo, opt, *g.defaults); err != nil {
			return nil, err
		}
	}
	eo.EndAnywhere = g.endAnywhere
	var stepFn func(engine.Step)
	if onStep != nil {
		stepFn = func(s engine.Step) {
			onStep(completion.Step{Span: s.Span, Spans: len(eo.Lengths), Step: s.Step, Steps: s.Steps, Text: s.Text})
		}
	}
	cands, err := g.m.Infill(ctx, engine.Prompt{Prefix: p.Prefix, Suffix: p.Suffix}, eo, stepFn)
	if err != nil {
		return nil, err
	}
	out := make([]completion.Candidate, len(cands))
	for i, c := range cands {
		out[i] = completion.Candidate{Text: c.Text, Confidence: c.Confidence, Signals: signals(c), Steps: c.Steps,
			Span: max(0, slices.Index(eo.Lengths, c.Length))}
	}
	return out, nil
}

// signals reads a candidate's completion.Signals from its content tokens:
// the probabilities they were committed with, and when.
func signals(c engine.Candidate) completion.Signals {
	n := min(c.Content, len(c.Probs), len(c.FixedAt))
	if n == 0 {
		return completion.Signals{Known: true}
	}
	s := completion.Signals{Known: true, MinProb: 1}
	for i := range n {
		s.MeanProb += c.Probs[i]
		s.MinProb = min(s.MinProb, c.Probs[i])
		if c.Steps > 1 {
			s.Late += float64(c.FixedAt[i]-1) / float64(c.Steps-1)
		}
	}
	s.MeanProb /= float64(n)
	s.Late /= float64(n)
	return s
}

// withDefaults returns eo with the catalog's sampler settings d where the
// request opt leaves them to the default: steps (d's, or one per token when
// d says 0, the authors' setting), the schedule and block length (unless
// the request sets a confidence threshold), the score (unless it names an
// algorithm), and the temperature and top-p.
func withDefaults(eo engine.Options, opt completion.GenerateOptions, d hub.Defaults) (engine.Options, error) {
	if opt.Steps == 0 {
		eo.Steps = d.Steps // 0: one per token of each span, as the engine takes it
	}
	if opt.Threshold == 0 && d.Schedule != "" {
		s, err := engine.ParseSchedule(d.Schedule)
		if err != nil {
			return eo, err
		}
		eo.Schedule, eo.BlockSize, eo.Threshold = s, d.BlockLength, d.Threshold
	}
	if opt.Algorithm == "" && d.Score != "" {
		s, err := engine.ParseScore(d.Score)
		if err != nil {
			return eo, err
		}
		eo.Score = s
	}
	eo.Temperature, eo.TopP = d.Temperature, d.TopP
	return eo, nil
}

// engineOptions turns the pipeline's sampler settings into engine options.
func engineOptions(opt completion.GenerateOptions) (engine.Options, error) {
	n := opt.MaxTokens
	if n <= 0 {
		n = 32
	}
	steps := opt.Steps
	if steps <= 0 {
		// At most 3n/16 forwards (6 for a 32-token span): the threshold
		// commits more per step when the model is sure, and the last step
		// of a block commits all. With n/4 the embedded model did no
		// better (spans 4, 8 and 32 on 400 HumanEval-X line tasks: 179
		// answered at 0.116 edit similarity, against 169 at 0.112 with 6
		// steps, 153 at 0.098 with 4) at a third more passes.
		steps = max(4, 3*n/16)
	}
	lengths, contexts := spanLengths(n)
	eo := engine.Options{
		Lengths:   lengths,
		Contexts:  contexts,
		Steps:     steps,
		Schedule:  engine.ScheduleThreshold,
		Threshold: opt.Threshold,
		BlockSize: 32,
		Cache:     true,
	}
	if opt.Algorithm != "" {
		s, err := engine.ParseScore(opt.Algorithm)
		if err != nil {
			return eo, err
		}
		eo.Score = s
	}
	return eo, nil
}

// shortSpans are the spans spanLengths adds below the requested one, and
// shortContext the tokens of context each of them sees.
var shortSpans = []int{4, 8}

const shortContext = 64

// spanLengths returns the spans one request denoises together, in one
// batch, and the context of each (engine.Options.Contexts): shortSpans
// shorter than n with shortContext tokens around them, then n with the
// model's whole context. A masked-diffusion model fills a span with text
// about as long as the span (the embedded one, asked for 32 tokens after
// "if err != nil {", writes the if line again; asked for 4, "return err"),
// and a line is usually short, so the short spans give the short answers
// and the full one the long; the pipeline ranks the candidates by
// confidence. Each span is a sequence of its own (the model attends both
// ways, so nothing of one is valid for another), and costs a full pass over
// its context; a short span's line depends mostly on the lines around it,
// so it gets a short context (64 tokens did as well as 256; 48 and 32 less
// well).
//
// Measured on 400 HumanEval-X line tasks (bench infill) and the language
// server (bench lsp, three interleaved runs each), with at most n/4 steps
// and then 3n/16 (engineOptions):
//
//	spans       steps  answered  edit sim.  lsp p95
//	32          n/4    99        0.056      29-32 ms
//	4, 32       n/4    136       0.083      38-48 ms
//	4, 8, 32    n/4    179       0.116      46-54 ms
//	4, 8, 32    3n/16  169       0.112      40-41 ms
func spanLengths(n int) (lengths, contexts []int) {
	for _, l := range shortSpans {
		if l < n {
			lengths, contexts = append(lengths, l), append(contexts, shortContext)
		}
	}
	return append(lengths, n), append(contexts, 0)
}

// loadModelCtx is loadModel that returns ctx's error as soon as ctx is
// cancelled (a signal, the end of a session): reading a model from a
// stale network mount can block, and no command may wait for it. A model
// that loads after that is closed.
func loadModelCtx(ctx context.Context, ref string, threads int, progress func(done, total int64)) (*engine.Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path := ref
	if ref != "" {
		// A catalog name or a Hub reference: the cached file, pulled when
		// missing.
		var err error
		if path, err = resolveModel(ctx, ref, progress); err != nil {
			return nil, err
		}
	}
	type loaded struct {
		m   *engine.Model
		err error
	}
	done := make(chan loaded, 1)
	go func() {
		m, err := loadModel(path, threads)
		done <- loaded{m, err}
	}()
	select {
	case l := <-done:
		return l.m, l.err
	case <-ctx.Done():
		go func() {
			if l := <-done; l.err == nil {
				l.m.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// loadModel loads the GGUF at path, or the embedded model when path is "",
// to run on threads (0: all the CPUs).
func loadModel(path string, threads int) (*engine.Model, error) {
	if path != "" {
		var err error
		if path, err = resolveModel(context.Background(), path, cliProgress(path)); err != nil {
			return nil, err
		}
	}
	opt := engine.LoadOptions{Threads: threadCount(threads)}
	if path == "" {
		data, name := embeddedModel()
		return engine.LoadBytes(data, name, opt)
	}
	return engine.Load(path, opt)
}

// threadCount returns n, or all the CPUs when n is not positive.
func threadCount(n int) int {
	if n > 0 {
		return n
	}
	return runtime.NumCPU()
}
