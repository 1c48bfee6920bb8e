package engine

import (
	"math"
	"testing"

	"github.com/dfill/dfill/engine/gguf"
	"github.com/dfill/dfill/engine/kernel"
)

// referenceLogits is a plainly written float64 forward pass of m over
// tokens, straight from DESIGN.md: it shares nothing with forward.go but the
// dequantized weights. A product with a Q8_0 weight first rounds its input
// as the kernels do (blocks of 32 values, each q·amax/127 with q an integer).
func referenceLogits(t *testing.T, m *Model, tokens []int32) [][]float64 {
	t.Helper()
	c := m.Config
	T, hd := len(tokens), c.HeadDim
	type matrix struct {
		w  [][]float64
		q8 bool // the input is quantized to Q8_0 blocks
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
		return matrix{out, w.Type == gguf.TypeQ8_0}
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
	for _, L := range m.Layers {
		wq, wk, wv, wo := deq(L.Q), deq(L.K), deq(L.V), deq(L.Out)
		wg, wu, wd := deq(L.Gate), deq(L.Up), deq(L.Down)
		q, k, v := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for i := range x {
			h := rms(x[i], L.AttnNorm)
			q[i], k[i], v[i] = matvec(wq, h), matvec(wk, h), matvec(wv, h)
			if L.QBias != nil {
				addBias(q[i], L.QBias)
				addBias(k[i], L.KBias)
				addBias(v[i], L.VBias)
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
			h := rms(x[i], L.FFNNorm)
			g, u := matvec(wg, h), matvec(wu, h)
			for j := range g {
				g[j] = g[j] / (1 + math.Exp(-g[j])) * u[j]
			}
			d := matvec(wd, g)
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
