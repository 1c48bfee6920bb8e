package engine

import (
	"math"
	"testing"

	"github.com/dfill/dfill/engine/kernel"
)

// referenceLogits is a plainly written float64 forward pass of m over
// tokens, straight from DESIGN.md: it shares nothing with forward.go but the
// dequantized weights. A product whose kernels quantize the activations
// (Q8_0, Q4_K, Q5_K and Q6_K: kernel.QuantizesActivations) first rounds its
// input as they do (blocks of 32 values, each q·amax/127 with q an
// integer).
func referenceLogits(t *testing.T, m *Model, tokens []int32) [][]float64 {
	t.Helper()
	c := m.Config
	T, hd := len(tokens), c.HeadDim
	type matrix struct {
		w  [][]float64
		q8 bool // the input is quantized to Q8_0 blocks (kernel.QuantizesActivations)
	}
	deq := func(w kernel.Matrix) matrix {
		out := make([][]float64, w.Rows)
		f := make([]float32, w.Rows*w.Cols)
		if err := kernel.Dequantize(w.Type, w.Data, f); err != nil {
			t.Fatal(err)
		}
		for r := range out {
			out[r] = make([]float64, w.Cols)
			for j := range out[r] {
				out[r][j] = float64(f[r*w.Cols+j])
			}
		}
		return matrix{out, kernel.QuantizesActivations(w.Type)}
	}
	quantize := func(x []float64) []float64 {
		y := make([]float64, len(x))
		for b := 0; b < len(x); b += 32 {
			var amax float64
			for _, v := range x[b : b+32] {
				amax = math.Max(amax, math.Abs(v))
			}
			for j, v := range x[b : b+32] {
				if amax > 0 {
					y[b+j] = math.RoundToEven(v*127/amax) * amax / 127
				}
			}
		}
		return y
	}
	matvec := func(w matrix, x []float64) []float64 {
		if w.q8 {
			x = quantize(x)
		}
		y := make([]float64, len(w.w))
		for r := range w.w {
			for j, v := range w.w[r] {
				y[r] += v * x[j]
			}
		}
		return y
	}
	rms := func(x []float64, w []float32) []float64 {
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		s := 1 / math.Sqrt(ss/float64(len(x))+float64(c.Eps))
		y := make([]float64, len(x))
		for i := range x {
			y[i] = x[i] * s * float64(w[i])
		}
		return y
	}
	rope := func(x []float64, pos int) {
		for h := 0; h < len(x)/hd; h++ {
			v := x[h*hd : (h+1)*hd]
			for i := 0; i < hd/2; i++ {
				theta := float64(pos) * math.Pow(c.RopeBase, -2*float64(i)/float64(hd))
				a, b := 2*i, 2*i+1 // llada: adjacent pairs
				if c.NeoxRoPE() {
					a, b = i, i+hd/2 // dream: NEOX halves
				}
				x0, x1 := v[a], v[b]
				v[a] = x0*math.Cos(theta) - x1*math.Sin(theta)
				v[b] = x0*math.Sin(theta) + x1*math.Cos(theta)
			}
		}
	}
	addBias := func(x []float64, b []float32) {
		for i := range b {
			x[i] += float64(b[i])
		}
	}

	emb := deq(m.TokenEmbd)
	x := make([][]float64, T)
	for i, tok := range tokens {
		x[i] = append([]float64(nil), emb.w[tok]...)
	}
	headNorm := func(x []float64, w []float32) {
		for h := 0; h < len(x)/hd; h++ {
			copy(x[h*hd:(h+1)*hd], rms(x[h*hd:(h+1)*hd], w))
		}
	}
	swiglu := func(wg, wu, wd matrix, h []float64) []float64 {
		g, u := matvec(wg, h), matvec(wu, h)
		for j := range g {
			g[j] = g[j] / (1 + math.Exp(-g[j])) * u[j]
		}
		return matvec(wd, g)
	}
	for _, L := range m.Layers {
		wq, wk, wv, wo := deq(L.Q), deq(L.K), deq(L.V), deq(L.Out)
		var ffn func(h []float64) []float64
		if c.MoE() {
			ffn = moeReference(c, deq(L.Router), func(e int) [3]matrix {
				ff := c.ExpertFFN
				return [3]matrix{deq(L.GateExps.Slice(e*ff, (e+1)*ff)), deq(L.UpExps.Slice(e*ff, (e+1)*ff)), deq(L.DownExps.Slice(e*c.Dim, (e+1)*c.Dim))}
			}, matvec, swiglu)
		} else {
			wg, wu, wd := deq(L.Gate), deq(L.Up), deq(L.Down)
			ffn = func(h []float64) []float64 { return swiglu(wg, wu, wd, h) }
		}
		q, k, v := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for i := range x {
			h := rms(x[i], L.AttnNorm)
			q[i], k[i], v[i] = matvec(wq, h), matvec(wk, h), matvec(wv, h)
			if L.QBias != nil {
				addBias(q[i], L.QBias)
				addBias(k[i], L.KBias)
				addBias(v[i], L.VBias)
			}
			if L.QNorm != nil {
				headNorm(q[i], L.QNorm)
				headNorm(k[i], L.KNorm)
			}
			rope(q[i], i)
			rope(k[i], i)
		}
		group := c.Heads / c.KVHeads
		for i := range x {
			att := make([]float64, c.Heads*hd)
			for h := 0; h < c.Heads; h++ {
				kvh := h / group
				scores := make([]float64, T)
				maxs := math.Inf(-1)
				for j := 0; j < T; j++ { // bidirectional: every position
					for d := 0; d < hd; d++ {
						scores[j] += q[i][h*hd+d] * k[j][kvh*hd+d]
					}
					scores[j] /= math.Sqrt(float64(hd))
					maxs = math.Max(maxs, scores[j])
				}
				var sum float64
				for j := range scores {
					scores[j] = math.Exp(scores[j] - maxs)
					sum += scores[j]
				}
				for j := range scores {
					for d := 0; d < hd; d++ {
						att[h*hd+d] += scores[j] / sum * v[j][kvh*hd+d]
					}
				}
			}
			o := matvec(wo, att)
			for d := range x[i] {
				x[i][d] += o[d]
			}
			d := ffn(rms(x[i], L.FFNNorm))
			for j := range x[i] {
				x[i][j] += d[j]
			}
		}
	}
	out := deq(m.Output)
	logits := make([][]float64, T)
	for i := range x {
		logits[i] = matvec(out, rms(x[i], m.OutputNorm))
	}
	return logits
}

// moeReference returns the routed-experts FFN of DESIGN.md in float64:
// softmax over the router's logits, the ExpertsUsed most probable experts
// weighted by their probabilities (renormalised for rnd1), each a SwiGLU
// FFN. experts(e) returns expert e's gate, up and down matrices.
func moeReference[M any](c Config, router M, experts func(e int) [3]M,
	matvec func(M, []float64) []float64, swiglu func(g, u, d M, h []float64) []float64) func([]float64) []float64 {
	return func(h []float64) []float64 {
		logits := matvec(router, h)
		mx := math.Inf(-1)
		for _, v := range logits {
			mx = math.Max(mx, v)
		}
		var sum float64
		p := make([]float64, len(logits))
		for e, v := range logits {
			p[e] = math.Exp(v - mx)
			sum += p[e]
		}
		for e := range p {
			p[e] /= sum
		}
		taken := make([]bool, len(p))
		var chosen []int
		var wsum float64
		for range c.ExpertsUsed {
			best := -1
			for e := range p {
				if !taken[e] && (best < 0 || p[e] > p[best]) {
					best = e
				}
			}
			taken[best] = true
			chosen = append(chosen, best)
			wsum += p[best]
		}
		out := make([]float64, c.Dim)
		for _, e := range chosen {
			w := p[e]
			if c.NormExpertWeights() {
				w /= wsum
			}
			ws := experts(e)
			y := swiglu(ws[0], ws[1], ws[2], h)
			for j := range out {
				out[j] += w * y[j]
			}
		}
		return out
	}
}
