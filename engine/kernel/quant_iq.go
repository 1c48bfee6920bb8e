package kernel

import (
	"encoding/binary"
	"math"
)

// The non-linear 4-bit types: each 4-bit index picks one of the 16 levels
// of kvaluesIQ4NL, scaled per block of 32.
const (
	iq4NLBytes = 2 + qk4/2         // f16 d, qs[16]
	iq4XSBytes = 2 + 2 + 4 + qkK/2 // f16 d, u16 scales_h, scales_l[4], qs[128]
	iq4XSOffQs = 2 + 2 + qkK/64    // qs in an IQ4_XS block
)

// kvaluesIQ4NL is ggml's kvalues_iq4nl: the levels of IQ4_NL and IQ4_XS.
var kvaluesIQ4NL = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// decodeIQ4NLGeneric is ggml's dequantize_row_iq4_nl: x = d·kvalues[q],
// element j in the low nibble of qs[j], element j+16 in the high one.
func decodeIQ4NLGeneric(dst []float32, src []byte) {
	nb := len(dst) / qk4
	src = src[:nb*iq4NLBytes]
	for i := 0; i < nb; i++ {
		b := src[i*iq4NLBytes : (i+1)*iq4NLBytes]
		d := f16Table[binary.LittleEndian.Uint16(b)]
		qs := b[2 : 2+qk4/2]
		y := dst[i*qk4 : (i+1)*qk4]
		for j, q := range qs {
			y[j] = d * float32(kvaluesIQ4NL[q&0xf])
			y[j+qk4/2] = d * float32(kvaluesIQ4NL[q>>4])
		}
	}
}

// decodeIQ4XSGeneric is ggml's dequantize_row_iq4_xs: 8 sub-blocks of 32,
// each with a 6-bit scale ls (low 4 bits in a nibble of scales_l, high 2 in
// scales_h) and IQ4_NL's layout of 16 bytes of qs; x = d·(ls−32)·kvalues[q].
func decodeIQ4XSGeneric(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*iq4XSBytes]
	for i := 0; i < nb; i++ {
		b := src[i*iq4XSBytes : (i+1)*iq4XSBytes]
		d := f16Table[binary.LittleEndian.Uint16(b)]
		scalesH := binary.LittleEndian.Uint16(b[2:])
		scalesL := b[4 : 4+qkK/64]
		for ib := 0; ib < qkK/32; ib++ {
			ls := int(scalesL[ib/2]>>(4*(ib%2))&0xf) | int(scalesH>>(2*ib)&3)<<4
			dl := d * float32(ls-32)
			qs := b[iq4XSOffQs+16*ib : iq4XSOffQs+16*ib+16]
			y := dst[i*qkK+32*ib : i*qkK+32*ib+32]
			for j, q := range qs {
				y[j] = dl * float32(kvaluesIQ4NL[q&0xf])
				y[j+16] = dl * float32(kvaluesIQ4NL[q>>4])
			}
		}
	}
}

// iq4Tries is the ntry with which ggml's quantize_iq4_nl and
// quantize_iq4_xs (what llama-quantize calls) search for each block's scale.
const iq4Tries = 7

// bestIndexIQ4 is ggml's best_index_int8 over kvaluesIQ4NL: the index of
// the level nearest x, a tie going to the higher level. It compares 2x with
// the sum of two neighbouring levels, exactly, as ggml does.
func bestIndexIQ4(x float32) int {
	x2 := x + x
	idx := 0
	for step := 8; step > 0; step >>= 1 {
		j := idx + step
		if x2 >= float32(int(kvaluesIQ4NL[j-1])+int(kvaluesIQ4NL[j])) {
			idx = j
		}
	}
	return idx
}

// quantizeIQ4 is ggml's quantize_row_iq4_nl_impl without importance
// weights, for one IQ4_NL block (len(x) = 32) or one IQ4_XS super-block
// (len(x) = 256, scalesH and scalesL not nil): per block of 32 it fits d
// by weighted least squares (weights x²) over 2·ntry+1 trial scales; an
// IQ4_XS super-block then keeps one f16 scale and a 6-bit multiple of it
// per block, and re-picks the levels. It stores the quants in q4 and
// returns the f16 scale.
func quantizeIQ4(x []float32, q4 []byte, scalesH *uint16, scalesL []byte, ntry int) uint16 {
	var (
		L      [qkK]uint8
		weight [32]float32
		scales [qkK / 32]float32
	)
	nb := len(x) / 32
	clear(q4)
	v0 := float32(kvaluesIQ4NL[0])
	for ib := 0; ib < nb; ib++ {
		xb := x[32*ib : 32*ib+32]
		Lb := L[32*ib : 32*ib+32]
		for j, v := range xb {
			weight[j] = v * v
		}
		mx := largestMagnitude(xb)
		if float32(math.Abs(float64(mx))) < groupEps {
			scales[ib] = 0
			clear(Lb)
			continue
		}
		d := mx / v0
		if ntry > 0 {
			d = -mx / v0
		}
		id := 1 / d
		var sumQX, sumQ2 float32
		for j, v := range xb {
			l := bestIndexIQ4(id * v)
			Lb[j] = uint8(l)
			q := float32(kvaluesIQ4NL[l])
			// The float32 conversions round every product before it is
			// added, as C does, so that no compiler fuses them into an FMA.
			sumQX += float32(weight[j] * q * v)
			sumQ2 += float32(weight[j] * q * q)
		}
		d = 0
		if sumQ2 > 0 {
			d = sumQX / sumQ2
		}
		best := d * sumQX
		for itry := -ntry; itry <= ntry; itry++ {
			id = float32(itry+int(kvaluesIQ4NL[0])) / mx
			sumQX, sumQ2 = 0, 0
			for j, v := range xb {
				q := float32(kvaluesIQ4NL[bestIndexIQ4(id*v)])
				sumQX += float32(weight[j] * q * v)
				sumQ2 += float32(weight[j] * q * q)
			}
			if sumQ2 > 0 && sumQX*sumQX > best*sumQ2 {
				d = sumQX / sumQ2
				best = d * sumQX
			}
		}
		scales[ib] = d
	}
	maxScale := largestMagnitude(scales[:nb])
	var dh uint16
	if nb > 1 {
		*scalesH = 0
		d := -maxScale / 32
		dh = F32ToF16(d)
		var id float32
		if d != 0 {
			id = 1 / d
		}
		for ib := 0; ib < nb; ib++ {
			l := clampInt(nearestInt(id*scales[ib]), -32, 31)
			dl := d * float32(l)
			var idl float32
			if dl != 0 {
				idl = 1 / dl
			}
			for j, v := range x[32*ib : 32*ib+32] {
				L[32*ib+j] = uint8(bestIndexIQ4(idl * v))
			}
			l += 32
			if ib%2 == 0 {
				scalesL[ib/2] = byte(l & 0xf)
			} else {
				scalesL[ib/2] |= byte(l&0xf) << 4
			}
			*scalesH |= uint16(l>>4) << (2 * (ib % 8))
		}
	} else {
		dh = F32ToF16(scales[0])
		if ntry > 0 {
			var id float32
			if scales[0] != 0 {
				id = 1 / scales[0]
			}
			for j, v := range x {
				L[j] = uint8(bestIndexIQ4(id * v))
			}
		}
	}
	for i := 0; i < len(x)/32; i++ {
		for j := 0; j < 16; j++ {
			q4[16*i+j] = L[32*i+j] | L[32*i+16+j]<<4
		}
	}
	return dh
}

// quantizeIQ4NLBlock is ggml's quantize_iq4_nl (without importance
// weights) for one block.
func quantizeIQ4NLBlock(dst []byte, x []float32) {
	dh := quantizeIQ4(x, dst[2:2+qk4/2], nil, nil, iq4Tries)
	binary.LittleEndian.PutUint16(dst, dh)
}

// quantizeIQ4XSBlock is ggml's quantize_row_iq4_xs_ref for one super-block.
func quantizeIQ4XSBlock(dst []byte, x []float32) {
	var scalesH uint16
	dh := quantizeIQ4(x, dst[iq4XSOffQs:iq4XSOffQs+qkK/2], &scalesH, dst[4:4+qkK/64], iq4Tries)
	binary.LittleEndian.PutUint16(dst, dh)
	binary.LittleEndian.PutUint16(dst[2:], scalesH)
}
