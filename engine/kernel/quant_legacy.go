package kernel

import (
	"encoding/binary"
	"math"
)

// ggml's first quantized types: blocks of 32 elements with one f16 scale d
// (and, for the _1 types, an f16 offset m), 4-bit quants in qs (element j in
// the low nibble of qs[j], element j+16 in the high one) and, for the 5-bit
// types, the fifth bits in the 32-bit word qh (bit j for element j).
const (
	qk4 = 32 // elements per Q4_0, Q4_1, Q5_0, Q5_1 and IQ4_NL block

	q4_0Bytes = 2 + qk4/2         // f16 d, qs[16]
	q4_1Bytes = 2 + 2 + qk4/2     // f16 d, f16 m, qs[16]
	q5_0Bytes = 2 + 4 + qk4/2     // f16 d, qh[4], qs[16]
	q5_1Bytes = 2 + 2 + 4 + qk4/2 // f16 d, f16 m, qh[4], qs[16]
)

// decodeQ4_0Generic is ggml's dequantize_row_q4_0: x = (q − 8)·d.
func decodeQ4_0Generic(dst []float32, src []byte) {
	nb := len(dst) / qk4
	src = src[:nb*q4_0Bytes]
	for i := 0; i < nb; i++ {
		b := src[i*q4_0Bytes : (i+1)*q4_0Bytes]
		d := f16Table[binary.LittleEndian.Uint16(b)]
		qs := b[2 : 2+qk4/2]
		y := dst[i*qk4 : (i+1)*qk4]
		for j, q := range qs {
			y[j] = float32(int(q&0xf)-8) * d
			y[j+qk4/2] = float32(int(q>>4)-8) * d
		}
	}
}

// decodeQ4_1Generic is ggml's dequantize_row_q4_1: x = q·d + m.
func decodeQ4_1Generic(dst []float32, src []byte) {
	nb := len(dst) / qk4
	src = src[:nb*q4_1Bytes]
	for i := 0; i < nb; i++ {
		b := src[i*q4_1Bytes : (i+1)*q4_1Bytes]
		d := f16Table[binary.LittleEndian.Uint16(b)]
		m := f16Table[binary.LittleEndian.Uint16(b[2:])]
		qs := b[4 : 4+qk4/2]
		y := dst[i*qk4 : (i+1)*qk4]
		for j, q := range qs {
			// The explicit conversions keep the compiler from fusing
			// into an FMA, which would round differently from ggml.
			y[j] = float32(float32(q&0xf)*d) + m
			y[j+qk4/2] = float32(float32(q>>4)*d) + m
		}
	}
}

// decodeQ5_0Generic is ggml's dequantize_row_q5_0: x = (q − 16)·d.
func decodeQ5_0Generic(dst []float32, src []byte) {
	nb := len(dst) / qk4
	src = src[:nb*q5_0Bytes]
	for i := 0; i < nb; i++ {
		b := src[i*q5_0Bytes : (i+1)*q5_0Bytes]
		d := f16Table[binary.LittleEndian.Uint16(b)]
		qh := binary.LittleEndian.Uint32(b[2:])
		qs := b[6 : 6+qk4/2]
		y := dst[i*qk4 : (i+1)*qk4]
		for j, q := range qs {
			h0 := byte(qh>>j<<4) & 0x10
			h1 := byte(qh>>(j+12)) & 0x10
			y[j] = float32(int(q&0xf|h0)-16) * d
			y[j+qk4/2] = float32(int(q>>4|h1)-16) * d
		}
	}
}

// decodeQ5_1Generic is ggml's dequantize_row_q5_1: x = q·d + m.
func decodeQ5_1Generic(dst []float32, src []byte) {
	nb := len(dst) / qk4
	src = src[:nb*q5_1Bytes]
	for i := 0; i < nb; i++ {
		b := src[i*q5_1Bytes : (i+1)*q5_1Bytes]
		d := f16Table[binary.LittleEndian.Uint16(b)]
		m := f16Table[binary.LittleEndian.Uint16(b[2:])]
		qh := binary.LittleEndian.Uint32(b[4:])
		qs := b[8 : 8+qk4/2]
		y := dst[i*qk4 : (i+1)*qk4]
		for j, q := range qs {
			h0 := byte(qh>>j<<4) & 0x10
			h1 := byte(qh>>(j+12)) & 0x10
			y[j] = float32(float32(q&0xf|h0)*d) + m
			y[j+qk4/2] = float32(float32(q>>4|h1)*d) + m
		}
	}
}

// quantizeQ4_0Block is ggml's quantize_row_q4_0_ref for one block: d is the
// element of largest magnitude over −8, q = min(15, trunc(x/d + 8.5)).
func quantizeQ4_0Block(dst []byte, x []float32) {
	mx := largestMagnitude(x)
	d := mx / -8
	var id float32
	if d != 0 {
		id = 1 / d
	}
	binary.LittleEndian.PutUint16(dst, F32ToF16(d))
	qs := dst[2 : 2+qk4/2]
	for j := range qs {
		x0 := min(15, truncInt8(float32(x[j]*id)+8.5))
		x1 := min(15, truncInt8(float32(x[j+qk4/2]*id)+8.5))
		qs[j] = byte(x0) | byte(x1)<<4
	}
}

// quantizeQ4_1Block is ggml's quantize_row_q4_1_ref for one block: m is the
// minimum, d = (max − min)/15, q = min(15, trunc((x − m)/d + 0.5)).
func quantizeQ4_1Block(dst []byte, x []float32) {
	mn, mx := minMax(x)
	d := (mx - mn) / 15
	var id float32
	if d != 0 {
		id = 1 / d
	}
	binary.LittleEndian.PutUint16(dst, F32ToF16(d))
	binary.LittleEndian.PutUint16(dst[2:], F32ToF16(mn))
	qs := dst[4 : 4+qk4/2]
	for j := range qs {
		x0 := min(15, truncInt8(float32(float32(x[j]-mn)*id)+0.5))
		x1 := min(15, truncInt8(float32(float32(x[j+qk4/2]-mn)*id)+0.5))
		qs[j] = byte(x0) | byte(x1)<<4
	}
}

// quantizeQ5_0Block is ggml's quantize_row_q5_0_ref for one block: d is the
// element of largest magnitude over −16, q = min(31, trunc(x/d + 16.5)).
func quantizeQ5_0Block(dst []byte, x []float32) {
	mx := largestMagnitude(x)
	d := mx / -16
	var id float32
	if d != 0 {
		id = 1 / d
	}
	binary.LittleEndian.PutUint16(dst, F32ToF16(d))
	qs := dst[6 : 6+qk4/2]
	var qh uint32
	for j := range qs {
		x0 := byte(min(31, truncInt8(float32(x[j]*id)+16.5)))
		x1 := byte(min(31, truncInt8(float32(x[j+qk4/2]*id)+16.5)))
		qs[j] = x0&0xf | (x1&0xf)<<4
		qh |= uint32(x0>>4&1)<<j | uint32(x1>>4&1)<<(j+qk4/2)
	}
	binary.LittleEndian.PutUint32(dst[2:], qh)
}

// quantizeQ5_1Block is ggml's quantize_row_q5_1_ref for one block: m is the
// minimum, d = (max − min)/31, q = trunc((x − m)/d + 0.5).
func quantizeQ5_1Block(dst []byte, x []float32) {
	mn, mx := minMax(x)
	d := (mx - mn) / 31
	var id float32
	if d != 0 {
		id = 1 / d
	}
	binary.LittleEndian.PutUint16(dst, F32ToF16(d))
	binary.LittleEndian.PutUint16(dst[2:], F32ToF16(mn))
	qs := dst[8 : 8+qk4/2]
	var qh uint32
	for j := range qs {
		x0 := truncUint8(float32(float32(x[j]-mn)*id) + 0.5)
		x1 := truncUint8(float32(float32(x[j+qk4/2]-mn)*id) + 0.5)
		qs[j] = x0&0xf | (x1&0xf)<<4
		qh |= uint32(x0>>4&1)<<j | uint32(x1>>4&1)<<(j+qk4/2)
	}
	binary.LittleEndian.PutUint32(dst[4:], qh)
}

// largestMagnitude returns the element of x of largest magnitude (the
// first of them), with its sign.
func largestMagnitude(x []float32) float32 {
	var amax, mx float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); amax < a {
			amax, mx = a, v
		}
	}
	return mx
}

// minMax returns the smallest and largest of x, starting from ±MaxFloat32
// and comparing as ggml does (a NaN is skipped).
func minMax(x []float32) (mn, mx float32) {
	mn, mx = math.MaxFloat32, -math.MaxFloat32
	for _, v := range x {
		if v < mn {
			mn = v
		}
		if v > mx {
			mx = v
		}
	}
	return mn, mx
}

// truncInt8 is C's (int8_t)f for the values ggml's quantizers convert (the
// quotient x/d plus an offset, within [0, 32) up to rounding): the integer
// part, saturated so that a NaN or an out-of-range value cannot wrap.
func truncInt8(f float32) int {
	if !(f > -128) {
		return -128
	}
	if f >= 127 {
		return 127
	}
	return int(f)
}

// truncUint8 is C's (uint8_t)f for the values quantizeQ5_1Block converts,
// saturated like truncInt8.
func truncUint8(f float32) byte {
	if !(f > 0) {
		return 0
	}
	if f >= 255 {
		return 255
	}
	return byte(f)
}
