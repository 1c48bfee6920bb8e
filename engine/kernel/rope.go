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
	if pos >= r.maxPos {
		for i := 0; i < half; i++ {
			s, c := math.Sincos(r.theta(pos, i))
			r.rotate(x, nHeads, i, float32(c), float32(s))
		}
		return
	}
	cs := r.cos[pos*half : (pos+1)*half]
	sn := r.sin[pos*half : (pos+1)*half]
	for i := range cs {
		r.rotate(x, nHeads, i, cs[i], sn[i])
	}
}

// rotate turns pair i of every head by the angle with cosine c and sine s.
func (r *RoPE) rotate(x []float32, nHeads, i int, c, s float32) {
	a, b := 2*i, 2*i+1
	if r.neox {
		a, b = i, i+r.headDim/2
	}
	for h := 0; h < nHeads; h++ {
		head := x[h*r.headDim : (h+1)*r.headDim]
		x0, x1 := head[a], head[b]
		head[a] = x0*c - x1*s
		head[b] = x0*s + x1*c
	}
}
