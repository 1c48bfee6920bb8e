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

// dotFor returns the dot product for T: the engine's kernel.Dot (and its
// assembly) for float32, a plain loop for float64.
func dotFor[T Float]() func(a, b []T) T {
	var f any = kernel.Dot
	if d, ok := f.(func(a, b []T) T); ok {
		return d
	}
	return dotGeneric[T]
}

// axpyFor returns y += alpha·x for T: kernel.Axpy for float32.
func axpyFor[T Float]() func(alpha T, x, y []T) {
	var f any = kernel.Axpy
	if a, ok := f.(func(alpha T, x, y []T)); ok {
		return a
	}
	return axpyGeneric[T]
}

func dotGeneric[T Float](a, b []T) T {
	b = b[:len(a)]
	var s T
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

func axpyGeneric[T Float](alpha T, x, y []T) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
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
// in 32×32 tiles so both sides stay in cache.
func transpose[T Float](p *kernel.Pool, dst, src []T, rows, cols int) {
	const tile = 32
	dst, src = dst[:rows*cols], src[:rows*cols]
	p.Run((rows+tile-1)/tile, func(lo, hi int) {
		for b := lo; b < hi; b++ {
			r0, r1 := b*tile, min((b+1)*tile, rows)
			for c0 := 0; c0 < cols; c0 += tile {
				c1 := min(c0+tile, cols)
				for r := r0; r < r1; r++ {
					row := src[r*cols : (r+1)*cols]
					for c := c0; c < c1; c++ {
						dst[c*rows+r] = row[c]
					}
				}
			}
		}
	})
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

// attention computes, for every sequence, head and position i, the
// bidirectional softmax(q_i·Kᵀ/√d)·V over the sequence's positions, writing
// out (batch·seq, qDim) and the attention probabilities to probs (batch,
// heads, seq, seq). Query head h reads key/value head h/(heads/kvHeads).
func attention[T Float](p *kernel.Pool, out, probs, qkv []T, a attnShape) {
	dot, axpy := dotFor[T](), axpyFor[T]()
	hd, qDim, kvDim, stride, n := a.headDim, a.qDim(), a.kvDim(), a.stride(), a.seq
	group := a.heads / a.kvHeads
	scale := T(1 / math.Sqrt(float64(hd)))
	p.Run(a.batch*a.heads, func(lo, hi int) {
		for item := lo; item < hi; item++ {
			b, h := item/a.heads, item%a.heads
			kOff, vOff := qDim+(h/group)*hd, qDim+kvDim+(h/group)*hd
			base := b * n
			for i := 0; i < n; i++ {
				q := qkv[(base+i)*stride+h*hd:][:hd]
				pr := probs[((b*a.heads+h)*n+i)*n:][:n]
				mx := T(math.Inf(-1))
				for j := range pr {
					s := dot(q, qkv[(base+j)*stride+kOff:][:hd]) * scale
					pr[j] = s
					mx = max(mx, s)
				}
				var sum float64
				for j, s := range pr {
					e := T(math.Exp(float64(s - mx)))
					pr[j] = e
					sum += float64(e)
				}
				inv := T(1 / sum)
				o := out[(base+i)*qDim+h*hd:][:hd]
				clear(o)
				for j := range pr {
					pr[j] *= inv
					axpy(pr[j], qkv[(base+j)*stride+vOff:][:hd], o)
				}
			}
		}
	})
}

// attentionBackward writes dqkv (batch·seq, stride), the gradient with
// respect to the (rotated) queries, keys and values, from dout (batch·seq,
// qDim) and what attention kept. With P the probabilities and S the scaled
// scores:
//
//	dV_j = Σ_i P_ij·dO_i
//	dP_ij = dO_i·V_j,  dS_ij = P_ij·(dP_ij − Σ_k P_ik·dP_ik)
//	dQ_i = Σ_j dS_ij·K_j/√d,  dK_j = Σ_i dS_ij·Q_i/√d
//
// Work is split by (sequence, key/value head), so each goroutine owns the
// keys and values it accumulates into.
func attentionBackward[T Float](p *kernel.Pool, dqkv, dout, probs, qkv []T, a attnShape) {
	dot, axpy := dotFor[T](), axpyFor[T]()
	hd, qDim, kvDim, stride, n := a.headDim, a.qDim(), a.kvDim(), a.stride(), a.seq
	group := a.heads / a.kvHeads
	scale := T(1 / math.Sqrt(float64(hd)))
	p.Run(a.batch*a.kvHeads, func(lo, hi int) {
		dp := make([]T, n)
		for item := lo; item < hi; item++ {
			b, g := item/a.kvHeads, item%a.kvHeads
			kOff, vOff := qDim+g*hd, qDim+kvDim+g*hd
			base := b * n
			for j := 0; j < n; j++ {
				clear(dqkv[(base+j)*stride+kOff:][:hd])
				clear(dqkv[(base+j)*stride+vOff:][:hd])
			}
			for h := g * group; h < (g+1)*group; h++ {
				for i := 0; i < n; i++ {
					do := dout[(base+i)*qDim+h*hd:][:hd]
					pr := probs[((b*a.heads+h)*n+i)*n:][:n]
					var dsum float64
					for j := range dp {
						dp[j] = dot(do, qkv[(base+j)*stride+vOff:][:hd])
						dsum += float64(pr[j]) * float64(dp[j])
					}
					q := qkv[(base+i)*stride+h*hd:][:hd]
					dq := dqkv[(base+i)*stride+h*hd:][:hd]
					clear(dq)
					for j, pj := range pr {
						ds := pj * (dp[j] - T(dsum)) * scale
						row := (base + j) * stride
						axpy(ds, qkv[row+kOff:][:hd], dq)
						axpy(ds, q, dqkv[row+kOff:][:hd])
						axpy(pj, do, dqkv[row+vOff:][:hd])
					}
				}
			}
		}
	})
}

// swiglu writes act (n, f) = silu(gate)·up, where gu (n, 2f) holds each
// row's gate then its up projection, and silu(x) = x·σ(x).
func swiglu[T Float](p *kernel.Pool, act, gu []T, n, f int) {
	p.Run(n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			gate, up, out := gu[2*r*f:(2*r+1)*f], gu[(2*r+1)*f:(2*r+2)*f], act[r*f:(r+1)*f]
			for i, g := range gate {
				out[i] = g / (1 + T(math.Exp(float64(-g)))) * up[i]
			}
		}
	})
}

// swigluBackward writes dgu (n, 2f) from dact (n, f): with σ = σ(gate),
//
//	dgate = dact·up·σ·(1 + gate·(1−σ)),  dup = dact·gate·σ
func swigluBackward[T Float](p *kernel.Pool, dgu, dact, gu []T, n, f int) {
	p.Run(n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			gate, up := gu[2*r*f:(2*r+1)*f], gu[(2*r+1)*f:(2*r+2)*f]
			dg, du, da := dgu[2*r*f:(2*r+1)*f], dgu[(2*r+1)*f:(2*r+2)*f], dact[r*f:(r+1)*f]
			for i, g := range gate {
				sg := 1 / (1 + T(math.Exp(float64(-g))))
				du[i] = da[i] * g * sg
				dg[i] = da[i] * up[i] * sg * (1 + g*(1-sg))
			}
		}
	})
}

// crossEntropy returns Σ_r w_r·(logsumexp(logits_r) − logits_r[tgt_r]) over
// the n rows of logits (n, v), with each row's term in rowLoss (n). When
// grad is set it overwrites logits with the gradient, w_r·(softmax(logits_r)
// − onehot(tgt_r)).
func crossEntropy[T Float](p *kernel.Pool, logits []T, tgt []int32, w []float32, rowLoss []float64, n, v int, grad bool) float64 {
	p.Run(n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := logits[r*v : (r+1)*v]
			mx := row[0]
			for _, x := range row {
				mx = max(mx, x)
			}
			var sum float64
			for _, x := range row {
				sum += math.Exp(float64(x - mx))
			}
			lse := float64(mx) + math.Log(sum)
			t := tgt[r]
			rowLoss[r] = float64(w[r]) * (lse - float64(row[t]))
			if !grad {
				continue
			}
			wr := float64(w[r])
			for i, x := range row {
				row[i] = T(wr * math.Exp(float64(x)-lse))
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
