package kernel

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/dfill/dfill/engine/gguf"
)

// BenchmarkMatMul measures MatMul on the weight shapes of qwen2.5-0.5b
// (hidden 896, ffn 4864, kv dim 128) with m = 32 activation rows, on a Pool
// of GOMAXPROCS threads, and reports GFLOP/s (2·m·rows·cols per op). The
// K-quants need cols to be a multiple of 256, which only ffn_down's 4864 is;
// the other shapes run for the other types only.
func BenchmarkMatMul(b *testing.B) {
	const m = 32
	shapes := []struct {
		name       string
		rows, cols int
	}{
		{"attn_q", 896, 896},
		{"attn_kv", 128, 896},
		{"ffn_up", 4864, 896},
		{"ffn_down", 896, 4864},
	}
	pool := NewPool(runtime.GOMAXPROCS(0))
	defer pool.Close()
	for _, typ := range allTypes {
		for _, s := range shapes {
			if s.cols%typ.BlockSize() != 0 {
				continue
			}
			b.Run(fmt.Sprintf("%s/%s_%dx%d", typ, s.name, s.rows, s.cols), func(b *testing.B) {
				w, _ := randomMatrix(b, typ, s.rows, s.cols, 1)
				x := gaussian(newRand(2), m*s.cols)
				out := make([]float32, m*s.rows)
				b.SetBytes(int64(len(w.Data)))
				b.ResetTimer()
				for b.Loop() {
					MatMul(pool, out, x, m, w)
				}
				flops := 2 * float64(m) * float64(s.rows) * float64(s.cols)
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkDecode measures the row decoders alone, in elements per second.
func BenchmarkDecode(b *testing.B) {
	const n = 4864
	for _, typ := range allTypes {
		b.Run(typ.String(), func(b *testing.B) {
			data, err := Quantize(typ, gaussian(newRand(3), n))
			if err != nil {
				b.Fatal(err)
			}
			dst := make([]float32, n)
			dec := decoderFor(typ)
			b.SetBytes(n * 4)
			for b.Loop() {
				dec(dst, data)
			}
		})
	}
}

// BenchmarkDot measures the float32 dot product on a hidden-size vector.
func BenchmarkDot(b *testing.B) {
	x, y := gaussian(newRand(4), 896), gaussian(newRand(5), 896)
	b.SetBytes(896 * 8)
	var s float32
	for b.Loop() {
		s += Dot(x, y)
	}
	_ = s
}

var _ = gguf.TypeF32

// BenchmarkMatMulKQ measures the K-quant products, and Q8_0's beside them,
// at a 7B model's layer shapes (Qwen2.5-7B: hidden 3584, ffn 18944) with m
// = 32 activation rows, on a Pool of GOMAXPROCS threads, with every kernel
// set side by side (the VNNI kernels on avx512-vnni; the float32 ones,
// multiplying the dequantized activations, on the others: the pure-Go
// generic set takes seconds per product at these shapes), and reports
// GFLOP/s (2·m·rows·cols per op). Each weight is packed ahead as the engine
// packs it: when PrepackBytes is at most 9/8 of its bytes
// (engine.Prepacks), which the VNNI panels are and a float32 copy is not.
// The weights are 64 distinct quantized rows repeated, as dfill bench
// kernels makes them.
func BenchmarkMatMulKQ(b *testing.B) {
	const m = 32
	shapes := []struct {
		name       string
		rows, cols int
	}{
		{"attn_q", 3584, 3584},
		{"ffn_up", 18944, 3584},
		{"ffn_down", 3584, 18944},
	}
	variants := kernelVariants()
	pool := NewPool(runtime.GOMAXPROCS(0))
	defer pool.Close()
	for _, typ := range []gguf.Type{gguf.TypeQ8_0, gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K} {
		for _, s := range shapes {
			var w Matrix
			x := gaussian(newRand(2), m*s.cols)
			out := make([]float32, m*s.rows)
			for _, v := range variants {
				b.Run(fmt.Sprintf("%s/%s_%dx%d/%s", typ, s.name, s.rows, s.cols, v), func(b *testing.B) {
					if w.Data == nil {
						w = repeatedRows(b, typ, s.rows, s.cols)
					}
					restore := useVariant(v)
					defer restore()
					pw := w
					if 8*PrepackBytes(w) <= 9*len(w.Data) {
						pw = Prepack(w)
					}
					b.SetBytes(int64(len(w.Data)))
					b.ResetTimer()
					for b.Loop() {
						MatMul(pool, out, x, m, pw)
					}
					flops := 2 * float64(m) * float64(s.rows) * float64(s.cols)
					b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// repeatedRows returns a rows×cols weight of typ made of 64 distinct rows
// of Gaussian values, quantized once and repeated.
func repeatedRows(b *testing.B, typ gguf.Type, rows, cols int) Matrix {
	const distinct = 64
	w, _ := randomMatrix(b, typ, distinct, cols, 1)
	data := make([]byte, rows*w.RowBytes())
	for i := 0; i < rows; i += distinct {
		copy(data[i*w.RowBytes():], w.Data)
	}
	m, err := NewMatrix(typ, rows, cols, data)
	if err != nil {
		b.Fatal(err)
	}
	return m
}
