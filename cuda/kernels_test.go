//go:build cuda || cudaemu

package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/dfill/dfill/engine/gguf"
	"github.com/dfill/dfill/engine/kernel"
)

// testMatrix quantizes random rows×cols values to typ, puts them on the GPU
// and returns them with their decoded values (engine/kernel.Dequantize).
func testMatrix(t *testing.T, rng *rand.Rand, typ gguf.Type, rows, cols int) (matrix, []float32) {
	t.Helper()
	var data []byte
	dec := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		q, err := kernel.Quantize(typ, randoms(rng, cols, 1/math.Sqrt(float64(cols))))
		if err != nil {
			t.Fatal(err)
		}
		if err := kernel.Dequantize(typ, q, dec[r*cols:(r+1)*cols]); err != nil {
			t.Fatal(err)
		}
		data = append(data, q...)
	}
	w := matrix{typ: typ, rows: rows, cols: cols, rowBytes: int64(len(data) / rows)}
	on(t, func() error {
		var err error
		if w.buf, err = dev.alloc(int64(len(data))); err != nil {
			return err
		}
		return upload(w.buf, 0, data)
	})
	t.Cleanup(func() { dev.do(func() error { return dev.free(&w.buf) }) })
	return w, dec
}

var matTypes = []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16, gguf.TypeQ8_0, gguf.TypeQ4_K, gguf.TypeQ6_K}

// TestMatMul checks every product kernel (tensor-core and plain, each weight
// type, split-K or not, with a bias or accumulating) against a float64 loop
// over the decoded weight at sizes that are not multiples of the 64×64
// tiles. Tolerance: |got − want| ≤ 1e-4·Σ_k|x_k·w_k| per element. The
// tensor-core kernels round the activations to a bf16 (f16 for F16
// weights) pair holding about 16 bits of mantissa, the plain one not at
// all; both accumulate in float32 (K·2⁻²⁴ ≤ 5e-5 here). A wrong index or
// scale is off by far more.
func TestMatMul(t *testing.T) {
	shapes := []struct{ m, n, k int }{{1, 37, 256}, {33, 130, 512}, {70, 200, 768}, {130, 64, 256}}
	for _, typ := range matTypes {
		for si, sh := range shapes {
			for _, simt := range []bool{false, true} {
				if typ == gguf.TypeF32 && !simt {
					continue // F32 weights always take the plain kernel
				}
				for _, splits := range []int{1, 3, 0} {
					name := fmt.Sprintf("%s/%dx%dx%d/simt=%v/splits=%d", typ, sh.m, sh.n, sh.k, simt, splits)
					t.Run(name, func(t *testing.T) {
						testMatMul(t, typ, sh.m, sh.n, sh.k, gemmOptions{simt: simt, splits: splits}, si == 1, si == 2)
					})
				}
			}
		}
	}
}

func testMatMul(t *testing.T, typ gguf.Type, m, n, k int, o gemmOptions, withBias, accumulate bool) {
	rng := rand.New(rand.NewPCG(uint64(m*n*k), uint64(typ)))
	w, wd := testMatrix(t, rng, typ, n, k)
	x := randoms(rng, m*k, 1)
	var bias, init []float32
	out := newFloats(t, m*n)
	if withBias {
		bias = randoms(rng, n, 1)
	}
	if accumulate {
		init = randoms(rng, m*n, 1)
		out = newArray(t, init)
	}
	xd := newArray(t, x)
	var bd devArray
	var biasPtr devPtr // none
	if withBias {
		bd = newArray(t, bias)
		biasPtr = bd.ptr()
	}
	var partial buffer
	on(t, func() error { return dev.matmul(out.ptr(), xd.ptr(), m, &w, biasPtr, accumulate, &partial, o) })
	t.Cleanup(func() { dev.do(func() error { return dev.free(&partial) }) })
	got := out.floats(t)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var want, mag float64
			for c := 0; c < k; c++ {
				p := float64(x[i*k+c]) * float64(wd[j*k+c])
				want += p
				mag += math.Abs(p)
			}
			if withBias {
				want += float64(bias[j])
			}
			if accumulate {
				want += float64(init[i*n+j])
			}
			if e := math.Abs(float64(got[i*n+j]) - want); !(e <= 1e-4*mag+1e-6) {
				t.Fatalf("out[%d][%d] = %g, want %g (error %.3g of Σ|xw| = %.3g)", i, j, got[i*n+j], want, e, mag)
			}
		}
	}
}

// TestSplitK checks the split rule: splits of whole tiles of K that cover
// K, at most maxSplits, more of them when the tiles alone are few.
func TestSplitK(t *testing.T) {
	for _, tt := range []struct {
		name           string
		m, n, k, force int
	}{
		{"one row, narrow", 1, 896, 896, 0},
		{"one row, long", 1, 896, 4864, 0},
		{"many tiles", 1024, 4864, 896, 0},
		{"forced", 33, 130, 512, 3},
		{"forced beyond K", 1, 64, 64, 9},
	} {
		t.Run(tt.name, func(t *testing.T) {
			splits, chunk := dev.splitK(tt.m, tt.n, tt.k, tt.force)
			if splits < 1 || splits > maxSplits || chunk%tileK != 0 || chunk <= 0 {
				t.Fatalf("splitK = %d pieces of %d", splits, chunk)
			}
			if (splits-1)*chunk >= tt.k || splits*chunk < tt.k {
				t.Fatalf("%d pieces of %d do not cover K = %d exactly once", splits, chunk, tt.k)
			}
			tiles := ceilDiv(tt.m, tileM) * ceilDiv(tt.n, tileN)
			if tt.force == 0 && tiles < dev.Info().SMs && tt.k >= 2*tileK && splits == 1 {
				t.Fatalf("%d tiles on %d SMs and no split", tiles, dev.Info().SMs)
			}
		})
	}
}

// TestRMSNorm checks rmsnorm against engine/kernel.RMSNorm, in place and
// gathering rows. Tolerance: 1e-5 of the largest output (the sums of
// squares are both in float64; the rest is a few roundings).
func TestRMSNorm(t *testing.T) {
	for _, tt := range []struct {
		name    string
		dim     int
		idx     []int32
		inPlace bool
	}{
		{"dim 896", 896, nil, false},
		{"dim 37", 37, nil, false},
		{"in place", 64, nil, true},
		{"gathered rows", 100, []int32{4, 0, 2}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tt.dim), 2))
			rows := 5
			x := randoms(rng, rows*tt.dim, 3)
			w := randoms(rng, tt.dim, 1)
			xd, wd := newArray(t, x), newArray(t, w)
			outRows := rows
			if tt.idx != nil {
				outRows = len(tt.idx)
			}
			out := newFloats(t, outRows*tt.dim)
			if tt.inPlace {
				out = xd
			}
			var idx devPtr // rows in order
			if tt.idx != nil {
				idx = newArray(t, tt.idx).ptr()
			}
			on(t, func() error { return dev.rmsNorm(out.ptr(), xd.ptr(), wd.ptr(), idx, outRows, tt.dim, 1e-6) })
			got := out.floats(t)
			want := make([]float32, outRows*tt.dim)
			for r := 0; r < outRows; r++ {
				src := r
				if tt.idx != nil {
					src = int(tt.idx[r])
				}
				kernel.RMSNorm(want[r*tt.dim:(r+1)*tt.dim], x[src*tt.dim:(src+1)*tt.dim], w, 1e-6)
			}
			if e := maxRelErr(got, widen64(want)); !(e <= 1e-5) {
				t.Fatalf("relative error %.3g", e)
			}
		})
	}
}

// TestSwiGLU checks swiglu against engine/kernel.SwiGLU. Tolerance: 1e-5 of
// the largest output (expf against the Go exp, a few ulps).
func TestSwiGLU(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	n := 5000
	gate, up := randoms(rng, n, 3), randoms(rng, n, 1)
	gd, ud := newArray(t, gate), newArray(t, up)
	out := newFloats(t, n)
	on(t, func() error { return dev.swiGLU(out.ptr(), gd.ptr(), ud.ptr(), int64(n)) })
	want := make([]float32, n)
	kernel.SwiGLU(want, gate, up)
	if e := maxRelErr(out.floats(t), widen64(want)); !(e <= 1e-5) {
		t.Fatalf("relative error %.3g", e)
	}
}

// TestEmbed checks the embedding lookup of each type against
// engine/kernel.Dequantize of the token's row: exactly, since the GPU
// decoders round every product as the Go ones do.
func TestEmbed(t *testing.T) {
	for _, typ := range matTypes {
		t.Run(typ.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(4, uint64(typ)))
			rows, cols := 40, 512
			e, dec := testMatrix(t, rng, typ, rows, cols)
			tokens := []int32{3, 39, 0, 3, 17}
			td := newArray(t, tokens)
			out := newFloats(t, len(tokens)*cols)
			on(t, func() error { return dev.embed(out.ptr(), &e, td.ptr(), len(tokens)) })
			got := out.floats(t)
			for r, tok := range tokens {
				if !slices.Equal(got[r*cols:(r+1)*cols], dec[int(tok)*cols:(int(tok)+1)*cols]) {
					t.Fatalf("row %d (token %d) differs from its decoded row", r, tok)
				}
			}
		})
	}
}

// TestSoftmax checks softmax against a float64 loop. Tolerance: 2e-6 of the
// largest probability (expf's few ulps; the sum is in double). Not against
// engine/kernel.Softmax: its AVX-512 variant sums in float32 lanes, about
// 1e-5 off over a vocabulary.
func TestSoftmax(t *testing.T) {
	for _, tt := range []struct {
		name string
		n    int
		temp float32
	}{{"vocab", 151936, 1}, {"short, tempered", 33, 0.7}} {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, uint64(tt.n)))
			rows := 3
			x := randoms(rng, rows*tt.n, 4)
			xd := newArray(t, x)
			on(t, func() error { return dev.softmax(xd.ptr(), rows, tt.n, tt.temp) })
			got := xd.floats(t)
			for r := 0; r < rows; r++ {
				row := x[r*tt.n : (r+1)*tt.n]
				want := make([]float64, tt.n)
				var mx, sum float64 = math.Inf(-1), 0
				for _, v := range row {
					mx = max(mx, float64(v)/float64(tt.temp))
				}
				for i, v := range row {
					want[i] = math.Exp(float64(v)/float64(tt.temp) - mx)
					sum += want[i]
				}
				for i := range want {
					want[i] /= sum
				}
				if e := maxRelErr(got[r*tt.n:(r+1)*tt.n], want); !(e <= 2e-6) {
					t.Fatalf("row %d: relative error %.3g", r, e)
				}
			}
		})
	}
}

// TestRoPEStore checks rope_store against engine/kernel.RoPE in both orders
// (tolerance 1e-6 of the largest value: the same tables, each product
// rounded as the Go loop rounds it) and that it writes the rows' keys and
// values, and only them, into the cache.
func TestRoPEStore(t *testing.T) {
	for _, tt := range []struct {
		name                string
		heads, kvHeads, hd  int
		neox                bool
		rows, pos0, T, base int
	}{
		{"neox 14/2×64", 14, 2, 64, true, 5, 7, 20, 1000000},
		{"pairs 4/2×16", 4, 2, 16, false, 3, 0, 3, 10000},
		{"pairs 8/8×128", 8, 8, 128, false, 6, 100, 130, 500000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(6, uint64(tt.hd)))
			qDim, kvDim := tt.heads*tt.hd, tt.kvHeads*tt.hd
			q, k, v := randoms(rng, tt.rows*qDim, 1), randoms(rng, tt.rows*kvDim, 1), randoms(rng, tt.rows*kvDim, 1)
			qd, kd, vd := newArray(t, q), newArray(t, k), newArray(t, v)
			cache := tt.kvHeads * tt.T * tt.hd
			kc, vc := newFloats(t, cache), newFloats(t, cache)
			cos, sin := ropeTables(tt.hd, float64(tt.base), tt.pos0+tt.rows)
			cd, sd := newArray(t, cos), newArray(t, sin)
			s := ropeShape{heads: tt.heads, kvHeads: tt.kvHeads, headDim: tt.hd, neox: tt.neox}
			on(t, func() error {
				return dev.ropeStore(qd.ptr(), kd.ptr(), vd.ptr(), kc.ptr(), vc.ptr(), cd.ptr(), sd.ptr(), tt.rows, tt.pos0, tt.T, s)
			})
			rope := kernel.NewRoPE(tt.hd, float64(tt.base), 0, tt.neox) // angles computed as the tables are
			for r := 0; r < tt.rows; r++ {
				rope.Apply(q[r*qDim:(r+1)*qDim], tt.heads, tt.pos0+r)
				rope.Apply(k[r*kvDim:(r+1)*kvDim], tt.kvHeads, tt.pos0+r)
			}
			if e := maxRelErr(qd.floats(t), widen64(q)); !(e <= 1e-6) {
				t.Fatalf("q: relative error %.3g", e)
			}
			if e := maxRelErr(kd.floats(t), widen64(k)); !(e <= 1e-6) {
				t.Fatalf("k: relative error %.3g", e)
			}
			gotK, gotV := kc.floats(t), vc.floats(t)
			for h := 0; h < tt.kvHeads; h++ {
				for pos := 0; pos < tt.T; pos++ {
					for d := 0; d < tt.hd; d++ {
						at := (h*tt.T+pos)*tt.hd + d
						r := pos - tt.pos0
						if r < 0 || r >= tt.rows {
							if math.Float32bits(gotK[at]) != guardBits || math.Float32bits(gotV[at]) != guardBits {
								t.Fatalf("cache position %d (head %d) written by rows [%d, %d)", pos, h, tt.pos0, tt.pos0+tt.rows)
							}
							continue
						}
						wantK, wantV := k[r*kvDim+h*tt.hd+d], v[r*kvDim+h*tt.hd+d]
						if math.Abs(float64(gotK[at]-wantK)) > 1e-6*(1+math.Abs(float64(wantK))) || gotV[at] != wantV {
							t.Fatalf("cache head %d position %d dim %d: k %g v %g, want %g %g", h, pos, d, gotK[at], gotV[at], wantK, wantV)
						}
					}
				}
			}
		})
	}
}

// TestAttention checks attention against a float64 softmax(q·Kᵀ/√d)·V over
// the whole cache, for a few rows of a canvas, grouped-query heads.
// Tolerance: 1e-5 of the largest output (float32 scores and sums over a
// few hundred positions).
func TestAttention(t *testing.T) {
	for _, tt := range []struct {
		name                     string
		rows, heads, kvHeads, hd int
		T                        int
	}{
		{"qwen2.5-0.5b heads", 5, 14, 2, 64, 77},
		{"tiny heads", 3, 4, 2, 16, 33},
		{"wide heads, long canvas", 4, 12, 2, 128, 300},
		{"one position", 1, 2, 1, 32, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(tt.T)))
			qDim := tt.heads * tt.hd
			q := randoms(rng, tt.rows*qDim, 1)
			K := randoms(rng, tt.kvHeads*tt.T*tt.hd, 1)
			V := randoms(rng, tt.kvHeads*tt.T*tt.hd, 1)
			qd, kd, vd := newArray(t, q), newArray(t, K), newArray(t, V)
			out := newFloats(t, tt.rows*qDim)
			scale := float32(1 / math.Sqrt(float64(tt.hd)))
			s := ropeShape{heads: tt.heads, kvHeads: tt.kvHeads, headDim: tt.hd}
			on(t, func() error { return dev.attention(out.ptr(), qd.ptr(), kd.ptr(), vd.ptr(), tt.rows, tt.T, s, scale) })
			want := make([]float64, tt.rows*qDim)
			group := tt.heads / tt.kvHeads
			for r := 0; r < tt.rows; r++ {
				for h := 0; h < tt.heads; h++ {
					kvh := h / group
					qh := q[r*qDim+h*tt.hd : r*qDim+(h+1)*tt.hd]
					scores := make([]float64, tt.T)
					mx := math.Inf(-1)
					for j := range scores {
						for d, v := range qh {
							scores[j] += float64(v) * float64(scale) * float64(K[(kvh*tt.T+j)*tt.hd+d])
						}
						mx = max(mx, scores[j])
					}
					var sum float64
					for j := range scores {
						scores[j] = math.Exp(scores[j] - mx)
						sum += scores[j]
					}
					for j, p := range scores {
						for d := 0; d < tt.hd; d++ {
							want[r*qDim+h*tt.hd+d] += p / sum * float64(V[(kvh*tt.T+j)*tt.hd+d])
						}
					}
				}
			}
			if e := maxRelErr(out.floats(t), want); !(e <= 1e-5) {
				t.Fatalf("relative error %.3g", e)
			}
		})
	}
}

// TestRowStats checks row_stats against the engine's greedy scan written
// in float64: the best and second token exactly (ties to the lower id, the
// mask token skipped however large), the sums to 1e-6 relative.
func TestRowStats(t *testing.T) {
	for _, tt := range []struct {
		name  string
		vocab int
		mask  int32
	}{{"qwen vocabulary", 151936, 151665}, {"small", 1000, 7}, {"mask first", 300, 0}} {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(8, uint64(tt.vocab)))
			rows := 4
			x := randoms(rng, rows*tt.vocab, 3)
			for r := 0; r < rows; r++ {
				x[r*tt.vocab+int(tt.mask)] = 100 // never chosen
			}
			x[1*tt.vocab+10], x[1*tt.vocab+tt.vocab-2] = 50, 50               // a tie for the best
			x[2*tt.vocab+20], x[2*tt.vocab+30], x[2*tt.vocab+25] = 40, 39, 39 // a tie for the second
			xd := newArray(t, x)
			var out buffer
			on(t, func() error {
				var err error
				if out, err = dev.alloc(int64(rows * statsFields * 8)); err != nil {
					return err
				}
				return dev.rowStats(out.ptr, xd.ptr(), rows, tt.vocab, tt.mask)
			})
			t.Cleanup(func() { dev.do(func() error { return dev.free(&out) }) })
			got := make([]float64, rows*statsFields)
			on(t, func() error { return download(got, out, 0) })
			for r := 0; r < rows; r++ {
				want := hostStats(x[r*tt.vocab:(r+1)*tt.vocab], tt.mask)
				g := got[r*statsFields : (r+1)*statsFields]
				if g[0] != want[0] || g[1] != want[1] || g[2] != want[2] || g[3] != want[3] {
					t.Fatalf("row %d: best, second = %v, want %v", r, g[:4], want[:4])
				}
				if math.Abs(g[4]-want[4]) > 1e-6*want[4] || math.Abs(g[5]-want[5]) > 1e-6*(math.Abs(want[5])+want[4]) {
					t.Fatalf("row %d: sums %v, want %v", r, g[4:], want[4:])
				}
			}
		})
	}
}

// hostStats is row_stats of one row as the engine's rowStats scans it.
func hostStats(x []float32, mask int32) [statsFields]float64 {
	best, second := -1, -1
	var bv, sv float32
	for i, v := range x {
		if int32(i) == mask || v != v {
			continue
		}
		switch {
		case best < 0 || v > bv:
			second, sv = best, bv
			best, bv = i, v
		case second < 0 || v > sv:
			second, sv = i, v
		}
	}
	var sum, ent float64
	for i, v := range x {
		if int32(i) == mask || v != v {
			continue
		}
		d := float64(v) - float64(bv)
		e := math.Exp(d)
		sum += e
		ent += e * d
	}
	return [statsFields]float64{float64(best), float64(second), float64(bv), float64(sv), sum, ent}
}
