package kernel

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dfill/dfill/engine/gguf"
)

// newTypes are the tensor types of issue 16 item 5.
var newTypes = []gguf.Type{
	gguf.TypeQ4_0, gguf.TypeQ4_1, gguf.TypeQ5_0, gguf.TypeQ5_1,
	gguf.TypeQ2_K, gguf.TypeQ3_K, gguf.TypeQ5_K, gguf.TypeIQ4_NL, gguf.TypeIQ4_XS,
}

// TestTypeTable checks the type table against ggml's numbering (ggml.h
// enum ggml_type) and block structs (ggml-common.h), written out here.
func TestTypeTable(t *testing.T) {
	tests := []struct {
		name            string
		id              uint32
		block, typeSize int
	}{
		{"Q4_0", 2, 32, 18},
		{"Q4_1", 3, 32, 20},
		{"Q5_0", 6, 32, 22},
		{"Q5_1", 7, 32, 24},
		{"Q2_K", 10, 256, 84},
		{"Q3_K", 11, 256, 110},
		{"Q5_K", 13, 256, 176},
		{"IQ4_NL", 20, 32, 18},
		{"IQ4_XS", 23, 256, 136},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, err := gguf.ParseType(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if uint32(typ) != tt.id || typ.String() != tt.name || typ.BlockSize() != tt.block || typ.TypeSize() != tt.typeSize {
				t.Errorf("%s: id %d, block %d, size %d; want %d, %d, %d", typ, uint32(typ), typ.BlockSize(), typ.TypeSize(), tt.id, tt.block, tt.typeSize)
			}
		})
	}
}

// halfExtremes are the f16 scales every layout test puts in its blocks
// beside random ones: the largest and smallest normals, subnormals, zeros,
// and negatives.
var halfExtremes = []uint16{0x7bff, 0x0400, 0x03ff, 0x0001, 0x0000, 0x8000, 0xfbff, 0x8400, 0x8001, 0x3c00, 0xbc00}

// randomHalf returns a random finite f16.
func randomHalf(r *rand.Rand) uint16 {
	h := uint16(r.Uint32())
	if h&0x7c00 == 0x7c00 {
		h &^= 0x4000 // an Inf or NaN exponent becomes a finite one
	}
	return h
}

// refElement is a test's own reading of ggml's dequantize formula: element
// k of the block b.
type refElement func(b []byte, k int) float32

// layoutCase is one type's bit-exactness test: where its f16 fields are and
// its reference formula.
type layoutCase struct {
	name   string
	typ    gguf.Type
	halves []int // byte offsets of the block's f16 fields
	ref    refElement
}

// checkLayouts decodes blocks of random bytes with random finite f16
// fields, then blocks whose f16 fields take every pair of halfExtremes,
// and compares every element bit for bit with the case's reference.
func checkLayouts(t *testing.T, cases []layoutCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRand(uint64(tc.typ) + 40)
			ts, bs := tc.typ.TypeSize(), tc.typ.BlockSize()
			var blocks [][]byte
			for i := 0; i < 64; i++ {
				b := make([]byte, ts)
				for j := range b {
					b[j] = byte(r.Uint32())
				}
				for _, off := range tc.halves {
					binary.LittleEndian.PutUint16(b[off:], randomHalf(r))
				}
				blocks = append(blocks, b)
			}
			for _, h0 := range halfExtremes {
				for _, h1 := range halfExtremes {
					b := make([]byte, ts)
					for j := range b {
						b[j] = byte(r.Uint32())
					}
					for i, off := range tc.halves {
						binary.LittleEndian.PutUint16(b[off:], [2]uint16{h0, h1}[i%2])
					}
					blocks = append(blocks, b)
					if len(tc.halves) == 1 {
						break
					}
				}
			}
			src := make([]byte, 0, len(blocks)*ts)
			for _, b := range blocks {
				src = append(src, b...)
			}
			dst, check := guarded(t, len(blocks)*bs)
			if err := Dequantize(tc.typ, src, dst); err != nil {
				t.Fatal(err)
			}
			check()
			for i, b := range blocks {
				for k := 0; k < bs; k++ {
					got, want := dst[i*bs+k], tc.ref(b, k)
					if math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("block %d (% x…), element %d: %g (%#08x), want %g (%#08x)",
							i, b[:min(8, len(b))], k, got, math.Float32bits(got), want, math.Float32bits(want))
					}
				}
			}
		})
	}
}

// half reads the f16 at b[off:] as a float32.
func half(b []byte, off int) float32 { return F16ToF32(binary.LittleEndian.Uint16(b[off:])) }

// nibble32 returns the 4-bit quant of element k (< 32) of a 32-element
// block whose 16 quant bytes are qs: elements 0..15 in the low nibbles,
// 16..31 in the high ones.
func nibble32(qs []byte, k int) int {
	if k < 16 {
		return int(qs[k] & 0xf)
	}
	return int(qs[k-16] >> 4)
}

// TestLegacyLayouts checks Q4_0, Q4_1, Q5_0 and Q5_1 bit for bit against
// ggml's dequantize_row_q4_0 … q5_1 formulas, which compute in float32:
// x = q·d, or q·d + m rounded after each operation.
func TestLegacyLayouts(t *testing.T) {
	fifth := func(b []byte, off, k int) int { return int(binary.LittleEndian.Uint32(b[off:])>>k&1) << 4 }
	checkLayouts(t, []layoutCase{
		{"Q4_0", gguf.TypeQ4_0, []int{0}, func(b []byte, k int) float32 {
			return float32(nibble32(b[2:], k)-8) * half(b, 0)
		}},
		{"Q4_1", gguf.TypeQ4_1, []int{0, 2}, func(b []byte, k int) float32 {
			// The conversion rounds the product, as C does, before the sum.
			return float32(float32(nibble32(b[4:], k))*half(b, 0)) + half(b, 2)
		}},
		{"Q5_0", gguf.TypeQ5_0, []int{0}, func(b []byte, k int) float32 {
			return float32(nibble32(b[6:], k)|fifth(b, 2, k)-16) * half(b, 0)
		}},
		{"Q5_1", gguf.TypeQ5_1, []int{0, 2}, func(b []byte, k int) float32 {
			return float32(float32(nibble32(b[8:], k)|fifth(b, 4, k))*half(b, 0)) + half(b, 2)
		}},
	})
}

// quantBounds are the largest relative RMS errors TestNewQuantizeError
// accepts on Gaussian data, about 20% above what was measured with its seed
// and 16 Ki values (Q4_0 0.0859, Q4_1 0.0783, Q5_0 0.0427, Q5_1 0.0379, Q2_K
// 0.296, Q3_K 0.151, Q5_K 0.0359, IQ4_NL 0.0762, IQ4_XS 0.0768).
var quantBounds = map[gguf.Type]float64{
	gguf.TypeQ4_0: 0.103, gguf.TypeQ4_1: 0.094, gguf.TypeQ5_0: 0.051, gguf.TypeQ5_1: 0.045,
	gguf.TypeQ2_K: 0.355, gguf.TypeQ3_K: 0.181, gguf.TypeQ5_K: 0.043,
	gguf.TypeIQ4_NL: 0.092, gguf.TypeIQ4_XS: 0.092,
}

// TestNewQuantizeError round-trips Gaussian data through Quantize and
// Dequantize for the new types.
func TestNewQuantizeError(t *testing.T) {
	x := gaussian(newRand(2), 1<<14)
	for _, typ := range newTypes {
		t.Run(typ.String(), func(t *testing.T) {
			q, err := Quantize(typ, x)
			if err != nil {
				t.Fatal(err)
			}
			y := make([]float32, len(x))
			if err := Dequantize(typ, q, y); err != nil {
				t.Fatal(err)
			}
			e := relRMS(y, x)
			t.Logf("%s: RMS error / RMS = %.3g", typ, e)
			if bound := quantBounds[typ]; !(e <= bound) {
				t.Errorf("relative RMS error %.3g, want ≤ %.3g", e, bound)
			}
		})
	}
}

// TestNewQuantizeSpecialBlocks quantizes blocks that are all zero,
// constant, or hold one outlier: they must decode without NaN and within
// a step of the input (the 2- and 3-bit types' steps are a third and a
// seventh of the range).
func TestNewQuantizeSpecialBlocks(t *testing.T) {
	outlier := make([]float32, 256)
	for i := range outlier {
		outlier[i] = 0.01 * float32(i%7+1)
	}
	outlier[100] = 50
	constant := make([]float32, 256)
	for i := range constant {
		constant[i] = -3
	}
	ramp := make([]float32, 256)
	for i := range ramp {
		ramp[i] = float32(i) - 100
	}
	inputs := []struct {
		name string
		x    []float32
	}{
		{"zeros", make([]float32, 256)},
		{"constant", constant},
		{"outlier", outlier},
		{"ramp", ramp},
	}
	for _, typ := range newTypes {
		steps := 15.0
		switch typ {
		case gguf.TypeQ2_K:
			steps = 3
		case gguf.TypeQ3_K:
			steps = 7
		}
		for _, in := range inputs {
			t.Run(typ.String()+"/"+in.name, func(t *testing.T) {
				q, err := Quantize(typ, in.x)
				if err != nil {
					t.Fatal(err)
				}
				y := make([]float32, len(in.x))
				if err := Dequantize(typ, q, y); err != nil {
					t.Fatal(err)
				}
				var amax float64
				for _, v := range in.x {
					amax = max(amax, math.Abs(float64(v)))
				}
				for i := range y {
					if d := math.Abs(float64(y[i] - in.x[i])); !(d <= 2*amax/steps) {
						t.Fatalf("element %d: %g decodes to %g", i, in.x[i], y[i])
					}
				}
			})
		}
	}
}

// TestLegacyQuantizeExact checks the Q4_0 … Q5_1 encoders on values they
// represent exactly: a block of multiples of d (with its extremes at −8·d
// or −16·d) and one spanning [m, m + 15·d] (31·d) must round-trip to the
// same float32s.
func TestLegacyQuantizeExact(t *testing.T) {
	tests := []struct {
		name     string
		typ      gguf.Type
		lo, span int // the levels used: lo..lo+span, times d
	}{
		{"Q4_0", gguf.TypeQ4_0, -8, 15},
		{"Q4_1", gguf.TypeQ4_1, 0, 15},
		{"Q5_0", gguf.TypeQ5_0, -16, 31},
		{"Q5_1", gguf.TypeQ5_1, 0, 31},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const d = 0.25
			x := make([]float32, 64)
			for i := range x {
				x[i] = d * float32(tt.lo+(i*7)%(tt.span+1))
			}
			x[3], x[40] = d*float32(tt.lo), d*float32(tt.lo) // the extreme in each block
			x[5], x[50] = d*float32(tt.lo+tt.span), d*float32(tt.lo+tt.span)
			q, err := Quantize(tt.typ, x)
			if err != nil {
				t.Fatal(err)
			}
			y := make([]float32, len(x))
			if err := Dequantize(tt.typ, q, y); err != nil {
				t.Fatal(err)
			}
			for i := range x {
				if y[i] != x[i] {
					t.Fatalf("element %d: %g decodes to %g", i, x[i], y[i])
				}
			}
		})
	}
}

// TestNewTypesMatMul checks MatMul with weights of every new type, with
// every kernel variant, against a float64 product of the decoded weights at
// awkward sizes, as TestMatMul does for the older types: |out − ref| ≤
// 1e-5·Σ|x·w|, and, with the pure-Go kernels, bitwise Dot of the rows. A
// Q5_K product quantizes the activations (kq8.go), so its reference is
// kqReference's, with the same tolerance, and its rows for Dot are the
// activations dequantized (qx·dx). The
// weights are random blocks with small random scales, which exercise
// every bit pattern of the quants.
func TestNewTypesMatMul(t *testing.T) {
	pool := NewPool(3)
	defer pool.Close()
	forEachVariant(t, func(t *testing.T, variant string) {
		for _, typ := range newTypes {
			for _, cols := range colsFor(typ)[:2] {
				for _, rows := range []int{1, 3, 17, 130} {
					w, wd := randomBlocks(t, typ, rows, cols, uint64(rows*cols))
					for _, m := range []int{1, 3, 33} {
						t.Run(fmt.Sprintf("%s/m=%d/rows=%d/cols=%d", typ, m, rows, cols), func(t *testing.T) {
							x := gaussian(newRand(uint64(m)), m*cols)
							out, check := guarded(t, m*rows)
							MatMul(pool, out, x, m, w)
							check()
							var qref, qmag []float64
							xq := x // the activations as the float32 kernels multiply them
							if kqLayoutOf(typ) != nil {
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
									if variant == "generic" {
										if want := Dot(xq[i*cols:(i+1)*cols], wr); math.Float32bits(got) != math.Float32bits(want) {
											t.Fatalf("out[%d,%d] = %g, but Dot of the rows is %g", i, r, got, want)
										}
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

// randomBlocks returns a rows×cols Matrix of typ made of random bytes with
// every f16 field set to a random scale in [2⁻⁸, 2⁻⁶) (the _1 types'
// offsets and the K types' dmin with a random sign), and its decoded values.
func randomBlocks(t testing.TB, typ gguf.Type, rows, cols int, seed uint64) (Matrix, []float32) {
	t.Helper()
	r := newRand(seed)
	data := make([]byte, rows*cols/typ.BlockSize()*typ.TypeSize())
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	var halves []int
	switch typ {
	case gguf.TypeQ4_0, gguf.TypeQ5_0, gguf.TypeIQ4_NL, gguf.TypeIQ4_XS:
		halves = []int{0}
	case gguf.TypeQ4_1, gguf.TypeQ5_1, gguf.TypeQ5_K:
		halves = []int{0, 2}
	case gguf.TypeQ2_K:
		halves = []int{q2KOffD, q2KOffD + 2}
	case gguf.TypeQ3_K:
		halves = []int{q3KOffD}
	}
	for b := 0; b < len(data); b += typ.TypeSize() {
		for i, off := range halves {
			v := float32(math.Ldexp(1+r.Float64(), -8+r.IntN(2)))
			if i == 1 && r.IntN(2) == 0 {
				v = -v
			}
			binary.LittleEndian.PutUint16(data[b+off:], F32ToF16(v))
		}
	}
	w, err := NewMatrix(typ, rows, cols, data)
	if err != nil {
		t.Fatal(err)
	}
	wd := make([]float32, rows*cols)
	if err := Dequantize(typ, data, wd); err != nil {
		t.Fatal(err)
	}
	return w, wd
}
