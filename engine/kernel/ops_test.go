package kernel

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

// sizes are awkward lengths for the vector ops: odd, prime, not a multiple
// of any vector width, and one typical hidden size.
var sizes = []int{1, 3, 7, 33, 127, 896, 1000}

// checkRel fails t unless got is within tol·scale of want for every element.
func checkRel(t *testing.T, got []float32, want []float64, tol, scale float64) {
	t.Helper()
	for i := range want {
		if d := math.Abs(float64(got[i]) - want[i]); !(d <= tol*scale) {
			t.Fatalf("element %d: %g, want %g (error %.2e, tolerance %.1e·%g)", i, got[i], want[i], d, tol, scale)
		}
	}
}

// TestDot: tolerance 1e-5 of Σ|a·b| (float32 accumulation over ≤ 1000 terms),
// for every kernel variant.
func TestDot(t *testing.T) {
	forEachVariant(t, testDot)
}

func testDot(t *testing.T, _ string) {
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			a, b := gaussian(newRand(uint64(n)), n), gaussian(newRand(uint64(n+1)), n)
			var ref, mag float64
			for i := range a {
				ref += float64(a[i]) * float64(b[i])
				mag += math.Abs(float64(a[i]) * float64(b[i]))
			}
			checkRel(t, []float32{Dot(a, b)}, []float64{ref}, 1e-5, mag)
		})
	}
}

// TestAxpy: tolerance 1e-6 relative to |y|+|αx| (one product and one sum in
// float32, or one fused multiply-add), for every kernel variant.
func TestAxpy(t *testing.T) {
	forEachVariant(t, testAxpy)
}

func testAxpy(t *testing.T, _ string) {
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			x := gaussian(newRand(uint64(n)), n)
			y, check := guarded(t, n)
			copy(y, gaussian(newRand(uint64(n+1)), n))
			const alpha = -0.7
			want := make([]float64, n)
			for i := range want {
				want[i] = float64(y[i]) + alpha*float64(x[i])
			}
			Axpy(alpha, x, y)
			check()
			for i := range want {
				scale := math.Abs(float64(y[i])) + math.Abs(alpha*float64(x[i])) + 1
				checkRel(t, y[i:i+1], want[i:i+1], 1e-6, scale)
			}
		})
	}
}

// TestRMSNorm: tolerance 1e-6 relative per element (the sum is in float64,
// then three float32 roundings).
func TestRMSNorm(t *testing.T) {
	forEachVariant(t, testRMSNorm)
}

func testRMSNorm(t *testing.T, _ string) {
	const eps = 1e-6
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			x, w := gaussian(newRand(uint64(n)), n), gaussian(newRand(uint64(n+1)), n)
			out, check := guarded(t, n)
			RMSNorm(out, x, w, eps)
			check()
			var ss float64
			for _, v := range x {
				ss += float64(v) * float64(v)
			}
			s := 1 / math.Sqrt(ss/float64(n)+eps)
			want := make([]float64, n)
			for i := range want {
				want[i] = float64(x[i]) * s * float64(w[i])
			}
			for i := range want {
				checkRel(t, out[i:i+1], want[i:i+1], 1e-6, math.Abs(want[i]))
			}
			// In place, and the rows variant, give the same bits.
			rows := append(append([]float32(nil), x...), x...)
			RMSNormRows(rows, rows, w, eps)
			for i := range rows {
				if rows[i] != out[i%n] {
					t.Fatalf("RMSNormRows element %d: %g, want %g", i, rows[i], out[i%n])
				}
			}
		})
	}
}

// TestSoftmax: tolerance 1e-6 relative to each probability; inputs are
// shifted by +80 so that a naive exp would overflow float32.
func TestSoftmax(t *testing.T) {
	forEachVariant(t, testSoftmax)
}

func testSoftmax(t *testing.T, _ string) {
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			x := gaussian(newRand(uint64(n)), n)
			for i := range x {
				x[i] = 4*x[i] + 80
			}
			mx := math.Inf(-1)
			for _, v := range x {
				mx = math.Max(mx, float64(v))
			}
			want := make([]float64, n)
			var sum float64
			for i, v := range x {
				want[i] = math.Exp(float64(v) - mx)
				sum += want[i]
			}
			for i := range want {
				want[i] /= sum
			}
			buf, check := guarded(t, n)
			copy(buf, x)
			Softmax(buf)
			check()
			var total float64
			for i := range want {
				checkRel(t, buf[i:i+1], want[i:i+1], 1e-6, want[i])
				total += float64(buf[i])
			}
			if math.Abs(total-1) > 1e-5 {
				t.Errorf("probabilities sum to %g", total)
			}
		})
	}
	x := []float32{float32(math.Inf(-1)), 2, float32(math.Inf(-1))}
	Softmax(x)
	if x[0] != 0 || x[1] != 1 || x[2] != 0 {
		t.Errorf("Softmax with -Inf entries = %v", x)
	}
}

// TestActivations: SiLU and SwiGLU within 1e-6 relative (plus 1e-30 for
// values that underflow) of float64 math.
func TestActivations(t *testing.T) {
	forEachVariant(t, testActivations)
}

func testActivations(t *testing.T, _ string) {
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			g, u := gaussian(newRand(uint64(n)), n), gaussian(newRand(uint64(n+1)), n)
			for i := range g {
				g[i] *= 6
			}
			silu64 := func(v float32) float64 { return float64(v) / (1 + math.Exp(-float64(v))) }
			out, check := guarded(t, n)
			SiLU(out, g)
			check()
			for i := range g {
				checkRel(t, out[i:i+1], []float64{silu64(g[i])}, 1e-6, math.Abs(silu64(g[i]))+1e-30)
			}
			SwiGLU(out, g, u)
			check()
			for i := range g {
				want := silu64(g[i]) * float64(u[i])
				checkRel(t, out[i:i+1], []float64{want}, 1e-6, math.Abs(want)+1e-30)
			}
		})
	}
	// Large negative gates must give 0, not NaN.
	out := make([]float32, 2)
	SiLU(out, []float32{-1000, 1000})
	if out[0] != 0 || out[1] != 1000 {
		t.Errorf("SiLU(-1000, 1000) = %v", out)
	}
	SwiGLU(out, []float32{-1000, 1000}, []float32{2, 2})
	if out[0] != 0 || out[1] != 2000 {
		t.Errorf("SwiGLU(-1000, 1000; 2, 2) = %v", out)
	}
}

func TestAddScaleArgmax(t *testing.T) {
	a := []float32{1, 2, 3}
	Add(a, []float32{0.5, -2, 4})
	Scale(a, 2)
	if a[0] != 3 || a[1] != 0 || a[2] != 14 {
		t.Errorf("Add then Scale = %v", a)
	}
	nan := float32(math.NaN())
	tests := []struct {
		name string
		x    []float32
		want int
	}{
		{"empty", nil, -1},
		{"one", []float32{-5}, 0},
		{"first of a tie", []float32{1, 3, 3, 2}, 1},
		{"negative", []float32{-3, -1, -2}, 1},
		{"nan ignored", []float32{nan, 1, nan, 2}, 3},
		{"all nan", []float32{nan, nan}, -1},
		{"inf", []float32{1, float32(math.Inf(1)), 2}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Argmax(tt.x); got != tt.want {
				t.Errorf("Argmax(%v) = %d, want %d", tt.x, got, tt.want)
			}
		})
	}
}

// ropeRef rotates one head in float64 by the definition: pair (a, b) of pair
// index i turns by pos·base^(-2i/d).
func ropeRef(head []float32, pos int, base float64, neox bool) []float64 {
	d := len(head)
	out := make([]float64, d)
	for i := 0; i < d/2; i++ {
		a, b := 2*i, 2*i+1
		if neox {
			a, b = i, i+d/2
		}
		th := float64(pos) * math.Pow(base, -2*float64(i)/float64(d))
		c, s := math.Cos(th), math.Sin(th)
		out[a] = float64(head[a])*c - float64(head[b])*s
		out[b] = float64(head[a])*s + float64(head[b])*c
	}
	return out
}

// TestRoPE: tolerance 1e-6 of the head's largest |x|, for positions inside
// and beyond the precomputed table, in both orders.
func TestRoPE(t *testing.T) {
	forEachVariant(t, testRoPE)
}

func testRoPE(t *testing.T, _ string) {
	const maxPos = 64
	for _, neox := range []bool{false, true} {
		for _, headDim := range []int{2, 8, 34, 64, 128} {
			for _, pos := range []int{0, 1, 17, maxPos - 1, maxPos, 5000} {
				t.Run(fmt.Sprintf("neox=%v/d=%d/pos=%d", neox, headDim, pos), func(t *testing.T) {
					r := NewRoPE(headDim, 10000, maxPos, neox)
					const nHeads = 3
					x := gaussian(newRand(uint64(headDim+pos)), nHeads*headDim)
					buf, check := guarded(t, len(x))
					copy(buf, x)
					r.Apply(buf, nHeads, pos)
					check()
					for h := 0; h < nHeads; h++ {
						head := x[h*headDim : (h+1)*headDim]
						var amax float64
						for _, v := range head {
							amax = math.Max(amax, math.Abs(float64(v)))
						}
						checkRel(t, buf[h*headDim:(h+1)*headDim], ropeRef(head, pos, 10000, neox), 1e-6, amax)
					}
				})
			}
		}
	}
}

// TestRoPEPairs checks which dimensions rotate together, on a unit vector.
func TestRoPEPairs(t *testing.T) {
	tests := []struct {
		name string
		neox bool
		from int
		to   int // the dimension that picks up sin θ
	}{
		{"normal order pairs 2i with 2i+1", false, 2, 3},
		{"neox order pairs i with i+d/2", true, 1, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRoPE(8, 10000, 4, tt.neox)
			x := make([]float32, 8)
			x[tt.from] = 1
			r.Apply(x, 1, 1)
			for i, v := range x {
				if (i == tt.from || i == tt.to) != (v != 0) {
					t.Fatalf("after rotation %v: dimension %d from %d", x, i, tt.from)
				}
			}
			if x[tt.to] <= 0 {
				t.Errorf("dimension %d = %g, want sin θ > 0", tt.to, x[tt.to])
			}
		})
	}
}

// TestExpStats: both sums within 1e-5 (relative to Σ e^(x−m)) of float64
// math, x unchanged; Max equals the float64 maximum.
func TestExpStats(t *testing.T) {
	forEachVariant(t, testExpStats)
}

func testExpStats(t *testing.T, _ string) {
	for _, n := range slices.Concat(sizes, []int{4096, 5000}) {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			x := gaussian(newRand(uint64(n)+7), n)
			for i := range x {
				x[i] = 3*x[i] + 20
			}
			mx := math.Inf(-1)
			for _, v := range x {
				mx = math.Max(mx, float64(v))
			}
			if n > 0 && float64(Max(x)) != mx {
				t.Fatalf("Max = %g, want %g", Max(x), mx)
			}
			var wantSum, wantDot float64
			for _, v := range x {
				d := float64(v) - mx
				wantSum += math.Exp(d)
				wantDot += math.Exp(d) * d
			}
			orig := slices.Clone(x)
			sum, dot := ExpStats(x, float32(mx))
			if !slices.Equal(x, orig) {
				t.Fatal("ExpStats changed its input")
			}
			if math.Abs(sum-wantSum) > 1e-5*math.Max(wantSum, 1) || math.Abs(dot-wantDot) > 1e-5*math.Max(wantSum, 1)*math.Max(math.Abs(mx), 1) {
				t.Errorf("ExpStats = %g, %g; want %g, %g", sum, dot, wantSum, wantDot)
			}
		})
	}
	if m := Max(nil); !math.IsInf(float64(m), -1) {
		t.Errorf("Max(nil) = %g", m)
	}
	if m := Max([]float32{1, float32(math.NaN()), 2}); m != 2 {
		t.Errorf("Max with a NaN = %g, want 2", m)
	}
}
