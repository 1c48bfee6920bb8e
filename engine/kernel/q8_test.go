package kernel

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"testing"

	"github.com/dfill/dfill/engine/gguf"
)

// fma32 returns a·b+c rounded once to float32, as a fused multiply-add
// instruction does: a·b is exact in float64, and when the float64 sum lands
// exactly halfway between two float32s its own rounding error decides.
func fma32(a, b, c float32) float32 {
	p := float64(float64(a) * float64(b))
	s := float64(p + float64(c))
	f := float32(s)
	if float64(f) == s || math.IsInf(s, 0) || math.IsNaN(s) || math.IsInf(float64(f), 0) {
		return f
	}
	// Knuth's TwoSum: s + e is p + c exactly.
	bv := float64(s - p)
	e := float64(p-float64(s-bv)) + float64(float64(c)-bv)
	g := math.Nextafter32(f, float32(math.Copysign(math.Inf(1), s-float64(f)))) // f's neighbour on s's side
	if e == 0 || float64(f)+float64(g) != 2*s {
		return f // s is not halfway, or is exact
	}
	if (e > 0) == (g > f) {
		return g
	}
	return f
}

// q8ExactBits computes the Q8_0 product of x and w as the package comment
// of q8.go defines it, in plain Go: the bits the VNNI kernels must give.
func q8ExactBits(x []float32, m int, w Matrix) []float32 {
	nb, rb := w.Cols/qk8_0, w.RowBytes()
	qs := make([]int8, m*w.Cols)
	xd := make([]float32, m*nb)
	xc := make([]int32, m*nb)
	for i := 0; i < m; i++ {
		quantQ8RowGeneric(qs[i*qk8_0:], xd[i:], xc[i:], x[i*w.Cols:(i+1)*w.Cols], m)
	}
	out := make([]float32, m*w.Rows)
	for r := 0; r < w.Rows; r++ {
		row := w.Data[r*rb : (r+1)*rb]
		for i := 0; i < m; i++ {
			var acc float32
			for b := 0; b < nb; b++ {
				blk := row[b*q8_0Bytes : (b+1)*q8_0Bytes]
				dw := f16Table[binary.LittleEndian.Uint16(blk)]
				var s int32
				for k, q := range qs[(b*m+i)*qk8_0 : (b*m+i+1)*qk8_0] {
					s += int32(q) * int32(int8(blk[2+k]))
				}
				acc = fma32(float32(s), float32(xd[b*m+i]*dw), acc)
			}
			out[i*w.Rows+r] = acc
		}
	}
	return out
}

// TestFMA32 checks fma32 against a·b+c computed exactly with math/big and
// rounded once to float32, on random operands and on sums made to land
// halfway between two float32s (where rounding the float64 sum again would
// go wrong).
func TestFMA32(t *testing.T) {
	r := newRand(1)
	exact := func(a, b, c float32) float32 {
		x := new(big.Float).SetPrec(256).SetFloat64(float64(a))
		x.Mul(x, new(big.Float).SetPrec(256).SetFloat64(float64(b)))
		x.Add(x, new(big.Float).SetPrec(256).SetFloat64(float64(c)))
		f, _ := x.Float32()
		return f
	}
	check := func(a, b, c float32) {
		t.Helper()
		if got, want := fma32(a, b, c), exact(a, b, c); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fma32(%g, %g, %g) = %g, want %g", a, b, c, got, want)
		}
	}
	for i := 0; i < 200000; i++ {
		a := float32(r.NormFloat64() * math.Exp2(float64(r.IntN(40)-20)))
		b := float32(r.NormFloat64() * math.Exp2(float64(r.IntN(40)-20)))
		c := float32(r.NormFloat64() * math.Exp2(float64(r.IntN(40)-20)))
		check(a, b, c)
		// c = −(a·b rounded), plus a half-ulp nudge: the exact sum is tiny
		// and its float64 rounding is what float32 rounding would see.
		p := a * b
		check(a, b, -p)
		check(float32(int32(r.Uint32()>>8)), float32(1+r.IntN(1<<10))/1024, c)
	}
	// Halfway cases: c a float32 with a one-bit a·b half its ulp away, and a
	// tiny extra product term that breaks the tie in float64 only.
	for i := 0; i < 10000; i++ {
		c := float32(1 + r.IntN(1<<23))
		half := float32(0.5)
		check(half+float32(math.Ldexp(1, -30)), 1, c)
		check(half-float32(math.Ldexp(1, -30)), 1, c)
		check(1+float32(math.Ldexp(1, -23)), half, c)
		check(1-float32(math.Ldexp(1, -24)), -half, c)
	}
	for _, v := range [][3]float32{{0, 0, 0}, {1, 1, float32(math.Inf(1))}, {float32(math.Inf(-1)), 1, 1}, {3.4e38, 10, 0}, {1e-30, 1e-20, 0}} {
		check(v[0], v[1], v[2])
	}
}

// TestQuantQ8RowMatchesGeneric checks every variant's activation quantizer
// against the pure-Go one, bitwise, on rows of awkward lengths laid out for
// m rows, with an all-zero block and values of every scale, and that
// nothing outside the row's cells is written.
func TestQuantQ8RowMatchesGeneric(t *testing.T) {
	forEachVariant(t, func(t *testing.T, variant string) {
		for _, nb := range []int{1, 2, 4, 7, 8, 33} {
			for _, m := range []int{1, 3} {
				r := newRand(uint64(nb*10 + m))
				x := gaussian(r, nb*qk8_0)
				for k := range x {
					x[k] *= float32(math.Exp2(float64(r.IntN(60) - 30)))
				}
				clear(x[:qk8_0])  // an all-zero block
				x[len(x)-1] = 127 // an exact maximum
				run := func(f func([]int8, []float32, []int32, []float32, int)) ([]int8, []float32, []int32) {
					qs := make([]int8, nb*m*qk8_0)
					d := make([]float32, nb*m)
					c := make([]int32, nb*m)
					for i := range qs {
						qs[i] = 99
					}
					for i := range d {
						d[i], c[i] = -1, -1
					}
					row := m - 1
					f(qs[row*qk8_0:], d[row:], c[row:], x, m)
					return qs, d, c
				}
				qs, d, c := run(quantQ8Row)
				wqs, wd, wc := run(quantQ8RowGeneric)
				for i := range wqs {
					if qs[i] != wqs[i] {
						t.Fatalf("nb %d, m %d: qs[%d] = %d, want %d", nb, m, i, qs[i], wqs[i])
					}
				}
				for i := range wd {
					if math.Float32bits(d[i]) != math.Float32bits(wd[i]) || c[i] != wc[i] {
						t.Fatalf("nb %d, m %d: block %d: scale %g corr %d, want %g %d", nb, m, i, d[i], c[i], wd[i], wc[i])
					}
				}
			}
		}
	})
}

// TestRoundQ8Row checks that every variant's roundQ8Row gives bitwise what
// quantizing a row with quantQ8RowGeneric and dequantizing it
// (float32(q)·scale) gives, for values of every scale, an all-zero block,
// an exact maximum, blocks of huge and of subnormal values (whose scale
// has no float32 inverse), and that it writes nothing past the row.
func TestRoundQ8Row(t *testing.T) {
	forEachVariant(t, func(t *testing.T, _ string) {
		for _, nb := range []int{1, 2, 7, 33} {
			t.Run(fmt.Sprintf("nb=%d", nb), func(t *testing.T) {
				r := newRand(uint64(nb))
				x := gaussian(r, nb*qk8_0)
				for k := range x {
					x[k] *= float32(math.Exp2(float64(r.IntN(60) - 30)))
				}
				x[len(x)-1] = 127 // an exact maximum
				if nb > 1 {
					clear(x[:qk8_0]) // an all-zero block
				}
				if nb > 2 {
					for k := range qk8_0 {
						x[qk8_0+k] *= 1e37                  // up to about 3e38
						x[2*qk8_0+k] = float32(k-7) * 1e-44 // subnormal: no inverse of the scale
					}
				}
				qs := make([]int8, len(x))
				d := make([]float32, nb)
				quantQ8RowGeneric(qs, d, make([]int32, nb), x, 1)
				got, check := guarded(t, len(x))
				roundQ8Row(got, x)
				check()
				for k, q := range qs {
					if want := float32(q) * d[k/qk8_0]; math.Float32bits(got[k]) != math.Float32bits(want) {
						t.Fatalf("x[%d] = %g rounds to %g, want %d·%g = %g", k, x[k], got[k], q, d[k/qk8_0], want)
					}
				}
			})
		}
	})
}

// q8Reference computes the Q8_0 product of x and w in float64 from the
// quantized activations: the exact value every variant rounds.
func q8Reference(x []float32, m int, w Matrix) (ref, mag []float64) {
	nb := w.Cols / qk8_0
	qs := make([]int8, m*w.Cols)
	d := make([]float32, m*nb)
	c := make([]int32, m*nb)
	for i := 0; i < m; i++ {
		quantQ8RowGeneric(qs[i*qk8_0:], d[i:], c[i:], x[i*w.Cols:(i+1)*w.Cols], m)
	}
	ref, mag = make([]float64, m*w.Rows), make([]float64, m*w.Rows)
	rb := w.RowBytes()
	for i := 0; i < m; i++ {
		for r := 0; r < w.Rows; r++ {
			for b := 0; b < nb; b++ {
				blk := w.Data[r*rb+b*q8_0Bytes:]
				dw := float64(f16Table[binary.LittleEndian.Uint16(blk)])
				var s, a int64
				for k := 0; k < qk8_0; k++ {
					p := int64(qs[(b*m+i)*qk8_0+k]) * int64(int8(blk[2+k]))
					s += p
					a += max(p, -p)
				}
				ref[i*w.Rows+r] += float64(s) * dw * float64(d[b*m+i])
				mag[i*w.Rows+r] += float64(a) * math.Abs(dw*float64(d[b*m+i]))
			}
		}
	}
	return ref, mag
}

// TestQ8MatMul checks Q8_0 products with every variant against the exact
// product of the quantized activations (|out − ref| ≤ 1e-5·Σ|terms|), and
// that they give one set of bits, prepacked or not, on any number of
// threads, splitting either the weight's rows or the activations': the
// VNNI kernels q8ExactBits', the other sets floatProduct's (their float32
// kernels' product of the dequantized activations). Nothing around out may
// be written.
func TestQ8MatMul(t *testing.T) {
	shapes := []struct{ m, rows, cols int }{
		{12, 320, 256}, {1, 1, 32}, {7, 17, 96}, {8, 33, 416}, {33, 127, 1024}, {3, 1000, 64}, {100, 48, 256}, {15, 31, 32},
		{300, 40, 1024}, // two chunks when the weight's rows are split
	}
	defer func() { q8ForceSplit = "" }()
	forEachVariant(t, func(t *testing.T, variant string) {
		for _, s := range shapes {
			for _, split := range []string{"", "rows", "cols"} { // as chosen, then forced each way
				q8ForceSplit = split
				name := fmt.Sprintf("%dx%dx%d, split %q", s.m, s.rows, s.cols, split)
				w, _ := randomMatrix(t, gguf.TypeQ8_0, s.rows, s.cols, uint64(s.rows))
				x := gaussian(newRand(uint64(s.m)), s.m*s.cols)
				ref, mag := q8Reference(x, s.m, w)
				want := floatProduct(x, s.m, w)
				if variant == "avx512-vnni" {
					want = q8ExactBits(x, s.m, w)
				}
				for _, pw := range []Matrix{w, Prepack(w)} {
					for threads := 1; threads <= 3; threads++ {
						p := NewPool(threads)
						out, check := guarded(t, s.m*s.rows)
						MatMul(p, out, x, s.m, pw)
						p.Close()
						check()
						for i, v := range out {
							if d := math.Abs(float64(v) - ref[i]); !(d <= 1e-5*mag[i]) {
								t.Fatalf("%s: out[%d] = %g, want %g (error %.2e of Σ|terms| %g)", name, i, v, ref[i], d/mag[i], mag[i])
							}
						}
						if !bitsEqual(out, want) {
							t.Fatalf("%s, %d threads, prepacked %v: the product differs from its definition (%s)", name, threads, pw.packed != nil, variant)
						}
					}
				}
			}
		}
	})
}

// TestMatrixSlice checks that rows sliced from a prepacked weight keep its
// packing when they start at a whole block of rows, and that either way the
// slice multiplies as the same rows of the weight as it is.
func TestMatrixSlice(t *testing.T) {
	forEachVariant(t, func(t *testing.T, _ string) {
		for _, typ := range []gguf.Type{gguf.TypeQ8_0, gguf.TypeF32, gguf.TypeQ4_K, gguf.TypeQ6_K} {
			cols := 64
			if typ.BlockSize() == qkK {
				cols = 2 * qkK
			}
			w, _ := randomMatrix(t, typ, 100, cols, 41)
			pw := Prepack(w)
			x := gaussian(newRand(42), 20*cols)
			for _, r := range [][2]int{{0, 100}, {16, 50}, {32, 33}, {5, 40}, {48, 48}} {
				s, plain := pw.Slice(r[0], r[1]), w.Slice(r[0], r[1])
				if kept := s.packed != nil; pw.packed != nil && r[0]%16 == 0 && r[1] > r[0] && !kept {
					t.Errorf("%s rows %v: the slice lost the packing", typ, r)
				}
				n := r[1] - r[0]
				got, want := make([]float32, 20*n), make([]float32, 20*n)
				MatMul(nil, got, x, 20, s)
				MatMul(nil, want, x, 20, plain)
				if !bitsEqual(got, want) {
					t.Errorf("%s rows %v: the sliced prepacked weight gives other bits", typ, r)
				}
			}
		}
	})
}

// TestMatMulShared checks that MatMulShared gives bitwise what a MatMul per
// product gives, with nothing around any output written: Q8_0 and K-quant
// weights of one width (packed ahead or not, split by the weights' rows or
// the activations') sharing one quantization, a run of them longer than
// maxShared, and mixes with other types and widths that break the runs.
func TestMatMulShared(t *testing.T) {
	type spec struct {
		typ        gguf.Type
		rows, cols int
	}
	sets := [][]spec{
		{{gguf.TypeQ8_0, 256, 256}, {gguf.TypeQ8_0, 256, 256}, {gguf.TypeQ8_0, 256, 256}},
		{{gguf.TypeQ8_0, 96, 896}, {gguf.TypeQ8_0, 16, 896}, {gguf.TypeQ8_0, 33, 896}},
		{{gguf.TypeQ8_0, 7, 64}, {gguf.TypeQ8_0, 40, 64}, {gguf.TypeQ8_0, 1, 64}, {gguf.TypeQ8_0, 64, 64}, {gguf.TypeQ8_0, 20, 64}},
		{{gguf.TypeQ8_0, 32, 256}, {gguf.TypeF32, 17, 256}, {gguf.TypeQ8_0, 48, 256}, {gguf.TypeBF16, 5, 256}, {gguf.TypeQ8_0, 0, 256}},
		{{gguf.TypeQ8_0, 16, 64}, {gguf.TypeQ8_0, 20, 32}, {gguf.TypeQ8_0, 24, 32}}, // rows of x read as 64 wide, then 32
		{{gguf.TypeQ4_K, 48, 512}, {gguf.TypeQ6_K, 33, 512}, {gguf.TypeQ8_0, 20, 512}, {gguf.TypeQ5_K, 16, 512}, {gguf.TypeQ4_K, 7, 512}},
		{{gguf.TypeQ6_K, 17, 512}, {gguf.TypeF32, 5, 512}, {gguf.TypeQ4_K, 40, 512}, {gguf.TypeQ6_K, 64, 512}, {gguf.TypeQ4_K, 3, 256}},
	}
	defer func() { q8ForceSplit = "" }()
	forEachVariant(t, func(t *testing.T, _ string) {
		for si, set := range sets {
			ws := make([]Matrix, len(set))
			for k, s := range set {
				ws[k], _ = randomMatrix(t, s.typ, s.rows, s.cols, uint64(10*si+k))
			}
			for _, m := range []int{1, 7, 40, 100} {
				x := gaussian(newRand(uint64(m)), m*set[0].cols) // the widest first
				for _, packed := range []bool{false, true} {
					for _, split := range []string{"", "rows", "cols"} {
						q8ForceSplit = split
						for _, threads := range []int{1, 2, 3} {
							p := NewPool(threads)
							prods := make([]Product, len(ws))
							checks := make([]func(), len(ws))
							for k, w := range ws {
								if packed {
									w = Prepack(w)
								}
								prods[k].W = w
								prods[k].Out, checks[k] = guarded(t, m*w.Rows)
							}
							MatMulShared(p, x, m, prods...)
							for k, pr := range prods {
								checks[k]()
								want := make([]float32, m*pr.W.Rows)
								MatMul(p, want, x, m, pr.W)
								if !bitsEqual(pr.Out, want) {
									t.Fatalf("set %d, m %d, packed %v, split %q, %d threads: product %d differs from its MatMul", si, m, packed, split, threads, k)
								}
							}
							p.Close()
						}
					}
				}
			}
		}
	})
}
