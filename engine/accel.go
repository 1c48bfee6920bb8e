package engine

import (
	"context"
	"fmt"
	"math"
)

// An Accelerator runs a model's forward passes somewhere else than the CPU
// kernels — package cuda's Model on an NVIDIA GPU — and returns, for each
// position a step asks about, the greedy choice and its scores; only those
// leave the device. The engine keeps everything else: the prompt, the
// canvases' tokens, the schedule, the scores and the candidates, so a
// denoise runs the same samplers whichever does the arithmetic. Set one
// with Model.Accelerate.
type Accelerator interface {
	// NewCanvas makes a canvas of tokens (prefix, masks, suffix) on the
	// device, with room for its keys and values at every layer.
	NewCanvas(tokens []int32) (AccelCanvas, error)
	// Step runs the passes as one forward and returns, pass by pass, a
	// Choice for each of its Want rows. The first pass over a canvas runs
	// all of it.
	Step(ctx context.Context, passes []AccelPass) ([][]Choice, error)
}

// AccelCanvas is one canvas on an Accelerator.
type AccelCanvas interface {
	// SetToken puts token tok at position pos for the next pass to read.
	SetToken(pos int, tok int32) error
	// Close releases the canvas.
	Close() error
}

// AccelPass asks an Accelerator to run rows [Lo, Hi) of a canvas and to
// choose for the logits rows in Want (for a model with shifted logits,
// row p−1 predicts position p, as the engine's plans say).
type AccelPass struct {
	Canvas AccelCanvas
	Lo, Hi int
	Want   []int
}

// Choice is what a greedy step reads of one logits row: the most likely
// token other than the mask (the lowest id among equals), its probability,
// the runner-up and its probability (Second −1 when there is none), and
// minus the entropy of the distribution.
type Choice struct {
	Token      int32
	Prob       float64
	Second     int32
	SecondProb float64
	NegEntropy float64
}

// Accelerate makes the model's denoising run its forward passes on a (nil:
// the CPU kernels again). Sampling with a temperature needs whole logits
// rows, which an Accelerator does not return: such requests are refused
// while one is set. Logits still runs on the CPU.
func (m *Model) Accelerate(a Accelerator) { m.accel = a }

// accelerated reports whether the model denoises on an Accelerator.
func (m *Model) accelerated() bool { return m.accel != nil }

// checkAccel refuses options an Accelerator cannot run.
func (m *Model) checkAccel(opt Options) error {
	if m.accel != nil && opt.Temperature > 0 {
		return fmt.Errorf("%w: temperature %g: sampling needs whole logits rows, which the accelerated backend keeps on the device; use temperature 0 (greedy)",
			ErrBadOptions, opt.Temperature)
	}
	return nil
}

// statsOf returns the softmax statistics that give a Choice's scores back
// (confidence, margin, −entropy, the runner-up): the best logit taken as
// 0, so the sum of exponentials is 1/Prob.
func statsOf(c Choice) rowStats {
	s := rowStats{best: int(c.Token), second: int(c.Second), sum: 1 / c.Prob}
	if c.Second >= 0 && c.SecondProb > 0 {
		s.secondV = float32(math.Log(c.SecondProb / c.Prob))
	}
	s.ent = s.sum * (c.NegEntropy + math.Log(s.sum))
	return s
}

// stepAccel runs one step of the active runs on the Accelerator and commits
// each run's choices.
func (m *Model) stepAccel(ctx context.Context, active []*run, passes []pass) error {
	ap := make([]AccelPass, len(active))
	for i, r := range active {
		ap[i] = AccelPass{Canvas: r.dev, Lo: passes[i].lo, Hi: passes[i].hi, Want: passes[i].want}
	}
	choices, err := m.accel.Step(ctx, ap)
	if err != nil {
		return err
	}
	if len(choices) != len(active) {
		return fmt.Errorf("engine: the accelerator answered %d passes of %d", len(choices), len(active))
	}
	for i, r := range active {
		if len(choices[i]) != len(passes[i].want) {
			return fmt.Errorf("engine: the accelerator chose for %d positions of %d", len(choices[i]), len(passes[i].want))
		}
		r.stats = r.stats[:0]
		for _, c := range choices[i] {
			r.stats = append(r.stats, statsOf(c))
		}
		r.predictFromStats()
		if err := r.unmaskBest(); err != nil {
			return err
		}
		r.advance()
	}
	return nil
}
