package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

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
}

// stepTimes is the cost of one denoising step for a canvas and context.
type stepTimes struct {
	Canvas    int     `json:"canvas"`
	Context   int     `json:"context"`
	NoCacheMS float64 `json:"no_cache_ms"`
	CacheMS   float64 `json:"cache_ms"`
}

func runBenchARvsDiffusion(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench ar-vs-diffusion", flag.ContinueOnError)
	sf := addSharedFlags(fs)
	span := fs.Int("span", 32, "span length in tokens")
	contextLen := fs.Int("context", 256, "tokens of context around the span (3/4 before, 1/4 after)")
	perStep := fs.Int("k", 4, "tokens committed per diffusion step")
	canvases := fs.String("canvases", "32,64,128", "canvas sizes for the per-step table")
	contexts := fs.String("contexts", "256,1024", "context sizes for the per-step table")
	stepsPer := fs.Int("step-samples", 4, "steps timed per cell of the per-step table")
	fill := fs.Bool("fill", true, "measure the left-to-right vs diffusion fill (off: only the per-step table)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	stopProfile, err := sf.startProfile()
	if err != nil {
		return err
	}
	defer stopProfile()
	cans, err := parseInts(*canvases)
	if err != nil {
		return fmt.Errorf("--canvases: %w", err)
	}
	ctxs, err := parseInts(*contexts)
	if err != nil {
		return fmt.Errorf("--contexts: %w", err)
	}
	m, err := loadModel(sf.model, sf.threads)
	if err != nil {
		return err
	}
	defer m.Close()

	res := arResult{Model: m.Name(), Threads: m.Threads(), Span: *span, Context: *contextLen, TokensPerStep: *perStep}
	pre, suf := randomContext(m, *contextLen)

	// Warm the mapping (first touch of every weight page) before timing.
	if _, err := m.Denoise(ctx, pre, suf, engine.Options{Lengths: []int{1}, Steps: 1}, nil); err != nil {
		return err
	}
	if *fill {
		if err := benchFill(ctx, m, pre, suf, &res); err != nil {
			return err
		}
	}

	for _, c := range ctxs {
		for _, n := range cans {
			if c+n > m.Config.Context {
				continue
			}
			pre, suf := randomContext(m, c)
			st := stepTimes{Canvas: n, Context: c}
			if st.NoCacheMS, err = msPerStep(ctx, m, pre, suf, n, false, *stepsPer); err != nil {
				return err
			}
			if st.CacheMS, err = msPerStep(ctx, m, pre, suf, n, true, *stepsPer); err != nil {
				return err
			}
			res.Steps = append(res.Steps, st)
		}
	}

	if *asJSON {
		return printJSON(res)
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintf(w, "model %s, %d threads; span %d, context %d\n\n", res.Model, res.Threads, res.Span, res.Context)
	if *fill {
		fmt.Fprintf(w, "%-34s %10s %20s\n", "fill", "tokens/s", "after 1st forward")
		fmt.Fprintf(w, "%-34s %10.2f %20.2f\n", "left to right, 1 token/forward", res.ARTokensPerS, res.ARAfterFirstTokensPerS)
		fmt.Fprintf(w, "%-34s %10.2f %20.2f\n", fmt.Sprintf("diffusion, %d tokens/step", *perStep), res.DiffTokensPerS, res.DiffAfterFirstTokensPerS)
		fmt.Fprintf(w, "%-34s %9.2fx %19.2fx\n\n", "diffusion / left to right", res.Speedup, res.DiffAfterFirstTokensPerS/res.ARAfterFirstTokensPerS)
	}
	fmt.Fprintf(w, "%8s %8s %14s %12s %8s\n", "canvas", "context", "no cache ms", "cache ms", "ratio")
	for _, s := range res.Steps {
		fmt.Fprintf(w, "%8d %8d %14.2f %12.2f %7.2fx\n", s.Canvas, s.Context, s.NoCacheMS, s.CacheMS, s.NoCacheMS/s.CacheMS)
	}
	return nil
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
