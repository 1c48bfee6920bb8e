package train

import (
	"math"

	"github.com/dfill/dfill/engine/kernel"
)

// adamW is AdamW (Loshchilov & Hutter) over a model's flat parameters,
// with decoupled weight decay on matrices only.
type adamW[T Float] struct {
	beta1, beta2, eps, decay float64
	m, v                     *Params[T]
	step                     int // updates taken
}

func newAdamW[T Float](s Shape, decay float64) *adamW[T] {
	return &adamW[T]{beta1: 0.9, beta2: 0.95, eps: 1e-8, decay: decay, m: NewParams[T](s), v: NewParams[T](s)}
}

// gradNorm returns the L2 norm of g.
func gradNorm[T Float](g []T) float64 {
	var s float64
	for _, v := range g {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s)
}

// update takes one AdamW step of w along the gradient g·gscale at rate lr.
func (o *adamW[T]) update(p *kernel.Pool, w, g *Params[T], gscale, lr float64) {
	o.step++
	b1, b2 := T(o.beta1), T(o.beta2)
	c1 := 1 / (1 - math.Pow(o.beta1, float64(o.step)))
	c2 := 1 / (1 - math.Pow(o.beta2, float64(o.step)))
	eps, gs := T(o.eps), T(gscale)
	for _, t := range w.specs {
		lo, hi := t.off, t.off+t.rows*t.cols
		wd := T(0)
		if t.decay {
			wd = T(lr * o.decay)
		}
		W, G, M, V := w.Data[lo:hi], g.Data[lo:hi], o.m.Data[lo:hi], o.v.Data[lo:hi]
		step, mc, vc := T(lr*c1), T(1), T(c2)
		p.Run(len(W), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				gi := G[i] * gs
				M[i] = b1*M[i] + (1-b1)*gi
				V[i] = b2*V[i] + (1-b2)*gi*gi
				W[i] -= step*M[i]*mc/(T(math.Sqrt(float64(V[i]*vc)))+eps) + wd*W[i]
			}
		})
	}
}

// schedule returns the learning rate of step (0-based) of total: linear
// warm-up from peak/warmup to peak over warmup steps, then cosine decay
// to floor at the last step.
func schedule(step, total, warmup int, peak, floor float64) float64 {
	if step < warmup {
		return peak * float64(step+1) / float64(warmup)
	}
	if total <= warmup+1 {
		return peak
	}
	frac := float64(step-warmup) / float64(total-warmup-1)
	frac = min(max(frac, 0), 1)
	return floor + (peak-floor)*0.5*(1+math.Cos(math.Pi*frac))
}
