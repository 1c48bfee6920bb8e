package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/dfill/dfill/engine/gguf"
)

// ErrSize is returned when a buffer's length does not fit the shape or
// block size it is used with.
var ErrSize = errors.New("kernel: size mismatch")

// Block geometry of the quantized types, as ggml lays them out.
const (
	qk8_0 = 32  // elements per Q8_0 block
	qkK   = 256 // elements per K-quant super-block

	q8_0Bytes = 2 + qk8_0                  // f16 d, int8 qs[32]
	q4KBytes  = 2 + 2 + 12 + qkK/2         // f16 d, f16 dmin, scales[12], qs[128]
	q6KBytes  = qkK/2 + qkK/4 + qkK/16 + 2 // ql[128], qh[64], int8 scales[16], f16 d
	groupEps  = float32(1e-15)             // ggml's GROUP_MAX_EPS
)

// A rowDecoder converts len(dst) elements stored in src (exactly
// len(dst)/BlockSize blocks) to float32.
type rowDecoder func(dst []float32, src []byte)

// The row decoders, one per type. They are variables so that an assembly
// implementation can replace them at init.
var (
	decodeF32  rowDecoder = decodeF32Generic
	decodeF16  rowDecoder = decodeF16Generic
	decodeBF16 rowDecoder = decodeBF16Generic
	decodeQ8_0 rowDecoder = decodeQ8_0Generic
	decodeQ4K  rowDecoder = decodeQ4KGeneric
	decodeQ6K  rowDecoder = decodeQ6KGeneric
)

// The decoders of the other types, pure Go on every machine.
var otherDecoders = map[gguf.Type]rowDecoder{
	gguf.TypeQ4_0:   decodeQ4_0Generic,
	gguf.TypeQ4_1:   decodeQ4_1Generic,
	gguf.TypeQ5_0:   decodeQ5_0Generic,
	gguf.TypeQ5_1:   decodeQ5_1Generic,
	gguf.TypeQ2_K:   decodeQ2KGeneric,
	gguf.TypeQ3_K:   decodeQ3KGeneric,
	gguf.TypeQ5_K:   decodeQ5KGeneric,
	gguf.TypeIQ4_NL: decodeIQ4NLGeneric,
	gguf.TypeIQ4_XS: decodeIQ4XSGeneric,
}

// decoderFor returns the row decoder of t, or nil for a type it cannot read.
func decoderFor(t gguf.Type) rowDecoder {
	switch t {
	case gguf.TypeF32:
		return decodeF32
	case gguf.TypeF16:
		return decodeF16
	case gguf.TypeBF16:
		return decodeBF16
	case gguf.TypeQ8_0:
		return decodeQ8_0
	case gguf.TypeQ4_K:
		return decodeQ4K
	case gguf.TypeQ6_K:
		return decodeQ6K
	}
	return otherDecoders[t]
}

// Dequantize converts len(dst) elements of type t stored in src to float32.
// len(dst) must be a whole number of t's blocks and src exactly the bytes
// they take.
func Dequantize(t gguf.Type, src []byte, dst []float32) error {
	dec := decoderFor(t)
	if dec == nil {
		return fmt.Errorf("kernel: dequantize: %w: %s", gguf.ErrUnknownType, t)
	}
	size, err := t.RowSize(len(dst))
	if err != nil {
		return fmt.Errorf("kernel: dequantize %d elements: %w", len(dst), err)
	}
	if size != len(src) {
		return fmt.Errorf("kernel: dequantize %d %s elements: %w: they take %d bytes, got %d", len(dst), t, ErrSize, size, len(src))
	}
	dec(dst, src)
	return nil
}

// Quantize converts src to type t and returns the encoded blocks. len(src)
// must be a whole number of t's blocks. The encoders follow ggml's
// reference quantizers (quantize_row_q4_0_ref … quantize_row_q6_K_ref), so
// ggml decodes their output to the same values Dequantize does (IQ4_NL
// follows quantize_iq4_nl, what llama-quantize calls, rather than the
// faster quantize_row_iq4_nl_ref).
func Quantize(t gguf.Type, src []float32) ([]byte, error) {
	if !t.Known() {
		return nil, fmt.Errorf("kernel: quantize: %w: %s", gguf.ErrUnknownType, t)
	}
	size, err := t.RowSize(len(src))
	if err != nil {
		return nil, fmt.Errorf("kernel: quantize %d elements: %w", len(src), err)
	}
	dst := make([]byte, size)
	switch t {
	case gguf.TypeF32:
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case gguf.TypeF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], F32ToF16(v))
		}
	case gguf.TypeBF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], F32ToBF16(v))
		}
	case gguf.TypeQ8_0:
		for i := 0; i < len(src)/qk8_0; i++ {
			quantizeQ8_0Block(dst[i*q8_0Bytes:(i+1)*q8_0Bytes], src[i*qk8_0:(i+1)*qk8_0])
		}
	case gguf.TypeQ4_K:
		for i := 0; i < len(src)/qkK; i++ {
			quantizeQ4KBlock(dst[i*q4KBytes:(i+1)*q4KBytes], src[i*qkK:(i+1)*qkK])
		}
	case gguf.TypeQ6_K:
		for i := 0; i < len(src)/qkK; i++ {
			quantizeQ6KBlock(dst[i*q6KBytes:(i+1)*q6KBytes], src[i*qkK:(i+1)*qkK])
		}
	default:
		enc, bs, ts := blockEncoders[t], t.BlockSize(), t.TypeSize()
		if enc == nil {
			return nil, fmt.Errorf("kernel: quantize: %w: %s", gguf.ErrUnknownType, t)
		}
		for i := 0; i < len(src)/bs; i++ {
			enc(dst[i*ts:(i+1)*ts], src[i*bs:(i+1)*bs])
		}
	}
	return dst, nil
}

// blockEncoders encode one block of the other types, after ggml's
// quantize_row_*_ref (quantize_iq4_nl and quantize_iq4_xs for the IQ types).
var blockEncoders = map[gguf.Type]func(dst []byte, x []float32){
	gguf.TypeQ4_0:   quantizeQ4_0Block,
	gguf.TypeQ4_1:   quantizeQ4_1Block,
	gguf.TypeQ5_0:   quantizeQ5_0Block,
	gguf.TypeQ5_1:   quantizeQ5_1Block,
	gguf.TypeQ2_K:   quantizeQ2KBlock,
	gguf.TypeQ3_K:   quantizeQ3KBlock,
	gguf.TypeQ5_K:   quantizeQ5KBlock,
	gguf.TypeIQ4_NL: quantizeIQ4NLBlock,
	gguf.TypeIQ4_XS: quantizeIQ4XSBlock,
}

func decodeF32Generic(dst []float32, src []byte) {
	src = src[:4*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func decodeF16Generic(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	t := f16Table
	for i := range dst {
		dst[i] = t[binary.LittleEndian.Uint16(src[2*i:])]
	}
}

func decodeBF16Generic(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
	}
}

// decodeQ8_0Generic is ggml's dequantize_row_q8_0: x = qs[j]·d.
func decodeQ8_0Generic(dst []float32, src []byte) {
	nb := len(dst) / qk8_0
	src = src[:nb*q8_0Bytes]
	for i := 0; i < nb; i++ {
		b := src[i*q8_0Bytes : (i+1)*q8_0Bytes]
		d := f16Table[binary.LittleEndian.Uint16(b)]
		qs := b[2 : 2+qk8_0]
		y := dst[i*qk8_0 : (i+1)*qk8_0]
		for j := range y {
			y[j] = float32(int8(qs[j])) * d
		}
	}
}

// scaleMinK4 unpacks the 6-bit scale and min of sub-block j from a Q4_K
// block's 12 scale bytes, as ggml's get_scale_min_k4 does.
func scaleMinK4(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xf | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// decodeQ4KGeneric is ggml's dequantize_row_q4_K: x = d·sc·q − dmin·m, the
// 32 low nibbles of qs[32k:32k+32] holding sub-block 2k and the high nibbles
// sub-block 2k+1.
func decodeQ4KGeneric(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*q4KBytes]
	for i := 0; i < nb; i++ {
		b := src[i*q4KBytes : (i+1)*q4KBytes]
		d := f16Table[binary.LittleEndian.Uint16(b)]
		dmin := f16Table[binary.LittleEndian.Uint16(b[2:])]
		scales := b[4:16]
		q := b[16 : 16+qkK/2]
		y := dst[i*qkK : (i+1)*qkK]
		for j := 0; j < 4; j++ {
			sc, m := scaleMinK4(2*j, scales)
			d1, m1 := d*float32(sc), dmin*float32(m)
			sc, m = scaleMinK4(2*j+1, scales)
			d2, m2 := d*float32(sc), dmin*float32(m)
			qq := q[32*j : 32*j+32]
			lo := y[64*j : 64*j+32]
			hi := y[64*j+32 : 64*j+64]
			for l := range qq {
				// The explicit conversions keep the compiler from fusing
				// into an FMA, which would round differently from ggml.
				lo[l] = float32(d1*float32(qq[l]&0xf)) - m1
				hi[l] = float32(d2*float32(qq[l]>>4)) - m2
			}
		}
	}
}

// decodeQ6KGeneric is ggml's dequantize_row_q6_K: each half of the block
// (128 elements) takes 64 bytes of ql (low 4 bits), 32 of qh (high 2 bits)
// and 8 scales; x = d·sc·(q − 32).
func decodeQ6KGeneric(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*q6KBytes]
	for i := 0; i < nb; i++ {
		b := src[i*q6KBytes : (i+1)*q6KBytes]
		d := f16Table[binary.LittleEndian.Uint16(b[qkK/2+qkK/4+qkK/16:])]
		for n := 0; n < 2; n++ {
			ql := b[64*n : 64*n+64]
			qh := b[qkK/2+32*n : qkK/2+32*n+32]
			sc := b[qkK/2+qkK/4+8*n : qkK/2+qkK/4+8*n+8]
			y := dst[i*qkK+128*n : i*qkK+128*n+128]
			for l := 0; l < 32; l++ {
				is := l / 16
				h := qh[l]
				q1 := int(ql[l]&0xf|(h&3)<<4) - 32
				q2 := int(ql[l+32]&0xf|(h>>2&3)<<4) - 32
				q3 := int(ql[l]>>4|(h>>4&3)<<4) - 32
				q4 := int(ql[l+32]>>4|(h>>6&3)<<4) - 32
				y[l] = float32(d*float32(int8(sc[is]))) * float32(q1)
				y[l+32] = float32(d*float32(int8(sc[is+2]))) * float32(q2)
				y[l+64] = float32(d*float32(int8(sc[is+4]))) * float32(q3)
				y[l+96] = float32(d*float32(int8(sc[is+6]))) * float32(q4)
			}
		}
	}
}

// nearestInt rounds half to even, as ggml's nearest_int does.
func nearestInt(f float32) int { return int(math.RoundToEven(float64(f))) }

func clampInt(v, lo, hi int) int { return min(max(v, lo), hi) }

// quantizeQ8_0Block is ggml's quantize_row_q8_0_ref for one block:
// d = amax/127, q = round(x/d) (half away from zero, as C's roundf).
func quantizeQ8_0Block(dst []byte, x []float32) {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	binary.LittleEndian.PutUint16(dst, F32ToF16(d))
	for j, v := range x {
		dst[2+j] = byte(int8(math.Round(float64(v * id))))
	}
}

// makeQKX2Quants is ggml's make_qkx2_quants: it fits x ≈ scale·L − min
// (L in [0,nmax], min ≥ 0) by weighted least squares over nstep+1 trial
// scales, and returns scale and min. The trials are compared by weighted
// squared error, or absolute error when useMad is set.
func makeQKX2Quants(x, weights []float32, L, laux []uint8, nmax int, rmin, rdelta float32, nstep int, useMad bool) (scale, theMin float32) {
	// The float32 conversions round every product before it is added, as
	// C does, so that no compiler fuses them into an FMA.
	mn, mx := x[0], x[0]
	sumW := weights[0]
	sumX := sumW * x[0]
	for i := 1; i < len(x); i++ {
		if x[i] < mn {
			mn = x[i]
		}
		if x[i] > mx {
			mx = x[i]
		}
		sumW += weights[i]
		sumX += float32(weights[i] * x[i])
	}
	if mn > 0 {
		mn = 0
	}
	if mx == mn {
		clear(L)
		return 0, -mn
	}
	iscale := float32(nmax) / (mx - mn)
	scale = 1 / iscale
	var bestErr float32
	for i, v := range x {
		l := clampInt(nearestInt(iscale*(v-mn)), 0, nmax)
		L[i] = uint8(l)
		bestErr += float32(weights[i] * qkx2Err(float32(scale*float32(l))+mn-v, useMad))
	}
	for is := 0; is <= nstep; is++ {
		iscale = (rmin + float32(rdelta*float32(is)) + float32(nmax)) / (mx - mn)
		var sumL, sumL2, sumXL float32
		for i, v := range x {
			l := clampInt(nearestInt(iscale*(v-mn)), 0, nmax)
			laux[i] = uint8(l)
			w := weights[i]
			fl := float32(l)
			sumL += float32(w * fl)
			sumL2 += float32(w * fl * fl)
			sumXL += float32(w * fl * v)
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if D <= 0 {
			continue
		}
		thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
		thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
		if thisMin > 0 {
			thisMin = 0
			thisScale = sumXL / sumL2
		}
		var curErr float32
		for i, v := range x {
			curErr += float32(weights[i] * qkx2Err(float32(thisScale*float32(laux[i]))+thisMin-v, useMad))
		}
		if curErr < bestErr {
			copy(L, laux)
			bestErr = curErr
			scale, mn = thisScale, thisMin
		}
	}
	return scale, -mn
}

// qkx2Err is make_qkx2_quants' error of one element: |diff| or diff².
func qkx2Err(diff float32, useMad bool) float32 {
	if useMad {
		return float32(math.Abs(float64(diff)))
	}
	return float32(diff * diff)
}

// scaleMinLevels is the part ggml's quantize_row_q4_K_ref and
// quantize_row_q5_K_ref share: it fits a scale and a min to each of the 8
// sub-blocks of x (make_qkx2_quants with levels 0..nmax, rmin and nstep),
// packs them as 6-bit values under the super-block's f16 scale and min
// into dst[0:16], and writes each element's level, 0..nmax, into L.
func scaleMinLevels(dst []byte, x []float32, L *[qkK]uint8, nmax int, rmin float32, nstep int) {
	var (
		laux    [32]uint8
		weights [32]float32
		scales  [8]float32
		mins    [8]float32
	)
	var maxScale, maxMin float32
	for j := 0; j < 8; j++ {
		xs := x[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range xs {
			sumX2 += float32(v * v) // rounded before the sum, as C does: no FMA
		}
		avX := float32(math.Sqrt(float64(sumX2 / 32)))
		for l, v := range xs {
			weights[l] = avX + float32(math.Abs(float64(v)))
		}
		scales[j], mins[j] = makeQKX2Quants(xs, weights[:], L[32*j:32*j+32], laux[:], nmax, rmin, 0.1, nstep, false)
		maxScale = max(maxScale, scales[j])
		maxMin = max(maxMin, mins[j])
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	sc := dst[4:16]
	clear(sc)
	for j := 0; j < 8; j++ {
		ls := uint8(clampInt(nearestInt(invScale*scales[j]), 0, 63))
		lm := uint8(clampInt(nearestInt(invMin*mins[j]), 0, 63))
		if j < 4 {
			sc[j] = ls
			sc[j+4] = lm
		} else {
			sc[j+4] = ls&0xf | (lm&0xf)<<4
			sc[j-4] |= (ls >> 4) << 6
			sc[j] |= (lm >> 4) << 6
		}
	}
	dh, mh := F32ToF16(maxScale/63), F32ToF16(maxMin/63)
	binary.LittleEndian.PutUint16(dst, dh)
	binary.LittleEndian.PutUint16(dst[2:], mh)
	for j := 0; j < 8; j++ {
		s, m := scaleMinK4(j, sc)
		d := F16ToF32(dh) * float32(s)
		if d == 0 {
			continue
		}
		dm := F16ToF32(mh) * float32(m)
		for ii := 0; ii < 32; ii++ {
			L[32*j+ii] = uint8(clampInt(nearestInt((x[32*j+ii]+dm)/d), 0, nmax))
		}
	}
}

// quantizeQ4KBlock is ggml's quantize_row_q4_K_ref for one super-block.
func quantizeQ4KBlock(dst []byte, x []float32) {
	var L [qkK]uint8
	scaleMinLevels(dst, x, &L, 15, -1, 20)
	q := dst[16 : 16+qkK/2]
	for j := 0; j < 4; j++ {
		for l := 0; l < 32; l++ {
			q[32*j+l] = L[64*j+l] | L[64*j+l+32]<<4
		}
	}
}

// makeQXQuants is ggml's make_qx_quants with rmse_type 1 (weights x²): it
// fits x ≈ scale·l (l in [-nmax, nmax-1]) over 19 trial scales, stores l+nmax
// in L and returns scale, which takes the sign that maps the largest |x| to
// -nmax.
func makeQXQuants(x []float32, L []int8, nmax int) float32 {
	mx := largestMagnitude(x)
	if float32(math.Abs(float64(mx))) < groupEps {
		clear(L)
		return 0
	}
	iscale := -float32(nmax) / mx
	var sumLX, sumL2 float32
	for i, v := range x {
		l := clampInt(nearestInt(iscale*v), -nmax, nmax-1)
		L[i] = int8(l + nmax)
		w := v * v
		sumLX += w * v * float32(l)
		sumL2 += w * float32(l) * float32(l)
	}
	var scale float32
	if sumL2 != 0 {
		scale = sumLX / sumL2
	}
	best := scale * sumLX
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(float32(nmax) + 0.1*float32(is)) / mx
		sumLX, sumL2 = 0, 0
		for _, v := range x {
			l := float32(clampInt(nearestInt(iscale*v), -nmax, nmax-1))
			w := v * v
			sumLX += w * v * l
			sumL2 += w * l * l
		}
		if sumL2 > 0 && sumLX*sumLX > best*sumL2 {
			for i, v := range x {
				L[i] = int8(nmax + clampInt(nearestInt(iscale*v), -nmax, nmax-1))
			}
			scale = sumLX / sumL2
			best = scale * sumLX
		}
	}
	return scale
}

// quantizeQ6KBlock is ggml's quantize_row_q6_K_ref for one super-block.
func quantizeQ6KBlock(dst []byte, x []float32) {
	var (
		L      [qkK]int8
		scales [qkK / 16]float32
	)
	var maxScale, maxAbsScale float32
	for ib := 0; ib < qkK/16; ib++ {
		s := makeQXQuants(x[16*ib:16*ib+16], L[16*ib:16*ib+16], 32)
		scales[ib] = s
		if as := float32(math.Abs(float64(s))); as > maxAbsScale {
			maxAbsScale, maxScale = as, s
		}
	}
	clear(dst)
	if maxAbsScale < groupEps {
		return // all zero, d = 0
	}
	iscale := -128 / maxScale
	dh := F32ToF16(1 / iscale)
	binary.LittleEndian.PutUint16(dst[qkK/2+qkK/4+qkK/16:], dh)
	sc := dst[qkK/2+qkK/4 : qkK/2+qkK/4+qkK/16]
	for ib := range scales {
		sc[ib] = byte(int8(clampInt(nearestInt(iscale*scales[ib]), -128, 127)))
	}
	for j := 0; j < qkK/16; j++ {
		d := F16ToF32(dh) * float32(int8(sc[j]))
		if d == 0 {
			continue
		}
		for ii := 0; ii < 16; ii++ {
			L[16*j+ii] = int8(clampInt(nearestInt(x[16*j+ii]/d), -32, 31) + 32)
		}
	}
	for n := 0; n < 2; n++ {
		ql := dst[64*n : 64*n+64]
		qh := dst[qkK/2+32*n : qkK/2+32*n+32]
		Ln := L[128*n : 128*n+128]
		for l := 0; l < 32; l++ {
			q1, q2, q3, q4 := uint8(Ln[l]), uint8(Ln[l+32]), uint8(Ln[l+64]), uint8(Ln[l+96])
			ql[l] = q1&0xf | (q3&0xf)<<4
			ql[l+32] = q2&0xf | (q4&0xf)<<4
			qh[l] = q1>>4 | (q2>>4)<<2 | (q3>>4)<<4 | (q4>>4)<<6
		}
	}
}
