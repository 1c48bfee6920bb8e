package kernel

import (
	"fmt"
	"math"
)

// A RoPE applies rotary position embeddings to the heads of a query or key
// vector. Angles θ_i = pos·base^(-2i/headDim), i < headDim/2, are computed in
// float64 and their cosines and sines stored as float32 for positions below
// maxPos; later positions are computed on the fly.
type RoPE struct {
	headDim int
	base    float64
	neox    bool
	maxPos  int
	cos     []float32 // (maxPos, headDim/2)
	sin     []float32 // (maxPos, headDim/2)
}

// NewRoPE returns a RoPE for heads of headDim dimensions, frequency base
// base, with tables for positions [0, maxPos). neox selects NEOX order,
// which rotates dimension i with i+headDim/2 (Qwen2, Dream); otherwise
// dimensions 2i and 2i+1 rotate together (LLaMA, LLaDA, as ggml applies
// them). NewRoPE panics unless headDim is positive and even, base positive
// and maxPos non-negative: the model loader checks these hyperparameters.
func NewRoPE(headDim int, base float64, maxPos int, neox bool) *RoPE {
	if headDim <= 0 || headDim%2 != 0 || !(base > 0) || maxPos < 0 {
		panic(fmt.Sprintf("kernel: NewRoPE(headDim=%d, base=%g, maxPos=%d)", headDim, base, maxPos))
	}
	half := headDim / 2
	r := &RoPE{headDim: headDim, base: base, neox: neox, maxPos: maxPos,
		cos: make([]float32, maxPos*half), sin: make([]float32, maxPos*half)}
	for pos := 0; pos < maxPos; pos++ {
		for i := 0; i < half; i++ {
			s, c := math.Sincos(r.theta(pos, i))
			r.cos[pos*half+i], r.sin[pos*half+i] = float32(c), float32(s)
		}
	}
	return r
}

// HeadDim returns the number of dimensions in one head.
func (r *RoPE) HeadDim() int { return r.headDim }

func (r *RoPE) theta(pos, i int) float64 {
	return float64(pos) * math.Pow(r.base, -2*float64(i)/float64(r.headDim))
}

// Apply rotates each of the nHeads heads of x (nHeads·headDim elements, head
// after head) by the angles of position pos. It panics if len(x) is not
// nHeads·headDim or pos is negative.
func (r *RoPE) Apply(x []float32, nHeads int, pos int) {
	if len(x) != nHeads*r.headDim || pos < 0 {
		panic(fmt.Sprintf("kernel: RoPE.Apply: %d elements for %d heads of %d at position %d", len(x), nHeads, r.headDim, pos))
	}
	half := r.headDim / 2
	var cs, sn []float32
	if pos < r.maxPos {
		cs, sn = r.cos[pos*half:(pos+1)*half], r.sin[pos*half:(pos+1)*half]
	} else {
		cs, sn = make([]float32, half), make([]float32, half)
		for i := range cs {
			s, c := math.Sincos(r.theta(pos, i))
			cs[i], sn[i] = float32(c), float32(s)
		}
	}
	for h := 0; h < nHeads; h++ {
		head := x[h*r.headDim : (h+1)*r.headDim]
		if r.neox {
			ropeHalves(head[:half], head[half:], cs, sn)
		} else {
			ropePairs(head, cs, sn)
		}
	}
}

// ropePairsGeneric rotates the pairs (x[2i], x[2i+1]) by the angles whose
// cosines and sines are cos[i] and sin[i] (LLaMA order).
func ropePairsGeneric(x, cos, sin []float32) {
	x = x[:2*len(cos)]
	sin = sin[:len(cos)]
	for i, c := range cos {
		s := sin[i]
		x0, x1 := x[2*i], x[2*i+1]
		x[2*i] = x0*c - x1*s
		x[2*i+1] = x0*s + x1*c
	}
}

// ropeHalvesGeneric rotates the pairs (a[i], b[i]) by the angles whose
// cosines and sines are cos[i] and sin[i] (NEOX order, a and b the two
// halves of a head).
func ropeHalvesGeneric(a, b, cos, sin []float32) {
	b = b[:len(a)]
	cos, sin = cos[:len(a)], sin[:len(a)]
	for i, x0 := range a {
		x1, c, s := b[i], cos[i], sin[i]
		a[i] = x0*c - x1*s
		b[i] = x0*s + x1*c
	}
}
