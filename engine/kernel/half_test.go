package kernel

import (
	"math"
	"testing"
)

func TestF16RoundTripEveryHalf(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := F16ToF32(h)
		if got := F32ToF16(f); got != h {
			t.Fatalf("F32ToF16(F16ToF32(%#04x) = %g) = %#04x", h, f, got)
		}
		if math.Float32bits(f16Table[h]) != math.Float32bits(f) {
			t.Fatalf("f16Table[%#04x] = %g, want %g", h, f16Table[h], f)
		}
	}
}

func TestF16Values(t *testing.T) {
	tests := []struct {
		name string
		f    float32
		h    uint16
	}{
		{"zero", 0, 0x0000},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000},
		{"one", 1, 0x3c00},
		{"minus two", -2, 0xc000},
		{"max half", 65504, 0x7bff},
		{"just under the overflow tie", 65519.996, 0x7bff},
		{"overflow tie rounds to even, inf", 65520, 0x7c00},
		{"huge", 1e10, 0x7c00},
		{"inf", float32(math.Inf(1)), 0x7c00},
		{"minus inf", float32(math.Inf(-1)), 0xfc00},
		{"smallest normal", 1.0 / (1 << 14), 0x0400},
		{"largest subnormal", 1023.0 / (1 << 24), 0x03ff},
		{"smallest subnormal", 1.0 / (1 << 24), 0x0001},
		{"half the smallest subnormal ties to zero", 1.0 / (1 << 25), 0x0000},
		{"just over half the smallest subnormal", math.Nextafter32(1.0/(1<<25), 1), 0x0001},
		{"1.5 subnormal steps ties to 2", 3.0 / (1 << 25), 0x0002},
		{"2.5 subnormal steps ties to 2", 5.0 / (1 << 25), 0x0002},
		{"subnormal rounding up into the normals", 2047.0 / (1 << 25), 0x0400},
		{"float32 subnormal", math.Float32frombits(1), 0x0000},
		{"1+2^-11 ties to even (down)", 1 + 1.0/(1<<11), 0x3c00},
		{"1+3·2^-11 ties to even (up)", 1 + 3.0/(1<<11), 0x3c02},
		{"0.1", 0.1, 0x2e66},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := F32ToF16(tt.f); got != tt.h {
				t.Errorf("F32ToF16(%g) = %#04x, want %#04x", tt.f, got, tt.h)
			}
		})
	}
	if h := F32ToF16(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("F32ToF16(NaN) = %#04x, not a NaN", h)
	}
	if h := F32ToF16(math.Float32frombits(0x7f800001)); h&0x3ff == 0 {
		t.Errorf("F32ToF16 of a NaN with only low payload bits = %#04x, not a NaN", h)
	}
}

// TestF16Nearest checks on random float32s of every magnitude that the half
// chosen is a nearest one, and the even one on a tie.
func TestF16Nearest(t *testing.T) {
	r := newRand(1)
	for n := 0; n < 200000; n++ {
		f := math.Float32frombits(r.Uint32())
		if f != f || math.Abs(float64(f)) >= 65520 {
			continue
		}
		h := F32ToF16(f)
		got := float64(F16ToF32(h))
		d := math.Abs(got - float64(f))
		for _, nb := range []uint16{h - 1, h + 1} {
			if nb&0x7c00 == 0x7c00 || (h&0x7fff == 0 && nb == h-1) {
				continue // not a finite neighbour
			}
			dn := math.Abs(float64(F16ToF32(nb)) - float64(f))
			if dn < d || (dn == d && h&1 == 1) {
				t.Fatalf("F32ToF16(%g) = %#04x (%g), but %#04x (%g) is nearer or an even tie", f, h, got, nb, F16ToF32(nb))
			}
		}
	}
}

func TestBF16(t *testing.T) {
	tests := []struct {
		name string
		f    float32
		h    uint16
	}{
		{"one", 1, 0x3f80},
		{"minus one", -1, 0xbf80},
		{"tie rounds to even (down)", math.Float32frombits(0x3f808000), 0x3f80},
		{"tie rounds to even (up)", math.Float32frombits(0x3f818000), 0x3f82},
		{"above the tie", math.Float32frombits(0x3f808001), 0x3f81},
		{"max float rounds to inf", math.MaxFloat32, 0x7f80},
		{"inf", float32(math.Inf(1)), 0x7f80},
		{"subnormal kept", math.Float32frombits(0x00010000), 0x0001},
		{"quiet nan", math.Float32frombits(0x7fc00000), 0x7fc0},
		{"signalling nan made quiet", math.Float32frombits(0x7f800001), 0x7fc0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := F32ToBF16(tt.f); got != tt.h {
				t.Errorf("F32ToBF16(%#08x) = %#04x, want %#04x", math.Float32bits(tt.f), got, tt.h)
			}
		})
	}
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := BF16ToF32(h)
		want := h
		if f != f {
			want |= 64
		}
		if got := F32ToBF16(f); got != want {
			t.Fatalf("F32ToBF16(BF16ToF32(%#04x)) = %#04x", h, got)
		}
	}
}
