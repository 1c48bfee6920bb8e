package engine

import (
	"github.com/dfill/dfill/engine/kernel"
)

// Routed experts (llada-moe, rnd1), as llama.cpp's build_moe_ffn computes
// them with softmax gating: the router's logits over the experts, softmax,
// the ExpertsUsed most probable experts, their probabilities as weights
// (renormalised to sum to 1 for rnd1, the sum clamped below at 2⁻¹⁴ as
// llama.cpp does), and the weighted sum of those experts' SwiGLU FFNs.
//
// The rows routed to one expert are gathered and multiplied together, so a
// pass reads only the weights of the experts its rows chose, each once.

// moeWork holds one forward's routing and the experts' activations.
type moeWork struct {
	router []float32 // (rows, experts): logits, then probabilities
	choice []int32   // (rows, used): the chosen experts
	weight []float32 // (rows, used): their weights
	start  []int     // experts+1: where each expert's routes start in order
	next   []int     // experts: the next free slot of each expert's routes
	order  []int32   // routes (row·used + slot) grouped by expert
	xe, ye []float32 // (n, dim): an expert's gathered rows and its output
	gate   []float32 // (n, expffn)
	up     []float32 // (n, expffn)
	out    []float32 // (rows, dim): the weighted sum
}

// minExpertWeightSum is the least sum renormalised expert weights are
// divided by: llama.cpp's clamp, the smallest normal float16.
const minExpertWeightSum = 6.103515625e-5

// experts runs block L's routed experts over the first rows of ws.h (rows,
// dim), the normalised FFN input, and leaves their weighted sum in ws.h.
func (m *Model) experts(ws *workspace, L *Layer, rows int) {
	c := m.Config
	w := &ws.moe
	E, k := c.Experts, c.ExpertsUsed
	w.router = grow(w.router, rows*E)
	kernel.MatMul(m.pool, w.router, ws.h[:rows*c.Dim], rows, L.Router)
	w.choice = growInt32(w.choice, rows*k)
	w.weight = grow(w.weight, rows*k)
	for r := 0; r < rows; r++ {
		route(w.router[r*E:(r+1)*E], w.choice[r*k:(r+1)*k], w.weight[r*k:(r+1)*k], c.NormExpertWeights())
	}

	// Group the routes by expert (a counting sort, stable in row order).
	w.start = growInt(w.start, E+1)
	clear(w.start)
	for _, e := range w.choice[:rows*k] {
		w.start[e+1]++
	}
	for e := 0; e < E; e++ {
		w.start[e+1] += w.start[e]
	}
	w.order = growInt32(w.order, rows*k)
	w.next = append(w.next[:0], w.start[:E]...)
	for i, e := range w.choice[:rows*k] {
		w.order[w.next[e]] = int32(i)
		w.next[e]++
	}

	w.out = grow(w.out, rows*c.Dim)
	clear(w.out)
	for e := 0; e < E; e++ {
		routes := w.order[w.start[e]:w.start[e+1]]
		for len(routes) > 0 {
			n := min(len(routes), ffnChunk)
			m.runExpert(ws, L.experts[e], routes[:n])
			routes = routes[n:]
		}
	}
	copy(ws.h[:rows*c.Dim], w.out)
}

// runExpert runs one expert over the rows of the given routes and adds its
// output, weighted, to those rows of ws.moe.out.
func (m *Model) runExpert(ws *workspace, ex expert, routes []int32) {
	c := m.Config
	w := &ws.moe
	k, n, dim, ffn := c.ExpertsUsed, len(routes), c.Dim, c.ExpertFFN
	w.xe = grow(w.xe, n*dim)
	w.ye = grow(w.ye, n*dim)
	w.gate = grow(w.gate, n*ffn)
	w.up = grow(w.up, n*ffn)
	for i, rt := range routes {
		r := int(rt) / k
		copy(w.xe[i*dim:(i+1)*dim], ws.h[r*dim:(r+1)*dim])
	}
	kernel.MatMulShared(m.pool, w.xe, n, kernel.Product{Out: w.gate, W: ex.gate}, kernel.Product{Out: w.up, W: ex.up})
	m.rowLoop(n, func(lo, hi int) {
		kernel.SwiGLU(w.gate[lo*ffn:hi*ffn], w.gate[lo*ffn:hi*ffn], w.up[lo*ffn:hi*ffn])
	})
	kernel.MatMul(m.pool, w.ye, w.gate, n, ex.down)
	for i, rt := range routes {
		r := int(rt) / k
		kernel.Axpy(w.weight[rt], w.ye[i*dim:(i+1)*dim], w.out[r*dim:(r+1)*dim])
	}
}

// route turns one row's router logits into probabilities (in place) and
// picks the len(choice) most probable experts, the lower index first among
// equals, with their probabilities as weights, renormalised when norm.
func route(logits []float32, choice []int32, weight []float32, norm bool) {
	kernel.Softmax(logits)
	for j := range choice {
		best := -1
		for e, p := range logits {
			if (best < 0 || p > logits[best]) && !chosen(choice[:j], e) {
				best = e
			}
		}
		choice[j], weight[j] = int32(best), logits[best]
	}
	if !norm {
		return
	}
	var sum float32
	for _, v := range weight {
		sum += v
	}
	sum = max(sum, minExpertWeightSum)
	for j := range weight {
		weight[j] /= sum
	}
}

func chosen(choice []int32, e int) bool {
	for _, c := range choice {
		if int(c) == e {
			return true
		}
	}
	return false
}

func growInt32(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n)
	}
	return s[:n]
}

func growInt(s []int, n int) []int {
	if cap(s) < n {
		return make([]int, n)
	}
	return s[:n]
}
