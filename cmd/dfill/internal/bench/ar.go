package bench

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/dfill/dfill/cmd/dfill/internal/cli"
	"github.com/dfill/dfill/engine"
)

// arResult compares filling one span left to right with filling it by
// diffusion, on one model.
type arResult struct {
	Model          string  `json:"model"`
	Threads        int     `json:"threads"`
	Span           int     `json:"span"`
	Context        int     `json:"context"`
	TokensPerStep  int     `json:"diffusion_tokens_per_step"`
	ARTokensPerS   float64 `json:"ar_tokens_per_s"`
	DiffTokensPerS float64 `json:"diffusion_tokens_per_s"`
	Speedup        float64 `json:"speedup"`
	// The same, counting only the steps after the first (full) forward.
	ARAfterFirstTokensPerS   float64     `json:"ar_after_first_tokens_per_s"`
	DiffAfterFirstTokensPerS float64     `json:"diffusion_after_first_tokens_per_s"`
	Steps                    []stepTimes `json:"step_ms"`
	// Memory: the model file's size, the process's peak resident set
	// (weights mapped, not copied: the pages of the file it touched count),
	// and the read bandwidth the floors divide by, measured after.
	FileBytes      int64   `json:"file_bytes"`
	PeakRSSBytes   int64   `json:"peak_rss_bytes"`
	ReadBandwidthB float64 `json:"read_bandwidth_bytes_per_s"`
}

// stepTimes is the cost of one denoising step for a canvas and context.
type stepTimes struct {
	Canvas    int     `json:"canvas"`
	Context   int     `json:"context"`
	NoCacheMS float64 `json:"no_cache_ms"`
	CacheMS   float64 `json:"cache_ms"`
	// FloorMS is the bandwidth floor of a cached step: the weight bytes it
	// reads (engine.Model.StepWeightBytes of the canvas) over ReadBandwidthB.
	FloorMS     float64 `json:"floor_ms"`
	WeightBytes float64 `json:"weight_bytes"`
}

// arFlags are the flags of `dfill bench ar-vs-diffusion`.
type arFlags struct {
	shared     cli.Shared
	span       int
	contextLen int
	perStep    int
	canvases   string
	contexts   string
	stepsPer   int
	fill       bool
	asJSON     bool
}

func arCommand(m Models) *cli.Command {
	f := &arFlags{}
	return &cli.Command{
		Name:    "ar-vs-diffusion",
		Summary: "left-to-right vs diffusion tokens/s, and ms per step with and without the cache",
		Shared:  &f.shared,
		Flags:   f.register,
		Run:     func(ctx context.Context, _ []string) error { return f.run(ctx, m) },
	}
}

func (f *arFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&f.span, "span", 32, "span length in tokens")
	fs.IntVar(&f.contextLen, "context", 256, "tokens of context around the span (3/4 before, 1/4 after)")
	fs.IntVar(&f.perStep, "k", 4, "tokens committed per diffusion step")
	fs.StringVar(&f.canvases, "canvases", "32,64,128", "canvas sizes for the per-step table")
	fs.StringVar(&f.contexts, "contexts", "256,1024", "context sizes for the per-step table")
	fs.IntVar(&f.stepsPer, "step-samples", 4, "steps timed per cell of the per-step table")
	fs.BoolVar(&f.fill, "fill", true, "measure the left-to-right vs diffusion fill (off: only the per-step table)")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON")
}

// run times the fill and the per-step table on the model the shared flags
// name.
func (f *arFlags) run(ctx context.Context, models Models) error {
	if b := f.shared.Backend; b != "" && b != "cpu" {
		return cli.Usagef("--backend %q: ar-vs-diffusion measures the engine on this machine's CPU (--backend cpu)", b)
	}
	cans, err := parseInts(f.canvases)
	if err != nil {
		return fmt.Errorf("--canvases: %w", err)
	}
	ctxs, err := parseInts(f.contexts)
	if err != nil {
		return fmt.Errorf("--contexts: %w", err)
	}
	m, err := models.Engine(f.shared.Model, f.shared.Threads)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := fitsContext(m.Name(), m.Config.Context, f.contextLen, f.span, ctxs, cans); err != nil {
		return err
	}

	res := arResult{Model: m.Name(), Threads: m.Threads(), Span: f.span, Context: f.contextLen, TokensPerStep: f.perStep}
	pre, suf := randomContext(m, f.contextLen)

	// Warm the mapping (first touch of every weight page) before timing.
	if _, err := m.Denoise(ctx, pre, suf, engine.Options{Lengths: []int{1}, Steps: 1}, nil); err != nil {
		return err
	}
	if f.fill {
		if err := benchFill(ctx, m, pre, suf, &res); err != nil {
			return err
		}
	}
	if res.Steps, err = stepTable(ctx, m, cans, ctxs, f.stepsPer); err != nil {
		return err
	}
	// The peak resident set is read before the bandwidth is measured: that
	// allocates a buffer of its own.
	res.PeakRSSBytes = peakRSS()
	res.FileBytes = modelBytes(m, f.shared.Model)
	res.ReadBandwidthB = readBandwidth(m.Threads())
	for i := range res.Steps {
		s := &res.Steps[i]
		s.WeightBytes = m.StepWeightBytes(s.Canvas)
		s.FloorMS = s.WeightBytes / res.ReadBandwidthB * 1000
	}
	if f.asJSON {
		return cli.PrintJSON(res)
	}
	printARResult(res, f.fill)
	return nil
}

// fitsContext returns an error naming the first canvas that does not fit a
// model's context of limit tokens: the fill's context and span, then each
// context of the step table with each canvas. A benchmark that skipped them
// would print an empty table and succeed.
func fitsContext(model string, limit, fillContext, span int, contexts, canvases []int) error {
	if fillContext+span > limit {
		return fmt.Errorf("%s: --context %d + --span %d = %d tokens, more than the model's context of %d", model, fillContext, span, fillContext+span, limit)
	}
	for _, c := range contexts {
		for _, n := range canvases {
			if c+n > limit {
				return fmt.Errorf("%s: --contexts %d + --canvases %d = %d tokens, more than the model's context of %d", model, c, n, c+n, limit)
			}
		}
	}
	return nil
}

// stepTable times a denoising step, with and without the cache, for each
// context and canvas size (fitsContext checked they fit).
func stepTable(ctx context.Context, m *engine.Model, canvases, contexts []int, samples int) ([]stepTimes, error) {
	var table []stepTimes
	for _, c := range contexts {
		for _, n := range canvases {
			pre, suf := randomContext(m, c)
			st := stepTimes{Canvas: n, Context: c}
			var err error
			if st.NoCacheMS, err = msPerStep(ctx, m, pre, suf, n, false, samples); err != nil {
				return nil, err
			}
			if st.CacheMS, err = msPerStep(ctx, m, pre, suf, n, true, samples); err != nil {
				return nil, err
			}
			table = append(table, st)
		}
	}
	return table, nil
}

func printARResult(res arResult, fill bool) {
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintf(w, "model %s, %d threads; span %d, context %d\n\n", res.Model, res.Threads, res.Span, res.Context)
	if fill {
		fmt.Fprintf(w, "%-34s %10s %20s\n", "fill", "tokens/s", "after 1st forward")
		fmt.Fprintf(w, "%-34s %10.2f %20.2f\n", "left to right, 1 token/forward", res.ARTokensPerS, res.ARAfterFirstTokensPerS)
		fmt.Fprintf(w, "%-34s %10.2f %20.2f\n", fmt.Sprintf("diffusion, %d tokens/step", res.TokensPerStep), res.DiffTokensPerS, res.DiffAfterFirstTokensPerS)
		fmt.Fprintf(w, "%-34s %9.2fx %19.2fx\n\n", "diffusion / left to right", res.Speedup, res.DiffAfterFirstTokensPerS/res.ARAfterFirstTokensPerS)
	}
	fmt.Fprintf(w, "%8s %8s %14s %12s %8s %10s %10s\n", "canvas", "context", "no cache ms", "cache ms", "ratio", "floor ms", "tokens/s")
	for _, s := range res.Steps {
		fmt.Fprintf(w, "%8d %8d %14.2f %12.2f %7.2fx %10.2f %10.1f\n", s.Canvas, s.Context, s.NoCacheMS, s.CacheMS,
			s.NoCacheMS/s.CacheMS, s.FloorMS, float64(res.TokensPerStep)*1000/s.CacheMS)
	}
	fmt.Fprintf(w, "\ntokens/s: %d tokens committed per cached step. floor: the weight bytes a step reads (%.0f MB at canvas %d) over\n",
		res.TokensPerStep, res.Steps[0].WeightBytes/1e6, res.Steps[0].Canvas)
	fmt.Fprintf(w, "the measured read bandwidth, %.1f GB/s on %d threads.\n", res.ReadBandwidthB/1e9, res.Threads)
	if res.PeakRSSBytes > 0 && res.FileBytes > 0 {
		fmt.Fprintf(w, "memory: peak RSS %.0f MB, model file %.0f MB: %.2fx the file (weights mapped, not copied)\n",
			float64(res.PeakRSSBytes)/1e6, float64(res.FileBytes)/1e6, float64(res.PeakRSSBytes)/float64(res.FileBytes))
	}
}

// benchFill fills the same span left to right (one token per forward, with
// the cache, as an autoregressive engine does) and by diffusion (k tokens
// per step), and records tokens/s of each: all steps, and the steps after
// the first full forward over the prompt, which both share.
func benchFill(ctx context.Context, m *engine.Model, pre, suf []int32, res *arResult) error {
	timed := func(opt engine.Options) (total, after time.Duration, err error) {
		var first time.Time
		start := time.Now()
		_, err = m.Denoise(ctx, pre, suf, opt, func(s engine.Step) {
			if s.Step == 1 {
				first = time.Now()
			}
		})
		end := time.Now()
		return end.Sub(start), end.Sub(first), err
	}
	n := res.Span
	arTotal, arAfter, err := timed(engine.Options{Lengths: []int{n}, Schedule: engine.ScheduleLeftToRight, Cache: true})
	if err != nil {
		return err
	}
	steps := max(1, n/res.TokensPerStep)
	dTotal, dAfter, err := timed(engine.Options{Lengths: []int{n}, Steps: steps, Schedule: engine.ScheduleBlocks, Cache: true})
	if err != nil {
		return err
	}
	res.ARTokensPerS = float64(n) / arTotal.Seconds()
	res.DiffTokensPerS = float64(n) / dTotal.Seconds()
	res.Speedup = res.DiffTokensPerS / res.ARTokensPerS
	// After the first step: n-1 tokens left to right, n-k by diffusion.
	res.ARAfterFirstTokensPerS = float64(n-1) / arAfter.Seconds()
	res.DiffAfterFirstTokensPerS = float64(n-min(n, res.TokensPerStep)) / dAfter.Seconds()
	return nil
}

// msPerStep times denoising steps of a canvas of n masks. Without the cache
// every step is a full forward; with it, the first step fills the cache and
// the later ones (the ones timed) run only the span.
func msPerStep(ctx context.Context, m *engine.Model, pre, suf []int32, n int, cache bool, samples int) (float64, error) {
	var stamps []time.Time
	opt := engine.Options{Lengths: []int{n}, Steps: samples + 1, Schedule: engine.ScheduleBlocks, Cache: cache}
	stamps = append(stamps, time.Now())
	_, err := m.Denoise(ctx, pre, suf, opt, func(engine.Step) { stamps = append(stamps, time.Now()) })
	if err != nil || len(stamps) < 3 {
		return 0, err
	}
	// Skip the first step: with the cache it is the full forward that fills it.
	d := stamps[len(stamps)-1].Sub(stamps[1])
	return float64(d.Microseconds()) / 1000 / float64(len(stamps)-2), nil
}

// randomContext returns n tokens of random ordinary (non-special) ids, 3/4
// as a prefix and 1/4 as a suffix, seeded so runs compare.
func randomContext(m *engine.Model, n int) (prefix, suffix []int32) {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]int32, 0, n)
	for len(ids) < n {
		id := int32(rng.IntN(m.Config.Vocab))
		if !m.Tokenizer.IsSpecial(id) && id != m.Config.MaskID {
			ids = append(ids, id)
		}
	}
	cut := n * 3 / 4
	return ids[:cut], ids[cut:]
}

// modelBytes is the size of the model's file at path, or, for the embedded
// model or a reference resolved elsewhere, the bytes of its tensors.
func modelBytes(m *engine.Model, path string) int64 {
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
		return st.Size()
	}
	var n int64
	for _, t := range m.File().Tensors {
		n += int64(len(t.Data))
	}
	return n
}
