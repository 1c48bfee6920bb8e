package engine

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/dfill/dfill/engine/gguf"
)

// cpuAccel is an Accelerator made of the engine's own forward pass: what a
// device returns, computed on the CPU, so the seam itself is tested.
type cpuAccel struct {
	m       *Model
	ws      *workspace
	setToks int // SetToken calls
}

type cpuCanvas struct {
	a   *cpuAccel
	seq *sequence
}

func (c *cpuCanvas) SetToken(pos int, tok int32) error {
	c.a.setToks++
	c.seq.tokens[pos] = tok
	return nil
}

func (c *cpuCanvas) Close() error { return nil }

func (a *cpuAccel) NewCanvas(tokens []int32) (AccelCanvas, error) {
	return &cpuCanvas{a: a, seq: a.m.newSequence(slices.Clone(tokens))}, nil
}

func (a *cpuAccel) Step(ctx context.Context, aps []AccelPass) ([][]Choice, error) {
	passes := make([]pass, len(aps))
	for i, p := range aps {
		passes[i] = pass{seq: p.Canvas.(*cpuCanvas).seq, lo: p.Lo, hi: p.Hi, want: p.Want}
	}
	final, err := a.m.forward(ctx, a.ws, passes)
	if err != nil {
		return nil, err
	}
	var out [][]Choice
	off := 0
	for _, p := range aps {
		stats := make([]rowStats, len(p.Want))
		a.m.scanLogits(a.ws, final[off*a.m.Config.Dim:(off+len(p.Want))*a.m.Config.Dim], stats)
		off += len(p.Want)
		var cs []Choice
		for _, st := range stats {
			c := Choice{Token: int32(st.best), Prob: st.confidence(), Second: int32(st.second), NegEntropy: st.negEntropy()}
			if st.second >= 0 {
				c.SecondProb = math.Exp(float64(st.secondV)-st.max) / st.sum
			}
			cs = append(cs, c)
		}
		out = append(out, cs)
	}
	return out, nil
}

// TestAcceleratorSameTokens denoises with the engine's forward behind the
// Accelerator seam and directly, for every schedule and score, and wants
// the same tokens, probabilities (to 1e-12) and steps: the seam loses
// nothing the samplers read. Sampling with a temperature is refused.
func TestAcceleratorSameTokens(t *testing.T) {
	for _, arch := range []Arch{ArchDream, ArchLLaDA} {
		m := loadRandom(t, testSpec(arch, gguf.TypeF32), 2)
		for _, sched := range []Schedule{ScheduleTimestep, ScheduleBlocks, ScheduleThreshold, ScheduleLeftToRight} {
			for _, score := range []Score{ScoreConfidence, ScoreMargin, ScoreEntropy} {
				t.Run(string(arch)+"/"+sched.String()+"/"+score.String(), func(t *testing.T) {
					opt := Options{Lengths: []int{6, 10}, Steps: 5, Schedule: sched, Score: score, BlockSize: 4, Cache: true, Threshold: 0.2}
					m.Accelerate(nil)
					want := tinyDenoise(t, m, opt)
					a := &cpuAccel{m: m, ws: &workspace{}}
					m.Accelerate(a)
					defer m.Accelerate(nil)
					got := tinyDenoise(t, m, opt)
					for i := range want {
						if !slices.Equal(got[i].Tokens, want[i].Tokens) || got[i].Steps != want[i].Steps {
							t.Errorf("span %d: accelerated %v in %d steps, direct %v in %d", i, got[i].Tokens, got[i].Steps, want[i].Tokens, want[i].Steps)
						}
						for k := range want[i].Probs {
							if d := math.Abs(got[i].Probs[k] - want[i].Probs[k]); d > 1e-12 {
								t.Errorf("span %d position %d: probability %v, direct %v", i, k, got[i].Probs[k], want[i].Probs[k])
							}
						}
					}
					if a.setToks != 16 {
						t.Errorf("%d SetToken calls, want one per span position (16)", a.setToks)
					}
				})
			}
		}
		m.Accelerate(&cpuAccel{m: m, ws: &workspace{}})
		_, err := m.Denoise(context.Background(), []int32{5, 6}, []int32{7}, Options{Lengths: []int{4}, Temperature: 0.5}, nil)
		if !errors.Is(err, ErrBadOptions) {
			t.Errorf("temperature 0.5 with an accelerator: %v, want ErrBadOptions", err)
		}
		m.Accelerate(nil)
	}
}
