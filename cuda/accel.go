//go:build cuda || cudaemu

package cuda

import (
	"context"
	"fmt"

	"github.com/dfill/dfill/engine"
)

// Accelerator returns m as an engine.Accelerator: after
// engine.Model.Accelerate(m.Accelerator()) the engine's denoising (every
// schedule, score, the dual cache, batching) runs its forward passes and
// greedy choices on the GPU, m being a Load of the same GGUF file.
func (m *Model) Accelerator() engine.Accelerator { return accelerator{m} }

type accelerator struct{ m *Model }

func (a accelerator) NewCanvas(tokens []int32) (engine.AccelCanvas, error) {
	c, err := a.m.NewCanvas(tokens)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (a accelerator) Step(ctx context.Context, aps []engine.AccelPass) ([][]engine.Choice, error) {
	passes := make([]Pass, len(aps))
	for i, p := range aps {
		c, ok := p.Canvas.(*Canvas)
		if !ok || c.m != a.m {
			return nil, fmt.Errorf("%w: pass %d's canvas is not one of this model's", ErrBadInput, i)
		}
		passes[i] = Pass{Canvas: c, Lo: p.Lo, Hi: p.Hi, Want: p.Want}
	}
	return a.m.Step(ctx, passes)
}
