package kernel

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/dfill/dfill/engine/gguf"
)

// kqTypes are the K-quant types with VNNI kernels.
var kqTypes = []gguf.Type{gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K}

// kqSuper is one super-block of one weight row, unpacked as the decoders
// read it, for the tests' references: the quants as unsigned integers
// (Q6_K's before the −32), the scales and mins of the sub-blocks, and d
// and dmin.
type kqSuper struct {
	q       [qkK]uint8
	sc      [16]int8 // Q4_K and Q5_K: 8 scales of 6 bits; Q6_K: 16
	mn      [8]uint8
	d, dmin float32
}

// unpack fills s from the GGUF bytes b of one super-block of type t.
func (s *kqSuper) unpack(t gguf.Type, b []byte) {
	switch t {
	case gguf.TypeQ4_K, gguf.TypeQ5_K:
		s.d = f16Table[binary.LittleEndian.Uint16(b)]
		s.dmin = f16Table[binary.LittleEndian.Uint16(b[2:])]
		for j := 0; j < 8; j++ {
			sc, m := scaleMinK4(j, b[4:16])
			s.sc[j], s.mn[j] = int8(sc), m
		}
		ql, qh := b[16:16+qkK/2], []byte(nil)
		if t == gguf.TypeQ5_K {
			ql, qh = b[q5KOffQs:q5KOffQs+qkK/2], b[q5KOffQh:q5KOffQh+qkK/8]
		}
		// ql[32j+l] holds column 64j+l (low nibble) and 64j+32+l (high);
		// Q5_K's fifth bits are bits 2j and 2j+1 of qh[l].
		for j := 0; j < 4; j++ {
			for l := 0; l < 32; l++ {
				lo, hi := ql[32*j+l]&0xf, ql[32*j+l]>>4
				if qh != nil {
					lo |= (qh[l] >> (2 * j) & 1) << 4
					hi |= (qh[l] >> (2*j + 1) & 1) << 4
				}
				s.q[64*j+l], s.q[64*j+32+l] = lo, hi
			}
		}
	case gguf.TypeQ6_K:
		s.d = f16Table[binary.LittleEndian.Uint16(b[qkK/2+qkK/4+qkK/16:])]
		for j := 0; j < 16; j++ {
			s.sc[j] = int8(b[qkK/2+qkK/4+j])
		}
		// As decodeQ6KGeneric: each half of 128 takes 64 bytes of ql and 32
		// of qh.
		for n := 0; n < 2; n++ {
			ql, qh := b[64*n:64*n+64], b[qkK/2+32*n:qkK/2+32*n+32]
			q := s.q[128*n : 128*n+128]
			for l := 0; l < 32; l++ {
				h := qh[l]
				q[l] = ql[l]&0xf | (h&3)<<4
				q[l+32] = ql[l+32]&0xf | (h>>2&3)<<4
				q[l+64] = ql[l]>>4 | (h>>4&3)<<4
				q[l+96] = ql[l+32]>>4 | (h>>6&3)<<4
			}
		}
	}
}

// kqQuantized is the activations of a K-quant product quantized as
// MatMul quantizes them, row-major: qs[i*cols+c], and per block b of row i
// its scale d[i*nb+b] and the sum of its quants sum[i*nb+b].
type kqQuantized struct {
	qs  []int8
	d   []float32
	sum []int32
}

// quantizeKQ quantizes the m rows of x (cols wide) with quantQ8RowGeneric.
func quantizeKQ(x []float32, m, cols int) kqQuantized {
	nb := cols / qk8_0
	q := kqQuantized{qs: make([]int8, m*cols), d: make([]float32, m*nb), sum: make([]int32, m*nb)}
	corr := make([]int32, m*nb)
	for i := 0; i < m; i++ {
		quantQ8RowGeneric(q.qs[i*cols:], q.d[i*nb:], corr[i*nb:], x[i*cols:(i+1)*cols], 1) // one row: row-major
	}
	for k, c := range corr {
		q.sum[k] = -c / 128
	}
	return q
}

// dequantized returns the m rows of x (cols wide) quantized as MatMul
// quantizes them and dequantized again, qx·dx in float32: what the kernel
// sets without VNNI multiply by the decoded weight.
func dequantized(x []float32, m, cols int) []float32 {
	q := quantizeKQ(x, m, cols)
	nb := cols / qk8_0
	xf := make([]float32, m*cols)
	for i := range xf {
		xf[i] = float32(q.qs[i]) * q.d[i/cols*nb+i%cols/qk8_0]
	}
	return xf
}

// floatProduct computes the product of x's m rows, quantized and
// dequantized again, and the weight w with the float32 kernels of the
// kernel set in use, one thread, w not packed ahead: the bits a product
// that quantizes its activations must give on a kernel set without VNNI.
func floatProduct(x []float32, m int, w Matrix) []float32 {
	out := make([]float32, m*w.Rows)
	runMatMul(nil, matmulJob{out: out, x: dequantized(x, m, w.Cols), m: m, cols: w.Cols, rows: w.Rows,
		data: w.Data, rowBytes: w.RowBytes(), dec: decoderFor(w.Type),
		blockSize: w.Type.BlockSize(), typeSize: w.Type.TypeSize()})
	return out
}

// kqExactBits computes the K-quant product of x and w as the package
// comment of kq8.go defines it, in plain Go from the GGUF bytes: the bits
// the VNNI kernels must give.
func kqExactBits(x []float32, m int, w Matrix) []float32 {
	nb, nsb, ts := w.Cols/qk8_0, w.Cols/qkK, w.Type.TypeSize()
	q := quantizeKQ(x, m, w.Cols)
	out := make([]float32, m*w.Rows)
	var s kqSuper
	for r := 0; r < w.Rows; r++ {
		for i := 0; i < m; i++ {
			var acc float32
			for sb := 0; sb < nsb; sb++ {
				s.unpack(w.Type, w.Data[r*w.RowBytes()+sb*ts:][:ts])
				if w.Type == gguf.TypeQ6_K {
					for j := 0; j < 16; j++ {
						c := qkK*sb + 16*j
						var sum int32
						for k := 0; k < 16; k++ {
							sum += int32(q.qs[i*w.Cols+c+k]) * (int32(s.q[16*j+k]) - 32)
						}
						dx := q.d[i*nb+c/qk8_0]
						acc = fma32(float32(sum), s.d*float32(s.sc[j])*dx, acc)
					}
					continue
				}
				for j := 0; j < 8; j++ {
					b := 8*sb + j
					var sum int32
					for k := 0; k < qk8_0; k++ {
						sum += int32(q.qs[i*w.Cols+32*b+k]) * int32(s.q[32*j+k])
					}
					dx := q.d[i*nb+b]
					y := dx * float32(q.sum[i*nb+b])
					acc = fma32(float32(sum), s.d*float32(s.sc[j])*dx, acc)
					acc = fma32(-(s.dmin * float32(s.mn[j])), y, acc)
				}
			}
			out[i*w.Rows+r] = acc
		}
	}
	return out
}

// kqReference computes the K-quant product of x and w in float64 from the
// activations as MatMul quantizes them on VNNI and the weights as exact
// values (d·sc·q − dmin·mn): the value the VNNI product rounds. mag is the
// sum of the terms' magnitudes.
func kqReference(x []float32, m int, w Matrix) (ref, mag []float64) {
	nb, ts := w.Cols/qk8_0, w.Type.TypeSize()
	q := quantizeKQ(x, m, w.Cols)
	ref, mag = make([]float64, m*w.Rows), make([]float64, m*w.Rows)
	wr := make([]float64, w.Cols)
	var s kqSuper
	for r := 0; r < w.Rows; r++ {
		for sb := 0; sb < w.Cols/qkK; sb++ {
			s.unpack(w.Type, w.Data[r*w.RowBytes()+sb*ts:][:ts])
			for k := 0; k < qkK; k++ {
				v := float64(s.q[k])
				if w.Type == gguf.TypeQ6_K {
					v = float64(s.d) * float64(s.sc[k/16]) * (v - 32)
				} else {
					v = float64(s.d)*float64(s.sc[k/32])*v - float64(s.dmin)*float64(s.mn[k/32])
				}
				wr[qkK*sb+k] = v
			}
		}
		for i := 0; i < m; i++ {
			for c, v := range wr {
				p := v * float64(q.qs[i*w.Cols+c]) * float64(q.d[i*nb+c/qk8_0])
				ref[i*w.Rows+r] += p
				mag[i*w.Rows+r] += math.Abs(p)
			}
		}
	}
	return ref, mag
}

// randomKQ returns a rows×cols weight of the K-quant type typ: Gaussian
// values quantized, or (raw) random bytes with every d and dmin made a
// random finite f16, so that extreme scales, mins and quants all occur.
func randomKQ(t testing.TB, typ gguf.Type, rows, cols int, seed uint64, raw bool) Matrix {
	t.Helper()
	if !raw {
		w, _ := randomMatrix(t, typ, rows, cols, seed)
		return w
	}
	r := newRand(seed)
	data := make([]byte, rows*cols/qkK*typ.TypeSize())
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	f16 := func() uint16 { return F32ToF16(float32(r.NormFloat64() * 0.01)) }
	for b := 0; b < len(data); b += typ.TypeSize() {
		switch typ {
		case gguf.TypeQ6_K:
			binary.LittleEndian.PutUint16(data[b+qkK/2+qkK/4+qkK/16:], f16())
		default:
			binary.LittleEndian.PutUint16(data[b:], f16())
			binary.LittleEndian.PutUint16(data[b+2:], f16())
		}
	}
	w, err := NewMatrix(typ, rows, cols, data)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestKQUnpackMatchesDecode checks the unpacking the VNNI packing and the
// tests share against the row decoders: d·sc·q − dmin·mn (Q4_K, Q5_K) and
// d·sc·(q − 32) (Q6_K), computed as the decoders compute them, give their
// bits, on random bytes.
func TestKQUnpackMatchesDecode(t *testing.T) {
	for _, typ := range kqTypes {
		t.Run(typ.String(), func(t *testing.T) {
			w := randomKQ(t, typ, 1, 64*qkK, 3, true)
			want := make([]float32, w.Cols)
			if err := Dequantize(typ, w.Data, want); err != nil {
				t.Fatal(err)
			}
			var s kqSuper
			ts := typ.TypeSize()
			for sb := 0; sb < w.Cols/qkK; sb++ {
				s.unpack(typ, w.Data[sb*ts:(sb+1)*ts])
				for k := 0; k < qkK; k++ {
					var got float32
					if typ == gguf.TypeQ6_K {
						got = float32(s.d*float32(s.sc[k/16])) * float32(int(s.q[k])-32)
					} else {
						got = float32(s.d*float32(s.sc[k/32])*float32(s.q[k])) - s.dmin*float32(s.mn[k/32])
					}
					if math.Float32bits(got) != math.Float32bits(want[qkK*sb+k]) {
						t.Fatalf("super-block %d, element %d: unpacked %g, decoded %g", sb, k, got, want[qkK*sb+k])
					}
				}
			}
		})
	}
}

// TestKQMatMul checks K-quant products with every variant, prepacked or
// not, on any number of threads, splitting either the weight's rows or the
// activations' (on VNNI). With every variant they must be within
// 1e-5·Σ|terms| of kqReference (the exact product of the quantized
// activations) and give one set of bits: on avx512-vnni kqExactBits', and
// on the other sets floatProduct's (their float32 kernels' product of the
// dequantized activations). They must also be within the activations'
// quantization error of the float64 product of the decoded weight and the
// activations as they are: each activation moves by at most half its
// block's scale dx, so |out − ref| ≤ Σ_c |w_c|·dx_c/2 + 1e-5·Σ_c |w_c·x_c|
// (the second term the float32 rounding, as TestMatMul's). Nothing around
// out may be written. The shapes have rows that are not whole tiles, 1 to
// 13 activation rows (every tile height) and more, and several
// super-blocks; the weights are quantized Gaussians and random bytes.
func TestKQMatMul(t *testing.T) {
	shapes := []struct{ m, rows, cols int }{
		{1, 1, 256}, {2, 17, 512}, {3, 16, 256}, {4, 33, 768}, {5, 7, 256}, {6, 40, 512},
		{7, 31, 256}, {8, 47, 1024}, {9, 64, 256}, {10, 5, 512}, {11, 18, 256}, {12, 49, 512}, {13, 30, 768},
		{25, 100, 512}, {40, 3, 256}, {100, 48, 256},
		{300, 40, 4096}, // two chunks of activation rows
	}
	if testing.Short() {
		shapes = shapes[:len(shapes)-1]
	}
	defer func() { q8ForceSplit = "" }()
	weights := map[string]Matrix{}
	forEachVariant(t, func(t *testing.T, variant string) {
		for _, typ := range kqTypes {
			for si, s := range shapes {
				raw := si%2 == 1
				name := fmt.Sprintf("%s/%dx%dx%d/raw=%v", typ, s.m, s.rows, s.cols, raw)
				w, ok := weights[name]
				if !ok {
					w = randomKQ(t, typ, s.rows, s.cols, uint64(si+1), raw)
					weights[name] = w
				}
				x := gaussian(newRand(uint64(s.m)), s.m*s.cols)
				wd := make([]float32, s.rows*s.cols)
				if err := Dequantize(typ, w.Data, wd); err != nil {
					t.Fatal(err)
				}
				bound, fref := kqFloatBound(x, s.m, wd, s.rows, s.cols)
				want, wantName := floatProduct(x, s.m, w), "the float32 product of the dequantized activations"
				if variant == "avx512-vnni" {
					want, wantName = kqExactBits(x, s.m, w), "kqExactBits"
				}
				qref, qmag := kqReference(x, s.m, w)
				for _, split := range []string{"", "rows", "cols"} {
					q8ForceSplit = split
					for _, pw := range []Matrix{w, Prepack(w)} {
						for threads := 1; threads <= 3; threads++ {
							p := NewPool(threads)
							out, check := guarded(t, s.m*s.rows)
							MatMul(p, out, x, s.m, pw)
							p.Close()
							check()
							at := fmt.Sprintf("%s, split %q, prepacked %v, %d threads", name, split, pw.packed != nil, threads)
							for i, v := range out {
								if d := math.Abs(float64(v) - fref[i]); !(d <= bound[i]) {
									t.Fatalf("%s: out[%d] = %g, float product %g: error %.3g over the bound %.3g", at, i, v, fref[i], d, bound[i])
								}
								if d := math.Abs(float64(v) - qref[i]); !(d <= 1e-5*qmag[i]) {
									t.Fatalf("%s: out[%d] = %g, want %g (error %.2e of Σ|terms|)", at, i, v, qref[i], d/qmag[i])
								}
							}
							if !bitsEqual(out, want) {
								for i := range out {
									if math.Float32bits(out[i]) != math.Float32bits(want[i]) {
										t.Fatalf("%s: out[%d] = %g, %s %g", at, i, out[i], wantName, want[i])
									}
								}
							}
						}
					}
				}
			}
		}
	})
}

// kqFloatBound returns, for the product of the m rows of x and the decoded
// weight wd (rows×cols), its float64 value and TestKQMatMul's bound on the
// distance of a K-quant product to it.
func kqFloatBound(x []float32, m int, wd []float32, rows, cols int) (bound, ref []float64) {
	q := quantizeKQ(x, m, cols)
	nb := cols / qk8_0
	bound, ref = make([]float64, m*rows), make([]float64, m*rows)
	for i := 0; i < m; i++ {
		for r := 0; r < rows; r++ {
			var s, mag, qerr float64
			for c := 0; c < cols; c++ {
				w := float64(wd[r*cols+c])
				s += w * float64(x[i*cols+c])
				mag += math.Abs(w * float64(x[i*cols+c]))
				qerr += math.Abs(w) * float64(q.d[i*nb+c/qk8_0]) / 2
			}
			ref[i*rows+r], bound[i*rows+r] = s, qerr+1e-5*mag
		}
	}
	return bound, ref
}

// TestKQPrepackBytes checks that a K-quant weight packed for the VNNI
// kernels takes what PrepackBytes says, within the 9/8 of its own bytes
// under which the engine packs a weight ahead (for whole panels of 16
// rows, as a model's are), and that the other kernel sets do not pack it
// for VNNI.
func TestKQPrepackBytes(t *testing.T) {
	forEachVariant(t, func(t *testing.T, variant string) {
		for _, typ := range kqTypes {
			w := randomKQ(t, typ, 48, 512, 9, true)
			pw := Prepack(w)
			n := PrepackBytes(w)
			if variant != "avx512-vnni" {
				if pw.packed != nil && pw.packed.q8 != nil {
					t.Errorf("%s: %s packed for VNNI", variant, typ)
				}
				continue
			}
			if pw.packed == nil || len(pw.packed.q8) != n {
				t.Fatalf("%s: PrepackBytes %d, packed %v", typ, n, pw.packed != nil)
			}
			if 8*n > 9*len(w.Data) {
				t.Errorf("%s: packed %d bytes for %d: more than 9/8", typ, n, len(w.Data))
			}
		}
	})
}
