package kernel

import (
	"encoding/binary"
	"math"
)

// The K-quant super-blocks of 256 elements beside Q4_K and Q6_K, as ggml
// lays them out (ggml-common.h).
const (
	q2KBytes = qkK/16 + qkK/4 + 2 + 2     // scales[16], qs[64], f16 d, f16 dmin
	q3KBytes = qkK/8 + qkK/4 + 12 + 2     // hmask[32], qs[64], scales[12], f16 d
	q5KBytes = 2 + 2 + 12 + qkK/8 + qkK/2 // f16 d, f16 dmin, scales[12], qh[32], qs[128]
	q2KOffQs = qkK / 16                   // qs in a Q2_K block
	q2KOffD  = qkK/16 + qkK/4             // d, then dmin
	q3KOffQs = qkK / 8                    // qs in a Q3_K block
	q3KOffSc = qkK/8 + qkK/4              // scales
	q3KOffD  = qkK/8 + qkK/4 + 12         // d
	q5KOffQh = 2 + 2 + 12                 // qh in a Q5_K block
	q5KOffQs = 2 + 2 + 12 + qkK/8         // qs
)

// decodeQ2KGeneric is ggml's dequantize_row_q2_K: 16 sub-blocks of 16, each
// with a 4-bit scale (low nibble of scales[k]) and min (high nibble); x =
// d·sc·q − dmin·m. Each half of the block (128 elements) takes 32 bytes of
// qs, bits 2j..2j+1 of qs[l] and qs[l+16] holding sub-blocks 2j and 2j+1.
func decodeQ2KGeneric(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*q2KBytes]
	for i := 0; i < nb; i++ {
		b := src[i*q2KBytes : (i+1)*q2KBytes]
		d := f16Table[binary.LittleEndian.Uint16(b[q2KOffD:])]
		dmin := f16Table[binary.LittleEndian.Uint16(b[q2KOffD+2:])]
		scales := b[:qkK/16]
		y := dst[i*qkK : (i+1)*qkK]
		is := 0
		for n := 0; n < 2; n++ {
			q := b[q2KOffQs+32*n : q2KOffQs+32*n+32]
			for j := 0; j < 4; j++ {
				shift := 2 * j
				for h := 0; h < 2; h++ {
					sc := scales[is]
					is++
					dl, ml := d*float32(sc&0xf), dmin*float32(sc>>4)
					out := y[128*n+32*j+16*h : 128*n+32*j+16*h+16]
					for l := range out {
						// The explicit conversion keeps the compiler from
						// fusing into an FMA, which would round
						// differently from ggml.
						out[l] = float32(dl*float32(q[16*h+l]>>shift&3)) - ml
					}
				}
			}
		}
	}
}

// q3KScales unpacks the 16 6-bit scales of a Q3_K block from its 12 scale
// bytes as ggml's dequantize_row_q3_K does, through four 32-bit words: the
// low 4 bits in the first 8 bytes, the high 2 bits in the last 4.
func q3KScales(sc []byte) [16]int8 {
	const kmask1, kmask2 = 0x03030303, 0x0f0f0f0f
	a0 := binary.LittleEndian.Uint32(sc[0:])
	a1 := binary.LittleEndian.Uint32(sc[4:])
	tmp := binary.LittleEndian.Uint32(sc[8:])
	aux := [4]uint32{
		a0&kmask2 | (tmp>>0&kmask1)<<4,
		a1&kmask2 | (tmp>>2&kmask1)<<4,
		a0>>4&kmask2 | (tmp>>4&kmask1)<<4,
		a1>>4&kmask2 | (tmp>>6&kmask1)<<4,
	}
	var s [16]int8
	for k, a := range aux {
		for b := 0; b < 4; b++ {
			s[4*k+b] = int8(a >> (8 * b))
		}
	}
	return s
}

// decodeQ3KGeneric is ggml's dequantize_row_q3_K: 16 sub-blocks of 16 with
// 6-bit scales (q3KScales, less 32); x = d·(sc−32)·(q − 4·(1−h)), q the 2
// bits of qs laid out as in Q2_K and h bit j (of the 8 sub-block pairs) of
// hmask[l] or hmask[l+16].
func decodeQ3KGeneric(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*q3KBytes]
	var tab [2][8]float32
	for i := 0; i < nb; i++ {
		b := src[i*q3KBytes : (i+1)*q3KBytes]
		d := f16Table[binary.LittleEndian.Uint16(b[q3KOffD:])]
		scales := q3KScales(b[q3KOffSc : q3KOffSc+12])
		hm := b[:32]
		for n := 0; n < 2; n++ {
			q := b[q3KOffQs+32*n : q3KOffQs+32*n+32]
			for j := 0; j < 4; j++ {
				// Sub-blocks 8n+2j and 8n+2j+1 take bits 2j..2j+1 of
				// q[0:16] and q[16:32], and bit 4n+j of hm (ggml's mask m):
				// set, the quant is q, clear, q − 4. tab holds the 8
				// values dl·(q − 4 + 4h) for q | h<<2 of each, each the
				// product ggml computes.
				for h := range tab {
					dl := d * float32(int(scales[8*n+2*j+h])-32)
					for v := range tab[h] {
						tab[h][v] = dl * float32(v-4)
					}
				}
				shift, bit := uint(2*j), uint(4*n+j)
				out := y32(dst, i*qkK+128*n+32*j)
				for l := 0; l < 16; l++ {
					out[l] = tab[0][q[l]>>shift&3|(hm[l]>>bit&1)<<2]
				}
				for l := 16; l < 32; l++ {
					out[l] = tab[1][q[l]>>shift&3|(hm[l]>>bit&1)<<2]
				}
			}
		}
	}
}

// y32 returns the 32 elements of dst from off.
func y32(dst []float32, off int) *[32]float32 { return (*[32]float32)(dst[off : off+32]) }

// decodeQ5KGeneric is ggml's dequantize_row_q5_K: Q4_K's scales, mins and
// nibbles, plus a fifth bit per element in qh (bits 2k and 2k+1 of qh[l]
// for sub-blocks 2k and 2k+1); x = d·sc·q − dmin·m.
func decodeQ5KGeneric(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*q5KBytes]
	for i := 0; i < nb; i++ {
		b := src[i*q5KBytes : (i+1)*q5KBytes]
		d := f16Table[binary.LittleEndian.Uint16(b)]
		dmin := f16Table[binary.LittleEndian.Uint16(b[2:])]
		scales := b[4:16]
		qh := b[q5KOffQh : q5KOffQh+qkK/8]
		y := dst[i*qkK : (i+1)*qkK]
		for j := 0; j < 4; j++ {
			sc, m := scaleMinK4(2*j, scales)
			d1, m1 := d*float32(sc), dmin*float32(m)
			sc, m = scaleMinK4(2*j+1, scales)
			d2, m2 := d*float32(sc), dmin*float32(m)
			ql := b[q5KOffQs+32*j : q5KOffQs+32*j+32]
			lo := y[64*j : 64*j+32]
			hi := y[64*j+32 : 64*j+64]
			h := qh[:32]
			for l, q := range ql {
				// Bits 2j and 2j+1 of qh[l] are the fifth bits (ggml's
				// masks u1, u2).
				hb := h[l] >> (2 * j)
				q1 := q&0xf | (hb&1)<<4
				q2 := q>>4 | (hb&2)<<3
				lo[l] = float32(d1*float32(q1)) - m1
				hi[l] = float32(d2*float32(q2)) - m2
			}
		}
	}
}

// quantizeQ2KBlock is ggml's quantize_row_q2_K_ref for one super-block.
func quantizeQ2KBlock(dst []byte, x []float32) {
	const q4scale = 15
	var (
		L       [qkK]uint8
		laux    [16]uint8
		weights [16]float32
		scales  [qkK / 16]float32
		mins    [qkK / 16]float32
	)
	var maxScale, maxMin float32
	for j := 0; j < qkK/16; j++ {
		xs := x[16*j : 16*j+16]
		for l, v := range xs {
			weights[l] = float32(math.Abs(float64(v)))
		}
		scales[j], mins[j] = makeQKX2Quants(xs, weights[:], L[16*j:16*j+16], laux[:], 3, -0.5, 0.1, 15, true)
		if scales[j] > maxScale {
			maxScale = scales[j]
		}
		if mins[j] > maxMin {
			maxMin = mins[j]
		}
	}
	sc := dst[:qkK/16]
	clear(sc)
	var dh, mh uint16
	if maxScale > 0 {
		iscale := q4scale / maxScale
		for j := range sc {
			sc[j] = uint8(nearestInt(iscale * scales[j]))
		}
		dh = F32ToF16(maxScale / q4scale)
	}
	if maxMin > 0 {
		iscale := q4scale / maxMin
		for j := range sc {
			sc[j] |= uint8(nearestInt(iscale*mins[j])) << 4
		}
		mh = F32ToF16(maxMin / q4scale)
	}
	binary.LittleEndian.PutUint16(dst[q2KOffD:], dh)
	binary.LittleEndian.PutUint16(dst[q2KOffD+2:], mh)
	for j := 0; j < qkK/16; j++ {
		d := F16ToF32(dh) * float32(sc[j]&0xf)
		if d == 0 {
			continue
		}
		dm := F16ToF32(mh) * float32(sc[j]>>4)
		for ii := 0; ii < 16; ii++ {
			L[16*j+ii] = uint8(clampInt(nearestInt((x[16*j+ii]+dm)/d), 0, 3))
		}
	}
	packQ2Bits(dst[q2KOffQs:q2KOffQs+qkK/4], L[:])
}

// packQ2Bits stores the 2-bit values L (256 of them) as Q2_K and Q3_K do:
// in each half, L[l], L[l+32], L[l+64] and L[l+96] share byte l.
func packQ2Bits(qs []byte, L []uint8) {
	for j := 0; j < qkK; j += 128 {
		for l := 0; l < 32; l++ {
			qs[j/4+l] = L[j+l] | L[j+l+32]<<2 | L[j+l+64]<<4 | L[j+l+96]<<6
		}
	}
}

// makeQ3Quants is ggml's make_q3_quants with do_rmse: it fits x ≈ scale·l
// (l in [-nmax, nmax-1]) weighted by x², refining each l in turn for up to
// five passes, stores l+nmax in L and returns scale.
func makeQ3Quants(x []float32, L []int8, nmax int) float32 {
	mx := largestMagnitude(x)
	if float32(math.Abs(float64(mx))) < groupEps {
		clear(L)
		return 0
	}
	iscale := -float32(nmax) / mx
	var sumLX, sumL2 float32
	for i, v := range x {
		l := clampInt(nearestInt(iscale*v), -nmax, nmax-1)
		L[i] = int8(l)
		w := v * v
		// The float32 conversions round every product before it is
		// added, as C does, so that no compiler fuses them into an FMA.
		sumLX += float32(w * v * float32(l))
		sumL2 += float32(w * float32(l) * float32(l))
	}
	for itry := 0; itry < 5; itry++ {
		changed := 0
		for i, v := range x {
			w := v * v
			li := float32(L[i])
			slx := sumLX - float32(w*v*li)
			if slx <= 0 {
				continue
			}
			sl2 := sumL2 - float32(w*li*li)
			newL := clampInt(nearestInt(v*sl2/slx), -nmax, nmax-1)
			if newL == int(L[i]) {
				continue
			}
			fl := float32(newL)
			slx += float32(w * v * fl)
			sl2 += float32(w * fl * fl)
			if sl2 > 0 && slx*slx*sumL2 > sumLX*sumLX*sl2 {
				L[i] = int8(newL)
				sumLX, sumL2 = slx, sl2
				changed++
			}
		}
		if changed == 0 {
			break
		}
	}
	for i := range L {
		L[i] += int8(nmax)
	}
	if sumL2 > 0 {
		return sumLX / sumL2
	}
	return 0
}

// q3KScale returns the 6-bit scale j (0..63) of a Q3_K block's 12 scale
// bytes, read as ggml's quantize_row_q3_K_ref reads it back.
func q3KScale(sc []byte, j int) int {
	var lo byte
	if j < 8 {
		lo = sc[j] & 0xf
	} else {
		lo = sc[j-8] >> 4
	}
	return int(lo | (sc[8+j%4]>>(2*(j/4))&3)<<4)
}

// quantizeQ3KBlock is ggml's quantize_row_q3_K_ref for one super-block.
func quantizeQ3KBlock(dst []byte, x []float32) {
	var (
		L      [qkK]int8
		scales [qkK / 16]float32
	)
	for j := 0; j < qkK/16; j++ {
		scales[j] = makeQ3Quants(x[16*j:16*j+16], L[16*j:16*j+16], 4)
	}
	maxScale := largestMagnitude(scales[:])
	sc := dst[q3KOffSc : q3KOffSc+12]
	clear(sc)
	var dh uint16
	if maxScale != 0 {
		iscale := -32 / maxScale
		for j := 0; j < qkK/16; j++ {
			l := byte(clampInt(int(int8(nearestInt(iscale*scales[j]))), -32, 31) + 32)
			if j < 8 {
				sc[j] = l & 0xf
			} else {
				sc[j-8] |= (l & 0xf) << 4
			}
			sc[j%4+8] |= (l >> 4) << (2 * (j / 4))
		}
		dh = F32ToF16(1 / iscale)
	}
	binary.LittleEndian.PutUint16(dst[q3KOffD:], dh)
	for j := 0; j < qkK/16; j++ {
		d := F16ToF32(dh) * float32(q3KScale(sc, j)-32)
		if d == 0 {
			continue
		}
		for ii := 0; ii < 16; ii++ {
			L[16*j+ii] = int8(clampInt(nearestInt(x[16*j+ii]/d), -4, 3) + 4)
		}
	}
	hmask := dst[:qkK/8]
	clear(hmask)
	var U [qkK]uint8
	m, hm := 0, byte(1)
	for j := range L {
		U[j] = uint8(L[j])
		if U[j] > 3 {
			hmask[m] |= hm
			U[j] -= 4
		}
		if m++; m == qkK/8 {
			m, hm = 0, hm<<1
		}
	}
	packQ2Bits(dst[q3KOffQs:q3KOffQs+qkK/4], U[:])
}

// quantizeQ5KBlock is ggml's quantize_row_q5_K_ref for one super-block.
func quantizeQ5KBlock(dst []byte, x []float32) {
	var L [qkK]uint8
	scaleMinLevels(dst, x, &L, 31, -0.5, 15)
	qh := dst[q5KOffQh : q5KOffQh+qkK/8]
	clear(qh)
	m1, m2 := byte(1), byte(2)
	for n := 0; n < qkK; n += 64 {
		ql := dst[q5KOffQs+n/2 : q5KOffQs+n/2+32]
		for j := 0; j < 32; j++ {
			l1, l2 := L[n+j], L[n+j+32]
			if l1 > 15 {
				l1 -= 16
				qh[j] |= m1
			}
			if l2 > 15 {
				l2 -= 16
				qh[j] |= m2
			}
			ql[j] = l1 | l2<<4
		}
		m1 <<= 2
		m2 <<= 2
	}
}
