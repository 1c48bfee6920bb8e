package kernel

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/dfill/dfill/engine/gguf"
)

// twoBitQuant returns the 2 low bits of element k of a Q2_K or Q3_K block
// whose 64 quant bytes are qs: in each half of 128 elements, byte l (< 32)
// holds elements l, l+32, l+64 and l+96 from the low bits up (ggml's
// quantize_row_q2_K_ref packing).
func twoBitQuant(qs []byte, k int) int {
	n, r := k/128, k%128
	return int(qs[32*n+r%32] >> (2 * (r / 32)) & 3)
}

// TestKLayouts checks Q2_K, Q3_K and Q5_K bit for bit against ggml's
// dequantize_row_q2_K, q3_K and q5_K formulas, in float32 with a rounding
// after each operation, the scales read as the reference quantizers write
// them.
func TestKLayouts(t *testing.T) {
	checkLayouts(t, []layoutCase{
		// block_q2_K: scales[16], qs[64], d, dmin. Sub-block k/16 has the
		// 4-bit scale in the low nibble of scales[k/16], the min in the high.
		{"Q2_K", gguf.TypeQ2_K, []int{80, 82}, func(b []byte, k int) float32 {
			sc := b[k/16]
			dl := half(b, 80) * float32(sc&0xf)
			ml := half(b, 82) * float32(sc>>4)
			return float32(dl*float32(twoBitQuant(b[16:80], k))) - ml
		}},
		// block_q3_K: hmask[32], qs[64], scales[12], d. The high bit of
		// element k is bit k/32 of hmask[k%32]; set, the quant is q, clear,
		// q−4. Scale j (6 bits, less 32): low 4 bits in the low (j < 8) or
		// high nibble of scales[j%8], high 2 bits at bit 2(j/4) of
		// scales[8+j%4].
		{"Q3_K", gguf.TypeQ3_K, []int{108}, func(b []byte, k int) float32 {
			sc := b[96:108]
			j := k / 16
			lo := int(sc[j%8] & 0xf)
			if j >= 8 {
				lo = int(sc[j%8] >> 4)
			}
			s := lo | int(sc[8+j%4]>>(2*(j/4))&3)<<4
			q := twoBitQuant(b[32:96], k)
			if b[k%32]>>(k/32)&1 == 0 {
				q -= 4
			}
			dl := half(b, 108) * float32(s-32)
			return dl * float32(q)
		}},
		// block_q5_K: d, dmin, scales[12], qh[32], qs[128]. Sub-block j =
		// k/32: its nibbles are the low (j even) or high (j odd) ones of
		// qs[32(j/2):], its fifth bits bit j of qh[k%32]; scale and min as
		// Q4_K's 6-bit pairs.
		{"Q5_K", gguf.TypeQ5_K, []int{0, 2}, func(b []byte, k int) float32 {
			sc, qh, qs := b[4:16], b[16:48], b[48:176]
			j, l := k/32, k%32
			q := int(qs[32*(j/2)+l] & 0xf)
			if j%2 == 1 {
				q = int(qs[32*(j/2)+l] >> 4)
			}
			q |= int(qh[l]>>j&1) << 4
			var s, m byte
			if j < 4 {
				s, m = sc[j]&63, sc[j+4]&63
			} else {
				s = sc[j+4]&0xf | sc[j-4]>>6<<4
				m = sc[j+4]>>4 | sc[j]>>6<<4
			}
			d1 := half(b, 0) * float32(s)
			m1 := half(b, 2) * float32(m)
			return float32(d1*float32(q)) - m1
		}},
	})
}

// BenchmarkNewTypes measures the new types' row decoders (elements per
// second, as BenchmarkDecode) and MatMul on qwen2.5-0.5b's ffn_down shape
// (896×4864, the one whose width is whole K-quant blocks) with 32
// activation rows, as BenchmarkMatMul, beside Q8_0 and Q4_K for scale.
func BenchmarkNewTypes(b *testing.B) {
	const m, rows, cols = 32, 896, 4864
	pool := NewPool(runtime.GOMAXPROCS(0))
	defer pool.Close()
	for _, typ := range append([]gguf.Type{gguf.TypeQ8_0, gguf.TypeQ4_K}, newTypes...) {
		b.Run("decode/"+typ.String(), func(b *testing.B) {
			data, err := Quantize(typ, gaussian(newRand(3), cols))
			if err != nil {
				b.Fatal(err)
			}
			dst := make([]float32, cols)
			dec := decoderFor(typ)
			b.SetBytes(cols * 4)
			for b.Loop() {
				dec(dst, data)
			}
		})
		b.Run(fmt.Sprintf("matmul/%s/ffn_down_%dx%d", typ, rows, cols), func(b *testing.B) {
			w, _ := randomMatrix(b, typ, rows, cols, 1)
			x := gaussian(newRand(2), m*cols)
			out := make([]float32, m*rows)
			b.SetBytes(int64(len(w.Data)))
			for b.Loop() {
				MatMul(pool, out, x, m, w)
			}
			flops := 2 * float64(m) * float64(rows) * float64(cols)
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
