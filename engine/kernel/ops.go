package kernel

import "math"

// The vector ops take equal-length slices and panic otherwise (a programming
// error, as an out-of-range index would be). Sums of squares are accumulated
// in float64, as ggml accumulates them, and so are softmax normalizers in
// the pure-Go kernels; the AVX-512 softmax and SwiGLU use a vectorized exp
// of about 2 ulp and sum in float32 lanes.

// RMSNorm writes x normalized by its root mean square and scaled by weight:
// out[i] = x[i] / sqrt(mean(x²) + eps) · weight[i]. out may be x.
func RMSNorm(out, x, weight []float32, eps float32) {
	if len(out) != len(x) || len(weight) != len(x) {
		panic("kernel: RMSNorm of slices of different lengths")
	}
	if len(x) == 0 {
		return
	}
	mean := float32(sumSq(x) / float64(len(x)))
	scale := 1 / float32(math.Sqrt(float64(mean+eps)))
	mulScaled(out, x, weight, scale)
}

// RMSNormRows applies RMSNorm to each of the len(x)/len(weight) rows of x.
func RMSNormRows(out, x, weight []float32, eps float32) {
	n := len(weight)
	if len(out) != len(x) || n == 0 || len(x)%n != 0 {
		panic("kernel: RMSNormRows: x is not a whole number of rows of len(weight)")
	}
	for i := 0; i < len(x); i += n {
		RMSNorm(out[i:i+n], x[i:i+n], weight, eps)
	}
}

// Softmax replaces x with exp(x - max x) / Σ exp(x - max x). Subtracting the
// maximum keeps every exponent ≤ 0, so large logits cannot overflow; -Inf
// entries become 0.
func Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	mx := Max(x)
	if math.IsInf(float64(mx), -1) {
		// Every entry is -Inf: there is no preferred one; spread evenly.
		for i := range x {
			x[i] = 1 / float32(len(x))
		}
		return
	}
	Scale(x, float32(1/expSub(x, mx)))
}

// Max returns the largest element of x, ignoring NaNs: -Inf when x is
// empty or all NaN.
func Max(x []float32) float32 { return maxF32(x) }

func maxGeneric(x []float32) float32 {
	m0, m1, m2, m3 := float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1))
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		if v[0] > m0 {
			m0 = v[0]
		}
		if v[1] > m1 {
			m1 = v[1]
		}
		if v[2] > m2 {
			m2 = v[2]
		}
		if v[3] > m3 {
			m3 = v[3]
		}
	}
	for ; i < len(x); i++ {
		if x[i] > m0 {
			m0 = x[i]
		}
	}
	return max(m0, m1, m2, m3)
}

// ExpStats returns Σ e^(x[i]−m) and Σ e^(x[i]−m)·(x[i]−m), the normalizer
// of a softmax whose maximum is m and the sum behind its entropy, without
// changing x. Both use Softmax's exp.
func ExpStats(x []float32, m float32) (sum, dot float64) {
	var buf [512]float32
	for len(x) > 0 {
		n := min(len(x), len(buf))
		e := buf[:n]
		copy(e, x[:n])
		s := expSub(e, m)
		sum += s
		dot += float64(dotF32(e, x[:n])) - float64(m)*s
		x = x[n:]
	}
	return sum, dot
}

// The loops of the vector ops, replaceable at init by vectorized ones as
// dotF32 is.
var (
	expSub     = expSubGeneric
	swiGLU     = swiGLUGeneric
	maxF32     = maxGeneric
	scaleF32   = scaleGeneric
	sumSq      = sumSqGeneric
	mulScaled  = mulScaledGeneric
	ropePairs  = ropePairsGeneric
	ropeHalves = ropeHalvesGeneric
)

// sumSqGeneric returns Σ x[i]², accumulated in float64.
func sumSqGeneric(x []float32) float64 {
	var sum float64
	for _, v := range x {
		sum += float64(v) * float64(v)
	}
	return sum
}

// mulScaledGeneric writes out[i] = x[i]·s·w[i].
func mulScaledGeneric(out, x, w []float32, s float32) {
	out = out[:len(x)]
	w = w[:len(x)]
	for i, v := range x {
		out[i] = v * s * w[i]
	}
}

// expSubGeneric replaces x[i] with e^(x[i]−m) and returns their sum,
// accumulated in float64.
func expSubGeneric(x []float32, m float32) float64 {
	var sum float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - m)))
		x[i] = e
		sum += float64(e)
	}
	return sum
}

func swiGLUGeneric(out, gate, up []float32) {
	up = up[:len(gate)]
	out = out[:len(gate)]
	for i, g := range gate {
		out[i] = silu(g) * up[i]
	}
}

// silu is x·σ(x) = x / (1 + e^-x).
func silu(x float32) float32 {
	return x / (1 + float32(math.Exp(float64(-x))))
}

// SiLU writes out[i] = x[i]·σ(x[i]). out may be x.
func SiLU(out, x []float32) {
	if len(out) != len(x) {
		panic("kernel: SiLU of slices of different lengths")
	}
	for i, v := range x {
		out[i] = silu(v)
	}
}

// SwiGLU writes out[i] = silu(gate[i])·up[i], the gated activation of a
// LLaMA/Qwen2 feed-forward block. out may be gate or up.
func SwiGLU(out, gate, up []float32) {
	if len(out) != len(gate) || len(up) != len(gate) {
		panic("kernel: SwiGLU of slices of different lengths")
	}
	swiGLU(out, gate, up)
}

// Add adds src to dst element by element.
func Add(dst, src []float32) {
	if len(dst) != len(src) {
		panic("kernel: Add of slices of different lengths")
	}
	for i, v := range src {
		dst[i] += v
	}
}

// Scale multiplies every element of x by s.
func Scale(x []float32, s float32) { scaleF32(x, s) }

func scaleGeneric(x []float32, s float32) {
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		v[0], v[1], v[2], v[3] = v[0]*s, v[1]*s, v[2]*s, v[3]*s
	}
	for ; i < len(x); i++ {
		x[i] *= s
	}
}

// Argmax returns the index of the largest element of x, the first one on a
// tie, ignoring NaNs; -1 when x is empty or all NaN.
func Argmax(x []float32) int {
	best := -1
	var bv float32
	for i, v := range x {
		if v != v {
			continue
		}
		if best < 0 || v > bv {
			best, bv = i, v
		}
	}
	return best
}
