package kernel

import "math"

// F32ToF16 converts f to IEEE 754 binary16 bits, rounding to nearest even as
// ggml (and the F16C instruction VCVTPS2PH) do. Values too large for a half
// become ±Inf, values too small become ±0 or a half subnormal. A NaN stays a
// NaN with its payload's top bits kept (the quiet bit is set only when
// truncation would otherwise leave no payload), so every half decodes and
// re-encodes to itself.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant == 0 {
			return sign | 0x7c00
		}
		h := uint16(mant >> 13)
		if h == 0 {
			h = 0x200
		}
		return sign | 0x7c00 | h
	}
	e := exp - 127 + 15 // the half's biased exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// A half subnormal (or zero): m·2^-24 with m = full >> (14-e).
		if e < -10 {
			return sign // below half of the smallest subnormal
		}
		full := mant | 0x800000
		shift := uint(14 - e)
		m := full >> shift
		rem := full & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && m&1 == 1) {
			m++ // may carry into the smallest normal, which is right
		}
		return sign | uint16(m)
	}
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, up to Inf, which is right
	}
	return sign | uint16(h)
}

// F16ToF32 converts IEEE 754 binary16 bits to a float32 exactly (every half
// is representable as a float32), subnormals, infinities and NaN payloads
// included.
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: normalize the mantissa.
	e := uint32(127 - 15 + 1)
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

// f16Table maps every half to its float32, as ggml's table_f32_f16 does: one
// load is cheaper than the bit manipulation in a row decoder's inner loop.
var f16Table = func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = F16ToF32(uint16(i))
	}
	return &t
}()

// F32ToBF16 converts f to bfloat16 bits, rounding to nearest even exactly as
// ggml's ggml_compute_fp32_to_bf16 does: a NaN keeps its top bits and is made
// quiet, everything else (subnormals included) is rounded.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 64
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// BF16ToF32 converts bfloat16 bits to a float32 exactly.
func BF16ToF32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}
