package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dfill/dfill/engine/kernel"
)

// The backward of every op is checked in float64 against central finite
// differences of L = Σ r·y for a random r: with h = 1e-5 the difference
// quotient is accurate to about 1e-9, so the stated tolerance (1e-6
// absolute plus 1e-5 relative) only lets rounding through.

const (
	fdStep   = 1e-5
	fdAbsTol = 1e-6
	fdRelTol = 1e-5
)

func randVec(rng *rand.Rand, n int, sd float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = sd * rng.NormFloat64()
	}
	return v
}

// checkGrad compares got, the analytic gradient of loss with respect to x,
// with central differences, perturbing x in place.
func checkGrad(t *testing.T, what string, x, got []float64, loss func() float64) {
	t.Helper()
	if len(x) != len(got) {
		t.Fatalf("%s: %d values, %d gradients", what, len(x), len(got))
	}
	bad := 0
	for i := range x {
		old := x[i]
		x[i] = old + fdStep
		lp := loss()
		x[i] = old - fdStep
		lm := loss()
		x[i] = old
		num := (lp - lm) / (2 * fdStep)
		if math.Abs(num-got[i]) > fdAbsTol+fdRelTol*math.Abs(num) {
			if bad++; bad <= 5 {
				t.Errorf("%s[%d]: analytic %.10g, numeric %.10g", what, i, got[i], num)
			}
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d of %d gradients wrong", what, bad, len(x))
	}
}

func dotAll(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func TestOpGradients(t *testing.T) {
	pool := kernel.NewPool(2)
	defer pool.Close()
	var s scratch[float64]
	tests := []struct {
		name string
		run  func(t *testing.T, rng *rand.Rand)
	}{
		{"linear", func(t *testing.T, rng *rand.Rand) {
			n, in, out := 5, 7, 3
			x, w, r := randVec(rng, n*in, 1), randVec(rng, out*in, 1), randVec(rng, n*out, 1)
			y := make([]float64, n*out)
			loss := func() float64 { matMul(pool, y, x, n, w, out, in); return dotAll(r, y) }
			dx, dw := make([]float64, n*in), make([]float64, out*in)
			linearBackward(pool, &s, dx, dw, r, x, w, n, in, out)
			checkGrad(t, "dx", x, dx, loss)
			checkGrad(t, "dw", w, dw, loss)
		}},
		{"rmsnorm", func(t *testing.T, rng *rand.Rand) {
			n, d := 4, 6
			x, g, r := randVec(rng, n*d, 1), randVec(rng, d, 1), randVec(rng, n*d, 1)
			y, inv := make([]float64, n*d), make([]float64, n)
			loss := func() float64 { rmsNorm(pool, y, inv, x, g, n, d, 1e-5); return dotAll(r, y) }
			loss()
			dx, dg := make([]float64, n*d), make([]float64, d)
			rmsNormBackward(pool, dx, dg, r, x, g, inv, n, d)
			checkGrad(t, "dx", x, dx, loss)
			checkGrad(t, "dg", g, dg, loss)
		}},
		{"rope", func(t *testing.T, rng *rand.Rand) {
			n, seq, hd, nh, off, stride := 6, 3, 4, 2, 2, 12
			rp := newRope[float64](hd, seq, 10000)
			x, r := randVec(rng, n*stride, 1), randVec(rng, n*stride, 1)
			y := make([]float64, len(x))
			loss := func() float64 {
				copy(y, x)
				rp.apply(pool, y, n, stride, off, nh, seq, false)
				return dotAll(r, y)
			}
			dx := append([]float64(nil), r...)
			rp.apply(pool, dx, n, stride, off, nh, seq, true)
			checkGrad(t, "dx", x, dx, loss)
		}},
		{"attention", func(t *testing.T, rng *rand.Rand) {
			a := attnShape{batch: 2, seq: 5, heads: 4, kvHeads: 2, headDim: 4}
			n := a.batch * a.seq
			qkv, r := randVec(rng, n*a.stride(), 1), randVec(rng, n*a.qDim(), 1)
			out, probs := make([]float64, n*a.qDim()), make([]float64, a.batch*a.heads*a.seq*a.seq)
			var sp attnScratchPool[float64]
			loss := func() float64 { attention(pool, &sp, out, probs, qkv, a); return dotAll(r, out) }
			loss()
			dqkv := make([]float64, len(qkv))
			attentionBackward(pool, &sp, dqkv, r, probs, qkv, a)
			checkGrad(t, "dqkv", qkv, dqkv, loss)
		}},
		{"swiglu", func(t *testing.T, rng *rand.Rand) {
			n, f := 3, 5
			gu, r := randVec(rng, n*2*f, 2), randVec(rng, n*f, 1)
			act := make([]float64, n*f)
			loss := func() float64 { swiglu(pool, act, gu, n, f); return dotAll(r, act) }
			dgu := make([]float64, len(gu))
			swigluBackward(pool, dgu, r, gu, n, f)
			checkGrad(t, "dgu", gu, dgu, loss)
		}},
		{"cross-entropy", func(t *testing.T, rng *rand.Rand) {
			n, v := 4, 7
			logits := randVec(rng, n*v, 2)
			tgt := []int32{0, 6, 3, 3}
			w := []float32{1, 0.5, 2, 0.25}
			work, rowLoss := make([]float64, n*v), make([]float64, n)
			loss := func() float64 {
				copy(work, logits)
				return crossEntropy(pool, work, tgt, w, rowLoss, n, v, false)
			}
			copy(work, logits)
			crossEntropy(pool, work, tgt, w, rowLoss, n, v, true)
			checkGrad(t, "dlogits", logits, append([]float64(nil), work...), loss)
		}},
		{"embedding", func(t *testing.T, rng *rand.Rand) {
			vocab, d := 5, 3
			tok := []int32{1, 4, 1, 0, 1}
			emb, r := randVec(rng, vocab*d, 1), randVec(rng, len(tok)*d, 1)
			x := make([]float64, len(tok)*d)
			loss := func() float64 { embed(x, emb, tok, d); return dotAll(r, x) }
			demb := make([]float64, len(emb))
			embedBackward(demb, r, tok, d)
			checkGrad(t, "demb", emb, demb, loss)
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, rand.New(rand.NewPCG(uint64(i), 1)))
		})
	}
}

// TestMatMulF32 checks the float32 path of matMul and transpose (the
// engine's kernels) against the float64 loops, on shapes that are not
// multiples of any vector width. Tolerance: 1e-5 relative to the row's
// magnitude, float32 rounding over sums of up to 37 terms.
func TestMatMulF32(t *testing.T) {
	pool := kernel.NewPool(3)
	defer pool.Close()
	rng := rand.New(rand.NewPCG(7, 7))
	tests := []struct {
		name          string
		m, rows, cols int
	}{
		{"small", 3, 5, 7},
		{"tall", 37, 4, 33},
		{"wide", 2, 65, 17},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x64, w64 := randVec(rng, tt.m*tt.cols, 1), randVec(rng, tt.rows*tt.cols, 1)
			x32, w32 := to32(x64), to32(w64)
			want := make([]float64, tt.m*tt.rows)
			matMul(pool, want, x64, tt.m, w64, tt.rows, tt.cols)
			got := make([]float32, tt.m*tt.rows+1)
			got[len(got)-1] = 42 // guard
			matMul(pool, got, x32, tt.m, w32, tt.rows, tt.cols)
			for i, v := range want {
				if math.Abs(float64(got[i])-v) > 1e-5*math.Sqrt(float64(tt.cols)) {
					t.Fatalf("out[%d] = %g, want %g", i, got[i], v)
				}
			}
			if got[len(got)-1] != 42 {
				t.Fatal("matMul wrote past its output")
			}
			tr := make([]float32, len(x32))
			transpose(pool, tr, x32, tt.m, tt.cols)
			for i := 0; i < tt.m; i++ {
				for j := 0; j < tt.cols; j++ {
					if tr[j*tt.m+i] != x32[i*tt.cols+j] {
						t.Fatalf("transpose[%d][%d] = %g, want %g", j, i, tr[j*tt.m+i], x32[i*tt.cols+j])
					}
				}
			}
		})
	}
}

func to32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

// TestFastExp compares fastExp with math.Exp over float32's range: within
// 3e-7 relative (about 2.5 ulp), 0 below the smallest normal, +Inf above
// the largest float32.
func TestFastExp(t *testing.T) {
	tests := []struct {
		name   string
		lo, hi float32
	}{
		{"softmax range", -30, 0},
		{"around zero", -1, 1},
		{"full range", -87, 88.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := 0; i <= 100000; i++ {
				x := tt.lo + (tt.hi-tt.lo)*float32(i)/100000
				want := math.Exp(float64(x))
				if got := float64(fastExp(x)); math.Abs(got-want) > 3e-7*want {
					t.Fatalf("fastExp(%g) = %g, want %g (relative error %.2g)", x, got, want, math.Abs(got-want)/want)
				}
			}
		})
	}
	for _, c := range []struct{ x, want float32 }{{-100, 0}, {100, float32(math.Inf(1))}, {0, 1}} {
		if got := fastExp(c.x); got != c.want {
			t.Errorf("fastExp(%g) = %g, want %g", c.x, got, c.want)
		}
	}
}
