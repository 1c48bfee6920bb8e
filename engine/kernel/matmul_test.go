package kernel

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/dfill/dfill/engine/gguf"
)

// randomMatrix quantizes Gaussian rows×cols weights to typ and returns the
// Matrix and its decoded float32 values.
func randomMatrix(t testing.TB, typ gguf.Type, rows, cols int, seed uint64) (Matrix, []float32) {
	t.Helper()
	data, err := Quantize(typ, gaussian(newRand(seed), rows*cols))
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewMatrix(typ, rows, cols, data)
	if err != nil {
		t.Fatal(err)
	}
	dec := make([]float32, rows*cols)
	if err := Dequantize(typ, data, dec); err != nil {
		t.Fatal(err)
	}
	return w, dec
}

// randomWeights hands out randomMatrix's weights, each quantized once for
// all the kernel variants a test runs.
type randomWeights map[randomWeight]Matrix

type randomWeight struct {
	typ        gguf.Type
	rows, cols int
	seed       uint64
}

func (c randomWeights) get(t testing.TB, typ gguf.Type, rows, cols int, seed uint64) Matrix {
	t.Helper()
	k := randomWeight{typ, rows, cols, seed}
	if _, ok := c[k]; !ok {
		c[k], _ = randomMatrix(t, typ, rows, cols, seed)
	}
	return c[k]
}

// colsFor returns awkward widths for typ: whole numbers of blocks up to 1024.
func colsFor(typ gguf.Type) []int {
	switch typ.BlockSize() {
	case 1:
		return []int{1, 3, 17, 96, 1024}
	case 32:
		return []int{32, 96, 416, 1024}
	}
	return []int{256, 768, 1024}
}

// TestMatMul checks MatMul, with every kernel variant this machine runs,
// against a float64 reference on the decoded weights: |out − ref| ≤ 1e-5 ·
// Σ_c |x_c·w_c| for every element (a float32 sum of n ≤ 1024 terms, in
// lanes or in one chain of FMAs, has a worst-case error of n·2⁻²⁴ ≈ 6e-5 of
// that sum, the typical one far less). A Q8_0 product quantizes the
// activations too, so its reference is q8Reference's, and so does a K-quant
// product, whose reference is kqReference's. With the pure-Go kernels it
// also checks that every element is bitwise Dot(x row, decoded weight row),
// x's row dequantized (qx·dx) where the product quantizes it. In every case
// it checks that nothing around out was written.
func TestMatMul(t *testing.T) {
	pool := NewPool(3)
	defer pool.Close()
	rowsList := []int{1, 7, 33, 127, 512, 1000} // 512: gemmStaged
	// Under -short: the weights of 1, 7 and 127 rows, as they are; of 512
	// rows (staged) at the type's narrowest and widest columns (split by
	// activation rows, and tiled) times 33 activation rows; of 1000 rows at
	// the widest columns (tiled) times 7.
	inShort := func(rows, m, c int, cols []int) bool {
		widest := c == cols[len(cols)-1]
		switch rows {
		case 1, 7, 127:
			return true
		case 512:
			return m == 33 && (c == cols[0] || widest)
		case 1000:
			return m == 7 && widest
		}
		return false
	}
	weights := randomWeights{}
	forEachVariant(t, func(t *testing.T, variant string) {
		for _, typ := range allTypes {
			colsList := colsFor(typ)
			for _, cols := range colsList {
				for _, rows := range rowsList {
					var w Matrix
					var wd []float32 // w decoded
					for _, m := range []int{1, 7, 33} {
						if testing.Short() && !inShort(rows, m, cols, colsList) {
							continue
						}
						if wd == nil {
							w, wd = weights.get(t, typ, rows, cols, uint64(rows*cols)), make([]float32, rows*cols)
							if err := Dequantize(typ, w.Data, wd); err != nil {
								t.Fatal(err)
							}
						}
						t.Run(fmt.Sprintf("%s/m=%d/rows=%d/cols=%d", typ, m, rows, cols), func(t *testing.T) {
							x := gaussian(newRand(uint64(m)), m*cols)
							out, check := guarded(t, m*rows)
							MatMul(pool, out, x, m, w)
							check()
							var qref, qmag []float64
							xq := x // the activations as the float32 kernels multiply them
							switch {
							case typ == gguf.TypeQ8_0:
								qref, qmag = q8Reference(x, m, w)
								xq = dequantized(x, m, cols)
							case kqLayoutOf(typ) != nil:
								qref, qmag = kqReference(x, m, w)
								xq = dequantized(x, m, cols)
							}
							for i := 0; i < m; i++ {
								xi := x[i*cols : (i+1)*cols]
								for r := 0; r < rows; r++ {
									wr := wd[r*cols : (r+1)*cols]
									var ref, mag float64
									if qref != nil {
										ref, mag = qref[i*rows+r], qmag[i*rows+r]
									} else {
										for c := range xi {
											p := float64(xi[c]) * float64(wr[c])
											ref += p
											mag += math.Abs(p)
										}
									}
									got := out[i*rows+r]
									if d := math.Abs(float64(got) - ref); !(d <= 1e-5*mag) {
										t.Fatalf("out[%d,%d] = %g, want %g (error %.2e of Σ|x·w| = %g)", i, r, got, ref, d/mag, mag)
									}
									if variant != "generic" {
										continue
									}
									if want := Dot(xq[i*cols:(i+1)*cols], wr); math.Float32bits(got) != math.Float32bits(want) {
										t.Fatalf("out[%d,%d] = %g, but Dot of the rows is %g", i, r, got, want)
									}
								}
							}
						})
					}
				}
			}
		}
	})
}

// TestMatMulVariantsAgree checks that the assembly variants give bitwise the
// same products: each computes every element as one chain of FMAs over k,
// whatever its vector width and tile shape, and each quantizes a Q4_K
// product's activations the same way (avx512 in assembly, avx2 in Go).
// avx512-vnni, whose integer products differ from these by rounding, is
// checked bitwise against its definition by TestKQMatMul.
func TestMatMulVariantsAgree(t *testing.T) {
	var asm []string
	for _, v := range kernelVariants() {
		if v != "generic" && v != "avx512-vnni" {
			asm = append(asm, v)
		}
	}
	if len(asm) < 2 {
		t.Skipf("fewer than two FMA assembly variants on this machine: %v", asm)
	}
	for _, s := range []struct{ m, rows, cols int }{{1, 13, 64}, {7, 33, 1024}, {33, 127, 256}, {40, 25, 4864}} {
		t.Run(fmt.Sprintf("%dx%dx%d", s.m, s.rows, s.cols), func(t *testing.T) {
			w, _ := randomMatrix(t, gguf.TypeQ4_K, s.rows, (s.cols+255)/256*256, 21)
			x := gaussian(newRand(22), s.m*w.Cols)
			var want []float32
			for _, v := range asm {
				restore := useVariant(v)
				got := make([]float32, s.m*s.rows)
				MatMul(nil, got, x, s.m, w)
				restore()
				if want == nil {
					want = got
					continue
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s: out[%d] = %g, %s gives %g", v, i, got[i], asm[0], want[i])
					}
				}
			}
		})
	}
}

// TestMatMulF32 checks that MatMulF32 gives bitwise what MatMul gives for
// the same weights in an F32 Matrix.
func TestMatMulF32(t *testing.T) {
	const m, rows, cols = 5, 33, 70
	forEachVariant(t, func(t *testing.T, _ string) {
		w, wd := randomMatrix(t, gguf.TypeF32, rows, cols, 7)
		x := gaussian(newRand(8), m*cols)
		out, check := guarded(t, m*rows)
		MatMulF32(nil, out, x, m, wd, rows, cols)
		check()
		want := make([]float32, m*rows)
		MatMul(nil, want, x, m, w)
		for i := range want {
			if math.Float32bits(out[i]) != math.Float32bits(want[i]) {
				t.Fatalf("out[%d] = %g, want %g", i, out[i], want[i])
			}
		}
	})
}

// TestMatMulUnalignedF32 uses F32 weight bytes that do not start on a
// 4-byte boundary, which MatMul must decode rather than view in place; the
// result must be bitwise the aligned one.
func TestMatMulUnalignedF32(t *testing.T) {
	const m, rows, cols = 3, 9, 40
	forEachVariant(t, func(t *testing.T, _ string) {
		w, _ := randomMatrix(t, gguf.TypeF32, rows, cols, 9)
		x := gaussian(newRand(10), m*cols)
		want := make([]float32, m*rows)
		MatMul(nil, want, x, m, w)
		buf := make([]byte, len(w.Data)+1)
		copy(buf[1:], w.Data)
		w.Data = buf[1:]
		out := make([]float32, m*rows)
		MatMul(nil, out, x, m, w)
		for i := range want {
			if math.Float32bits(out[i]) != math.Float32bits(want[i]) {
				t.Fatalf("out[%d] = %g, want %g", i, out[i], want[i])
			}
		}
	})
}

// TestMatMulDeterministic checks, for every variant, that the result is
// bitwise the same with 1, 2, 3 and 8 threads and with a nil Pool, for
// shapes whose chunking differs between those counts, and that each row of
// x multiplied alone (m = 1) gives bitwise the same row as in the batch: the
// property that lets the engine batch spans without changing their tokens.
func TestMatMulDeterministic(t *testing.T) {
	// 300×1024 is wide enough that the assembly kernels split the columns
	// into chunks (gemmKC), which a single row does not.
	// 40×30, 300×50 and 600×520×512 run transposed (gemmSwap) on
	// AVX-512, the last in two column chunks; the single rows do not.
	// 20×1024×512 writes its tiles through the staging buffers (gemmStaged).
	// On 2 or more threads the weights of 1 MiB or less split the
	// activations' rows (gemmRowSplit): 33×127×1024 and 64×128×1024 in
	// units of 16 or 32 rows, 100×512×256 staged too, and 1×1000×256 and
	// 20×64×256, with fewer rows than the threads have lanes, by packing
	// all of x for each goroutine; 33×7×256 and 20×24×256 are small enough
	// to run either way on one goroutine.
	shapes := []struct{ m, rows, cols int }{{1, 1000, 256}, {33, 127, 1024}, {7, 4864, 256}, {40, 30, 512}, {300, 50, 1024}, {600, 520, 512},
		{20, 1024, 512}, {64, 128, 1024}, {100, 512, 256}, {20, 64, 256}, {33, 7, 256}, {20, 24, 256}}
	// Under -short the products run on 2 and 3 threads (1 is the nil
	// Pool's path, 8 splits as 3 does), only the first, a middle and the
	// last row are multiplied alone, and the pure-Go kernels, which take
	// none of the micro-kernels' paths, skip the one large shape.
	threadCounts, everyRow := []int{1, 2, 3, 8}, true
	if testing.Short() {
		threadCounts, everyRow = []int{2, 3}, false
	}
	weights := randomWeights{}
	forEachVariant(t, func(t *testing.T, variant string) {
		for _, typ := range allTypes {
			for _, s := range shapes {
				if testing.Short() && variant == "generic" && s.m*s.rows*s.cols > 1<<25 {
					continue
				}
				t.Run(fmt.Sprintf("%s/%dx%dx%d", typ, s.m, s.rows, s.cols), func(t *testing.T) {
					w := weights.get(t, typ, s.rows, s.cols, 11)
					x := gaussian(newRand(12), s.m*s.cols)
					want := make([]float32, s.m*s.rows)
					MatMul(nil, want, x, s.m, w)
					for _, threads := range threadCounts {
						p := NewPool(threads)
						got := make([]float32, len(want))
						MatMul(p, got, x, s.m, w)
						p.Close()
						for i := range got {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
								t.Fatalf("%d threads: out[%d] = %g, single-threaded %g", threads, i, got[i], want[i])
							}
						}
					}
					row := make([]float32, s.rows)
					for i := 0; i < s.m; i++ {
						if !everyRow && i != 0 && i != s.m/2 && i != s.m-1 {
							continue
						}
						MatMul(nil, row, x[i*s.cols:(i+1)*s.cols], 1, w)
						for r, v := range row {
							if got := want[i*s.rows+r]; math.Float32bits(v) != math.Float32bits(got) {
								t.Fatalf("row %d alone: out[%d] = %g, in the batch %g", i, r, v, got)
							}
						}
					}
				})
			}
		}
	})
}

func TestMatMulAllocs(t *testing.T) {
	pool := NewPool(2)
	defer pool.Close()
	forEachVariant(t, func(t *testing.T, _ string) {
		for _, typ := range []gguf.Type{gguf.TypeF32, gguf.TypeQ8_0, gguf.TypeQ4_K} {
			for _, rows := range []int{512, 32} { // 32: transposed
				w, _ := randomMatrix(t, typ, rows, 256, 13)
				x := gaussian(newRand(14), 40*256)
				out := make([]float32, 40*rows)
				out2, out3, pw := make([]float32, 40*rows), make([]float32, 40*rows), Prepack(w)
				for _, p := range []*Pool{nil, pool} {
					if p == nil && raceEnabled {
						continue
					}
					MatMul(p, out, x, 40, w) // let the scratch grow
					if n := testing.AllocsPerRun(20, func() { MatMul(p, out, x, 40, w) }); n != 0 {
						t.Errorf("%s, %d rows, %d threads: %v allocations per MatMul", typ, rows, p.Threads(), n)
					}
					shared := func() { MatMulShared(p, x, 40, Product{out, w}, Product{out2, w}, Product{out3, pw}) }
					shared()
					if n := testing.AllocsPerRun(20, shared); n != 0 {
						t.Errorf("%s, %d rows, %d threads: %v allocations per MatMulShared", typ, rows, p.Threads(), n)
					}
				}
			}
		}
	})
}

// TestMatMulNoColumns checks that a weight of zero columns, which
// NewMatrix accepts, gives zeros of every type, prepacked or not, on any
// Pool.
func TestMatMulNoColumns(t *testing.T) {
	forEachVariant(t, func(t *testing.T, _ string) {
		for _, typ := range allTypes {
			w, err := NewMatrix(typ, 5, 0, nil)
			if err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			for _, pw := range []Matrix{w, Prepack(w)} {
				for _, p := range []*Pool{nil, NewPool(1), NewPool(2)} {
					out := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
					MatMul(p, out, nil, 3, pw)
					p.Close()
					if !slices.Equal(out, []float32{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16}) {
						t.Errorf("%s: out = %v, want 15 zeros and the 16 after them", typ, out)
					}
				}
			}
		}
	})
}

func TestNewMatrix(t *testing.T) {
	tests := []struct {
		name       string
		typ        gguf.Type
		rows, cols int
		bytes      int
		ok         bool
	}{
		{"f32", gguf.TypeF32, 3, 5, 60, true},
		{"q4_K", gguf.TypeQ4_K, 2, 512, 2 * 2 * 144, true},
		{"empty", gguf.TypeQ8_0, 0, 64, 0, true},
		{"short data", gguf.TypeF16, 3, 5, 29, false},
		{"long data", gguf.TypeF16, 3, 5, 31, false},
		{"cols not whole blocks", gguf.TypeQ8_0, 1, 48, 51, false},
		{"unknown type", gguf.Type(77), 1, 1, 4, false},
		{"negative rows", gguf.TypeF32, -1, 1, 0, false},
		{"rows overflow", gguf.TypeF32, math.MaxInt / 2, 4, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMatrix(tt.typ, tt.rows, tt.cols, make([]byte, tt.bytes))
			if (err == nil) != tt.ok {
				t.Fatalf("NewMatrix: error %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && m.Rows*m.RowBytes() != tt.bytes {
				t.Errorf("RowBytes %d", m.RowBytes())
			}
		})
	}
}

func TestGemmTileWidth(t *testing.T) {
	tests := []struct{ maxNR, n, threads, want int }{
		{12, 128, 2, 8},  // 8+8 tiles of 8, not 6+5 of 12
		{12, 256, 2, 12}, // 11+11 of 12 is within a sixteenth of the best
		{12, 896, 2, 12},
		{12, 5, 2, 12},
		{12, 24, 2, 12},
		{6, 16, 2, 4}, // AVX2: 2+2 tiles of 4, not 2+1 of 6
		{12, 128, 1, 12},
	}
	for _, tt := range tests {
		if got := gemmTileWidth(tt.maxNR, tt.n, tt.threads); got != tt.want {
			t.Errorf("gemmTileWidth(%d, %d, %d) = %d, want %d", tt.maxNR, tt.n, tt.threads, got, tt.want)
		}
	}
}

// TestPrepackSameBits checks that a prepacked weight gives bitwise what the
// weight as it is gives, for every type, with each kernel variant (Prepack
// packs for the variant in use; a weight packed for another is used as it
// is), on shapes that take the transposed product only when prepacked.
func TestPrepackSameBits(t *testing.T) {
	shapes := []struct{ m, rows, cols int }{{16, 256, 256}, {33, 100, 512}, {7, 64, 256}, {40, 1024, 256}, {300, 96, 1024}}
	packedFor := map[string]map[string]Matrix{}
	forEachVariant(t, func(t *testing.T, variant string) {
		packedFor[variant] = map[string]Matrix{}
		for _, typ := range allTypes {
			for _, s := range shapes {
				if s.cols%typ.BlockSize() != 0 {
					continue
				}
				name := fmt.Sprintf("%s/%dx%dx%d", typ, s.m, s.rows, s.cols)
				t.Run(name, func(t *testing.T) {
					w, _ := randomMatrix(t, typ, s.rows, s.cols, 31)
					x := gaussian(newRand(32), s.m*s.cols)
					want := make([]float32, s.m*s.rows)
					MatMul(nil, want, x, s.m, w)
					pw := Prepack(w)
					packedFor[variant][name] = pw
					for _, threads := range []int{1, 2, 3} {
						p := NewPool(threads)
						got := make([]float32, len(want))
						MatMul(p, got, x, s.m, pw)
						p.Close()
						if !bitsEqual(got, want) {
							t.Fatalf("%d threads: prepacked product differs", threads)
						}
					}
					// A weight packed for the AVX-512 kernels, used with these.
					if other, ok := packedFor["avx512"][name]; ok && variant != "avx512" {
						got := make([]float32, len(want))
						MatMul(nil, got, x, s.m, other)
						if !bitsEqual(got, want) {
							t.Fatal("a weight packed for avx512 gives other bits")
						}
					}
				})
			}
		}
	})
}
