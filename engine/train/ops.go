package train

import (
	"math"

	"github.com/dfill/dfill/engine/kernel"
)

// Float is the element type of a model: float32 to train, float64 to check
// gradients against finite differences with the same code.
type Float interface{ float32 | float64 }

// Each op below is a forward function and a backward function. Shapes are
// written as llm.c writes them: x (n, d) is n rows of d elements,
// row-major. A backward function takes the gradient of the loss with
// respect to the op's output (dy) and what the forward kept, and writes or
// adds (as its comment says) the gradients with respect to its inputs and
// weights.

// scratch holds reusable buffers for the ops' temporaries, indexed by slot.
type scratch[T Float] struct{ bufs [4][]T }

// get returns buffer slot i with n elements (contents undefined).
func (s *scratch[T]) get(i, n int) []T {
	if cap(s.bufs[i]) < n {
		s.bufs[i] = make([]T, n)
	}
	return s.bufs[i][:n]
}

// grow returns b with n elements, reallocated only when it is too short.
func grow[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	return b[:n]
}

// expFor returns e^x for T: fastExp for float32, math.Exp for float64.
func expFor[T Float]() func(x T) T {
	var f any = fastExp
	if e, ok := f.(func(x T) T); ok {
		return e
	}
	return func(x T) T { return T(math.Exp(float64(x))) }
}

// fastExp returns e^x to within about 2 ulp of float32 (cephes' expf):
// x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two, so r is exact), e^r
// by its Taylor series to r⁶ (error below 2e-7), scaled by 2^n. It is
// several times faster than math.Exp, which works in float64.
func fastExp(x float32) float32 {
	switch {
	case x > 88.72:
		return float32(math.Inf(1))
	case x < -87.33:
		return 0 // below the smallest normal float32
	case x != x:
		return x
	}
	n := float32(math.Floor(float64(x*1.442695041 + 0.5)))
	r := x - n*0.693359375 + n*2.12194440e-4
	p := 1 + r*(1+r*(0.5+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720))))))
	if n > 127 { // 2^n itself overflows though p·2^n may not
		return 2 * p * math.Float32frombits(uint32(int32(n)+126)<<23)
	}
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}

func dotGeneric[T Float](a, b []T) T {
	b = b[:len(a)]
	var s T
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

// matMul computes out (m, rows) = x (m, cols) · wᵀ for w (rows, cols):
// kernel.MatMulF32 for float32, a parallel loop for float64.
func matMul[T Float](p *kernel.Pool, out, x []T, m int, w []T, rows, cols int) {
	if o, ok := any(out).([]float32); ok {
		kernel.MatMulF32(p, o, any(x).([]float32), m, any(w).([]float32), rows, cols)
		return
	}
	out, x, w = out[:m*rows], x[:m*cols], w[:rows*cols]
	p.Run(m, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			xi := x[i*cols : (i+1)*cols]
			for r := 0; r < rows; r++ {
				out[i*rows+r] = dotGeneric(xi, w[r*cols:(r+1)*cols])
			}
		}
	})
}

// transpose writes the (cols, rows) transpose of src (rows, cols) to dst,
// in strips of 8 rows, 8×8 tiles unrolled. Small tiles matter: with rows a
// multiple of 1024, the rows of a tile of dst lie 4 KiB apart, in one L1
// set, and tiles of more than 8 rows (the ways of a set) evict each other
// (32×32 tiles are 4× slower for 1024×768).
func transpose[T Float](p *kernel.Pool, dst, src []T, rows, cols int) {
	dst, src = dst[:rows*cols], src[:rows*cols]
	p.Run((rows+7)/8, func(lo, hi int) {
		for b := lo; b < hi; b++ {
			r0 := 8 * b
			if r0+8 > rows {
				transposeBlock(dst, src, rows, cols, r0, rows, 0)
				continue
			}
			c0 := 0
			for ; c0+8 <= cols; c0 += 8 {
				i := r0*cols + c0
				s0 := src[i : i+8 : i+8]
				s1 := src[i+cols : i+cols+8 : i+cols+8]
				s2 := src[i+2*cols : i+2*cols+8 : i+2*cols+8]
				s3 := src[i+3*cols : i+3*cols+8 : i+3*cols+8]
				s4 := src[i+4*cols : i+4*cols+8 : i+4*cols+8]
				s5 := src[i+5*cols : i+5*cols+8 : i+5*cols+8]
				s6 := src[i+6*cols : i+6*cols+8 : i+6*cols+8]
				s7 := src[i+7*cols : i+7*cols+8 : i+7*cols+8]
				for c := 0; c < 8; c++ {
					j := (c0+c)*rows + r0
					d := dst[j : j+8 : j+8]
					d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = s0[c], s1[c], s2[c], s3[c], s4[c], s5[c], s6[c], s7[c]
				}
			}
			transposeBlock(dst, src, rows, cols, r0, r0+8, c0)
		}
	})
}

// transposeBlock transposes rows [r0, r1), columns [c0, cols) of src.
func transposeBlock[T Float](dst, src []T, rows, cols, r0, r1, c0 int) {
	for r := r0; r < r1; r++ {
		for c := c0; c < cols; c++ {
			dst[c*rows+r] = src[r*cols+c]
		}
	}
}

// linearBackward is the backward of y (n, out) = x (n, in) · wᵀ for w
// (out, in): it writes dw = dyᵀ·x (out, in) and, when dx is not nil,
// dx = dy·w (n, in). Both products run on matMul by transposing: dw is
// (dyᵀ)·(xᵀ)ᵀ and dx is dy·(wᵀ)ᵀ.
func linearBackward[T Float](p *kernel.Pool, s *scratch[T], dx, dw, dy, x, w []T, n, in, out int) {
	dyT := s.get(0, out*n)
	transpose(p, dyT, dy, n, out)
	xT := s.get(1, in*n)
	transpose(p, xT, x, n, in)
	matMul(p, dw, dyT, out, xT, in, n)
	if dx != nil {
		wT := s.get(2, in*out)
		transpose(p, wT, w, out, in)
		matMul(p, dx, dy, n, wT, in, out)
	}
}

// rmsNorm writes y = x / rms(x) · g for each row of x (n, d), where
// rms(x) = sqrt(mean(x²) + eps), and 1/rms of each row to inv (n).
func rmsNorm[T Float](p *kernel.Pool, y, inv, x, g []T, n, d int, eps float64) {
	p.Run(n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, yr := x[r*d:(r+1)*d], y[r*d:(r+1)*d]
			var ss float64
			for _, v := range xr {
				ss += float64(v) * float64(v)
			}
			s := T(1 / math.Sqrt(ss/float64(d)+eps))
			inv[r] = s
			for i, v := range xr {
				yr[i] = v * s * g[i]
			}
		}
	})
}

// rmsNormBackward adds to dx (n, d) and dg (d) the gradients through
// y = rmsNorm(x, g): with s = 1/rms(x),
//
//	dx_i += s·g_i·dy_i − s³/d · x_i · Σ_j g_j·dy_j·x_j
//	dg_i += Σ_rows dy_i·x_i·s
func rmsNormBackward[T Float](p *kernel.Pool, dx, dg, dy, x, g, inv []T, n, d int) {
	p.Run(n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, dyr, dxr := x[r*d:(r+1)*d], dy[r*d:(r+1)*d], dx[r*d:(r+1)*d]
			s := inv[r]
			var dot float64
			for j, v := range xr {
				dot += float64(g[j]*dyr[j]) * float64(v)
			}
			c := T(dot/float64(d)) * s * s * s
			for j, v := range xr {
				dxr[j] += s*g[j]*dyr[j] - c*v
			}
		}
	})
	// dg sums over rows: one pass, in row order, so it is deterministic.
	for r := 0; r < n; r++ {
		xr, dyr, s := x[r*d:(r+1)*d], dy[r*d:(r+1)*d], inv[r]
		for j, v := range xr {
			dg[j] += dyr[j] * v * s
		}
	}
}

// rope holds the rotary embedding angles of positions [0, maxPos): θ_i =
// pos·base^(-2i/headDim), as kernel.RoPE computes them, in llada's
// adjacent-pair order (dimensions 2i and 2i+1 rotate together).
type rope[T Float] struct {
	headDim  int
	cos, sin []T // (maxPos, headDim/2)
}

func newRope[T Float](headDim, maxPos int, base float64) rope[T] {
	half := headDim / 2
	r := rope[T]{headDim: headDim, cos: make([]T, maxPos*half), sin: make([]T, maxPos*half)}
	for pos := 0; pos < maxPos; pos++ {
		for i := 0; i < half; i++ {
			s, c := math.Sincos(float64(pos) * math.Pow(base, -2*float64(i)/float64(headDim)))
			r.cos[pos*half+i], r.sin[pos*half+i] = T(c), T(s)
		}
	}
	return r
}

// apply rotates nh heads starting at column off of each of the n rows of x
// (row stride stride); row r is at position r % seqLen. inverse rotates
// by −θ: the backward of a rotation is its transpose.
func (rp rope[T]) apply(p *kernel.Pool, x []T, n, stride, off, nh, seqLen int, inverse bool) {
	half := rp.headDim / 2
	p.Run(n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			pos := r % seqLen
			cs, sn := rp.cos[pos*half:(pos+1)*half], rp.sin[pos*half:(pos+1)*half]
			row := x[r*stride+off : r*stride+off+nh*rp.headDim]
			for h := 0; h < nh; h++ {
				head := row[h*rp.headDim : (h+1)*rp.headDim]
				for i, c := range cs {
					s := sn[i]
					if inverse {
						s = -s
					}
					a, b := head[2*i], head[2*i+1]
					head[2*i] = a*c - b*s
					head[2*i+1] = a*s + b*c
				}
			}
		}
	})
}

// attnShape is the shape of an attention: batch sequences of seq tokens,
// heads query heads and kvHeads key/value heads of headDim each. Queries,
// keys and values are the columns of one qkv matrix (batch·seq, stride):
// q at [0, qDim), k at [qDim, qDim+kvDim), v after.
type attnShape struct {
	batch, seq, heads, kvHeads, headDim int
}

func (a attnShape) qDim() int   { return a.heads * a.headDim }
func (a attnShape) kvDim() int  { return a.kvHeads * a.headDim }
func (a attnShape) stride() int { return a.qDim() + 2*a.kvDim() }

// attnScratch is one goroutine's buffers for attention: per-head matrices
// gathered out of the strided qkv rows, so that every product is a matMul.
type attnScratch[T Float] struct {
	q, k, v, qT, kT, vT, o, do, doT, dq, dk, dv, tmp []T // (seq, headDim) or (headDim, seq)
	s, sT, pT                                        []T // (seq, seq)
}

// attnScratchPool hands each chunk of an attention's parallel loop a set of
// buffers; there are never more chunks in flight than the pool's threads.
type attnScratchPool[T Float] struct {
	free chan *attnScratch[T]
}

// init makes room for threads sets of buffers; it is called before the
// parallel loop, never inside it.
func (sp *attnScratchPool[T]) init(threads int) {
	if sp.free == nil || cap(sp.free) < threads {
		sp.free = make(chan *attnScratch[T], threads)
	}
}

func (sp *attnScratchPool[T]) get(seq, hd int) *attnScratch[T] {
	var s *attnScratch[T]
	select {
	case s = <-sp.free:
	default:
		s = &attnScratch[T]{}
	}
	n, nn := seq*hd, seq*seq
	for _, b := range []*[]T{&s.q, &s.k, &s.v, &s.qT, &s.kT, &s.vT, &s.o, &s.do, &s.doT, &s.dq, &s.dk, &s.dv, &s.tmp} {
		*b = grow(*b, n)
	}
	for _, b := range []*[]T{&s.s, &s.sT, &s.pT} {
		*b = grow(*b, nn)
	}
	return s
}

func (sp *attnScratchPool[T]) put(s *attnScratch[T]) {
	select {
	case sp.free <- s:
	default:
	}
}

// gather copies the (seq, hd) block of x (rows of stride stride) that
// starts at row base, column off, into dst.
func gather[T Float](dst, x []T, base, seq, stride, off, hd int) {
	for i := 0; i < seq; i++ {
		copy(dst[i*hd:(i+1)*hd], x[(base+i)*stride+off:][:hd])
	}
}

// scatter is gather's inverse: it copies src into the block of x.
func scatter[T Float](x, src []T, base, seq, stride, off, hd int) {
	for i := 0; i < seq; i++ {
		copy(x[(base+i)*stride+off:][:hd], src[i*hd:(i+1)*hd])
	}
}

// attention computes, for every sequence, head and position i, the
// bidirectional softmax(q_i·Kᵀ/√d)·V over the sequence's positions, writing
// out (batch·seq, qDim) and the attention probabilities to probs (batch,
// heads, seq, seq). Query head h reads key/value head h/(heads/kvHeads).
// Each (sequence, head) is one item of the parallel loop, its two
// products S = Q·Kᵀ and O = P·V single-threaded matMuls.
func attention[T Float](p *kernel.Pool, sp *attnScratchPool[T], out, probs, qkv []T, a attnShape) {
	exp := expFor[T]()
	hd, qDim, kvDim, stride, n := a.headDim, a.qDim(), a.kvDim(), a.stride(), a.seq
	group := a.heads / a.kvHeads
	scale := T(1 / math.Sqrt(float64(hd)))
	sp.init(p.Threads())
	p.Run(a.batch*a.heads, func(lo, hi int) {
		s := sp.get(n, hd)
		defer sp.put(s)
		for item := lo; item < hi; item++ {
			b, h := item/a.heads, item%a.heads
			g := h / group
			base := b * n
			gather(s.q, qkv, base, n, stride, h*hd, hd)
			gather(s.k, qkv, base, n, stride, qDim+g*hd, hd)
			gather(s.v, qkv, base, n, stride, qDim+kvDim+g*hd, hd)
			transpose(nil, s.vT, s.v, n, hd)
			pr := probs[(b*a.heads+h)*n*n:][:n*n]
			matMul(nil, pr, s.q, n, s.k, n, hd)
			for i := 0; i < n; i++ {
				row := pr[i*n : (i+1)*n]
				mx := T(math.Inf(-1))
				for _, v := range row {
					mx = max(mx, v)
				}
				var sum float64
				for j, v := range row {
					e := exp((v - mx) * scale)
					row[j] = e
					sum += float64(e)
				}
				inv := T(1 / sum)
				for j := range row {
					row[j] *= inv
				}
			}
			matMul(nil, s.o, pr, n, s.vT, hd, n)
			scatter(out, s.o, base, n, qDim, h*hd, hd)
		}
	})
}

// attentionBackward writes dqkv (batch·seq, stride), the gradient with
// respect to the (rotated) queries, keys and values, from dout (batch·seq,
// qDim) and what attention kept. With P the probabilities:
//
//	dV = Pᵀ·dO,  dP = dO·Vᵀ,  dS = P ⊙ (dP − rowsum(P ⊙ dP)) / √d
//	dQ = dS·K,  dK = dSᵀ·Q
//
// summed over the query heads that share a key/value head. Work is split by
// (sequence, key/value head), so each goroutine owns what it accumulates.
func attentionBackward[T Float](p *kernel.Pool, sp *attnScratchPool[T], dqkv, dout, probs, qkv []T, a attnShape) {
	hd, qDim, kvDim, stride, n := a.headDim, a.qDim(), a.kvDim(), a.stride(), a.seq
	group := a.heads / a.kvHeads
	scale := 1 / math.Sqrt(float64(hd))
	sp.init(p.Threads())
	p.Run(a.batch*a.kvHeads, func(lo, hi int) {
		s := sp.get(n, hd)
		defer sp.put(s)
		for item := lo; item < hi; item++ {
			b, g := item/a.kvHeads, item%a.kvHeads
			base := b * n
			gather(s.k, qkv, base, n, stride, qDim+g*hd, hd)
			gather(s.v, qkv, base, n, stride, qDim+kvDim+g*hd, hd)
			transpose(nil, s.kT, s.k, n, hd)
			clear(s.dk)
			clear(s.dv)
			for h := g * group; h < (g+1)*group; h++ {
				gather(s.q, qkv, base, n, stride, h*hd, hd)
				gather(s.do, dout, base, n, qDim, h*hd, hd)
				transpose(nil, s.qT, s.q, n, hd)
				transpose(nil, s.doT, s.do, n, hd)
				pr := probs[(b*a.heads+h)*n*n:][:n*n]
				dp := s.s
				matMul(nil, dp, s.do, n, s.v, n, hd)
				for i := 0; i < n; i++ {
					prow, drow := pr[i*n:(i+1)*n], dp[i*n:(i+1)*n]
					var dsum float64
					for j, pj := range prow {
						dsum += float64(pj) * float64(drow[j])
					}
					for j, pj := range prow {
						drow[j] = T(float64(pj) * (float64(drow[j]) - dsum) * scale)
					}
				}
				matMul(nil, s.dq, dp, n, s.kT, hd, n)
				scatter(dqkv, s.dq, base, n, stride, h*hd, hd)
				transpose(nil, s.sT, dp, n, n)
				matMul(nil, s.tmp, s.sT, n, s.qT, hd, n)
				addTo(s.dk, s.tmp)
				transpose(nil, s.pT, pr, n, n)
				matMul(nil, s.tmp, s.pT, n, s.doT, hd, n)
				addTo(s.dv, s.tmp)
			}
			scatter(dqkv, s.dk, base, n, stride, qDim+g*hd, hd)
			scatter(dqkv, s.dv, base, n, stride, qDim+kvDim+g*hd, hd)
		}
	})
}

// addTo adds x to dst element by element.
func addTo[T Float](dst, x []T) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] += v
	}
}

// swiglu writes act (n, f) = silu(gate)·up, where gu (n, 2f) holds each
// row's gate then its up projection, and silu(x) = x·σ(x).
func swiglu[T Float](p *kernel.Pool, act, gu []T, n, f int) {
	exp := expFor[T]()
	p.Run(n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			gate, up, out := gu[2*r*f:(2*r+1)*f], gu[(2*r+1)*f:(2*r+2)*f], act[r*f:(r+1)*f]
			for i, g := range gate {
				out[i] = g / (1 + exp(-g)) * up[i]
			}
		}
	})
}

// swigluBackward writes dgu (n, 2f) from dact (n, f): with σ = σ(gate),
//
//	dgate = dact·up·σ·(1 + gate·(1−σ)),  dup = dact·gate·σ
func swigluBackward[T Float](p *kernel.Pool, dgu, dact, gu []T, n, f int) {
	exp := expFor[T]()
	p.Run(n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			gate, up := gu[2*r*f:(2*r+1)*f], gu[(2*r+1)*f:(2*r+2)*f]
			dg, du, da := dgu[2*r*f:(2*r+1)*f], dgu[(2*r+1)*f:(2*r+2)*f], dact[r*f:(r+1)*f]
			for i, g := range gate {
				sg := 1 / (1 + exp(-g))
				du[i] = da[i] * g * sg
				dg[i] = da[i] * up[i] * sg * (1 + g*(1-sg))
			}
		}
	})
}

// crossEntropy returns Σ_r w_r·(logsumexp(logits_r) − logits_r[tgt_r]) over
// the n rows of logits (n, v), with each row's term in rowLoss (n). It
// overwrites logits: with the gradient w_r·(softmax(logits_r) −
// onehot(tgt_r)) when grad is set, else with scratch.
func crossEntropy[T Float](p *kernel.Pool, logits []T, tgt []int32, w []float32, rowLoss []float64, n, v int, grad bool) float64 {
	exp := expFor[T]()
	p.Run(n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := logits[r*v : (r+1)*v]
			t := tgt[r]
			mx := row[0]
			for _, x := range row {
				mx = max(mx, x)
			}
			target := float64(row[t] - mx)
			var sum float64
			for i, x := range row {
				e := exp(x - mx)
				row[i] = e // kept for the gradient
				sum += float64(e)
			}
			wr := float64(w[r])
			rowLoss[r] = wr * (math.Log(sum) - target)
			if !grad {
				continue
			}
			scale := T(wr / sum)
			for i := range row {
				row[i] *= scale
			}
			row[t] -= T(wr)
		}
	})
	var loss float64
	for _, l := range rowLoss[:n] {
		loss += l
	}
	return loss
}

// embed writes row tok[r] of emb (vocab, d) to row r of x (n, d).
func embed[T Float](x, emb []T, tok []int32, d int) {
	for r, t := range tok {
		copy(x[r*d:(r+1)*d], emb[int(t)*d:(int(t)+1)*d])
	}
}

// embedBackward adds row r of dx to row tok[r] of demb.
func embedBackward[T Float](demb, dx []T, tok []int32, d int) {
	for r, t := range tok {
		dst := demb[int(t)*d : (int(t)+1)*d]
		for i, g := range dx[r*d : (r+1)*d] {
			dst[i] += g
		}
	}
}
