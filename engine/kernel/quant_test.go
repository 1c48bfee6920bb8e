package kernel

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/dfill/dfill/engine/gguf"
)

var allTypes = []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16, gguf.TypeQ8_0, gguf.TypeQ4_K, gguf.TypeQ6_K}

// TestQuantizeError quantizes Gaussian data and checks the RMS error relative
// to the data's RMS. Measured with this seed and 64 Ki values:
//
//	F32 0, F16 2.09e-4, BF16 1.66e-3, Q8_0 5.37e-3, Q6_K 1.77e-2, Q4_K 7.16e-2.
//
// (The expected levels of ggml's own quantizers on such data: f16 ~1e-3,
// bf16 ~4e-3, q8_0 ~1e-2, q6_K ~2e-2, q4_K ~7e-2.) The bounds leave about 20%
// headroom above the measured values.
func TestQuantizeError(t *testing.T) {
	tests := []struct {
		name string
		typ  gguf.Type
		max  float64
	}{
		{"F32", gguf.TypeF32, 0},
		{"F16", gguf.TypeF16, 2.5e-4},
		{"BF16", gguf.TypeBF16, 2e-3},
		{"Q8_0", gguf.TypeQ8_0, 6.5e-3},
		{"Q6_K", gguf.TypeQ6_K, 2.1e-2},
		{"Q4_K", gguf.TypeQ4_K, 8.5e-2},
	}
	x := gaussian(newRand(2), 1<<16)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Quantize(tt.typ, x)
			if err != nil {
				t.Fatal(err)
			}
			if size, _ := tt.typ.RowSize(len(x)); len(q) != size {
				t.Fatalf("Quantize gave %d bytes, want %d", len(q), size)
			}
			y := make([]float32, len(x))
			if err := Dequantize(tt.typ, q, y); err != nil {
				t.Fatal(err)
			}
			e := relRMS(y, x)
			t.Logf("%s: RMS error / RMS = %.2e", tt.typ, e)
			if e > tt.max {
				t.Errorf("relative RMS error %.3e, want ≤ %.1e", e, tt.max)
			}
		})
	}
}

// TestQuantizeSpecialBlocks checks blocks that are all zero, constant, or
// hold one outlier: they must decode without NaN and close to the input.
func TestQuantizeSpecialBlocks(t *testing.T) {
	outlier := make([]float32, 256)
	for i := range outlier {
		outlier[i] = 0.01 * float32(i%7+1)
	}
	outlier[100] = 50
	constant := make([]float32, 256)
	for i := range constant {
		constant[i] = -3
	}
	inputs := []struct {
		name string
		x    []float32
	}{
		{"zeros", make([]float32, 256)},
		{"constant", constant},
		{"outlier", outlier},
	}
	for _, typ := range allTypes {
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
				var amax float32
				for _, v := range in.x {
					amax = max(amax, float32(math.Abs(float64(v))))
				}
				for i := range y {
					// 4-bit steps over the whole range bound every type's error.
					if d := math.Abs(float64(y[i] - in.x[i])); !(d <= float64(amax)/15) {
						t.Fatalf("element %d: %g decodes to %g", i, in.x[i], y[i])
					}
				}
			})
		}
	}
}

func TestDequantizeErrors(t *testing.T) {
	tests := []struct {
		name string
		typ  gguf.Type
		src  int // bytes
		dst  int // elements
	}{
		{"unknown type", gguf.Type(99), 4, 1},
		{"partial Q8_0 block", gguf.TypeQ8_0, 34, 31},
		{"partial Q4_K block", gguf.TypeQ4_K, 144, 128},
		{"short source", gguf.TypeQ6_K, 209, 256},
		{"long source", gguf.TypeF16, 10, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Dequantize(tt.typ, make([]byte, tt.src), make([]float32, tt.dst)); err == nil {
				t.Errorf("Dequantize: no error")
			}
			if tt.src == tt.typ.TypeSize() || !tt.typ.Known() {
				if _, err := Quantize(tt.typ, make([]float32, tt.dst)); err == nil {
					t.Errorf("Quantize: no error")
				}
			}
		})
	}
	if err := Dequantize(gguf.Type(99), nil, nil); !errors.Is(err, gguf.ErrUnknownType) {
		t.Errorf("unknown type: error %v is not gguf.ErrUnknownType", err)
	}
	if err := Dequantize(gguf.TypeF16, make([]byte, 3), make([]float32, 2)); !errors.Is(err, ErrSize) {
		t.Errorf("short source: error %v is not ErrSize", err)
	}
}

// The layout tests below build blocks from their fields by a direct reading
// of ggml's struct definitions, independent of the package's packing code,
// and check the decoders element by element against x = f(fields) computed
// in float64 from the documented formula. Tolerance: 1e-6 relative (the
// decoders round the product of scales to float32 once, as ggml does).

func closeTo(got float32, want float64) bool {
	return math.Abs(float64(got)-want) <= 1e-6*math.Abs(want)+1e-30
}

func TestQ8_0Layout(t *testing.T) {
	r := newRand(3)
	b := make([]byte, 2*q8_0Bytes)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	for blk := 0; blk < 2; blk++ {
		binary.LittleEndian.PutUint16(b[blk*q8_0Bytes:], F32ToF16(0.03125*float32(blk+1)))
	}
	y := make([]float32, 64)
	if err := Dequantize(gguf.TypeQ8_0, b, y); err != nil {
		t.Fatal(err)
	}
	for e := range y {
		blk := b[e/32*q8_0Bytes:]
		d := float64(F16ToF32(binary.LittleEndian.Uint16(blk)))
		want := d * float64(int8(blk[2+e%32]))
		if !closeTo(y[e], want) {
			t.Fatalf("element %d: %g, want %g", e, y[e], want)
		}
	}
}

func TestQ4KLayout(t *testing.T) {
	r := newRand(4)
	var sc, mn [8]uint8
	var q [256]uint8
	for j := range sc {
		sc[j], mn[j] = uint8(r.IntN(64)), uint8(r.IntN(64))
	}
	sc[5], mn[6] = 63, 63 // exercise the top bits of the packing
	for i := range q {
		q[i] = uint8(r.IntN(16))
	}
	d, dmin := float32(0.0123), float32(0.0456)
	b := make([]byte, q4KBytes)
	binary.LittleEndian.PutUint16(b[0:], F32ToF16(d))
	binary.LittleEndian.PutUint16(b[2:], F32ToF16(dmin))
	// scales[0:4]: low 6 bits scale j, top 2 bits: high bits of scale j+4.
	// scales[4:8]: low 6 bits min j, top 2 bits: high bits of min j+4.
	// scales[8:12]: low nibble low bits of scale j+4, high nibble of min j+4.
	for j := 0; j < 4; j++ {
		b[4+j] = sc[j] | (sc[j+4]>>4)<<6
		b[8+j] = mn[j] | (mn[j+4]>>4)<<6
		b[12+j] = sc[j+4]&0xf | (mn[j+4]&0xf)<<4
	}
	// qs: 32 bytes per 64 elements, low nibbles first.
	for e, v := range q {
		k, i := e/64, e%64
		if i < 32 {
			b[16+32*k+i] |= v
		} else {
			b[16+32*k+i-32] |= v << 4
		}
	}
	y := make([]float32, 256)
	if err := Dequantize(gguf.TypeQ4_K, b, y); err != nil {
		t.Fatal(err)
	}
	dd := float64(F16ToF32(F32ToF16(d)))
	dm := float64(F16ToF32(F32ToF16(dmin)))
	for e := range y {
		j := e / 32
		want := dd*float64(sc[j])*float64(q[e]) - dm*float64(mn[j])
		if math.Abs(float64(y[e])-want) > 1e-6*(dd*63*15+dm*63) {
			t.Fatalf("element %d (sub-block %d): %g, want %g", e, j, y[e], want)
		}
	}
}

func TestQ6KLayout(t *testing.T) {
	r := newRand(5)
	var sc [16]int8
	var q [256]int // 0..63, value q-32
	for j := range sc {
		sc[j] = int8(r.IntN(256) - 128)
	}
	for i := range q {
		q[i] = r.IntN(64)
	}
	d := float32(0.0021)
	b := make([]byte, q6KBytes)
	ql, qh, scales := b[0:128], b[128:192], b[192:208]
	binary.LittleEndian.PutUint16(b[208:], F32ToF16(d))
	for j, s := range sc {
		scales[j] = byte(s)
	}
	// Each half n of the block: element 128n + 32g + l (g = 0..3, l < 32)
	// keeps its low 4 bits in ql[64n + 32(g&1) + l] (low nibble for g < 2,
	// high for g ≥ 2) and its high 2 bits in qh[32n + l] at bit 2g.
	for e, v := range q {
		n, g, l := e/128, e%128/32, e%32
		p := 64*n + 32*(g&1) + l
		if g < 2 {
			ql[p] |= byte(v & 0xf)
		} else {
			ql[p] |= byte(v&0xf) << 4
		}
		qh[32*n+l] |= byte(v>>4) << (2 * g)
	}
	y := make([]float32, 256)
	if err := Dequantize(gguf.TypeQ6_K, b, y); err != nil {
		t.Fatal(err)
	}
	dd := float64(F16ToF32(F32ToF16(d)))
	for e := range y {
		want := dd * float64(sc[e/16]) * float64(q[e]-32)
		if !closeTo(y[e], want) {
			t.Fatalf("element %d: %g, want %g", e, y[e], want)
		}
	}
}
