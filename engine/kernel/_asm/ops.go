package main

import (
	"math"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The row-wise vector ops a forward pass runs between its matrix products:
// the softmax's maximum and scaling, RMSNorm's sum of squares and scaling,
// and RoPE in both pair orders. Each loops over 16 lanes with a masked
// tail; the pure-Go twins in ops.go and rope.go are the reference.

// loop16 emits the shape the element-wise kernels share: body(nil) on
// whole vectors of 16 while n ≥ 16, advancing every pointer in ptrs by 64
// bytes (16 floats) and every one in halves by 32, then body(mask) once on
// the n < 16 left, if any.
func loop16(n GPVirtual, ptrs, halves []GPVirtual, body func(k OpmaskVirtual)) {
	Label("loop")
	CMPQ(n, U8(16))
	JL(LabelRef("tail"))
	body(nil)
	for _, p := range ptrs {
		ADDQ(U8(64), p)
	}
	for _, p := range halves {
		ADDQ(U8(32), p)
	}
	SUBQ(U8(16), n)
	JMP(LabelRef("loop"))
	Label("tail")
	TESTQ(n, n)
	JZ(LabelRef("done"))
	body(tailMask(n))
	Label("done")
}

// load16 loads 16 floats at m into a new register, only the lanes of k
// (the others zero) when k is not nil.
func load16(m Mem, k OpmaskVirtual) VecVirtual {
	z := ZMM()
	if k == nil {
		VMOVUPS(m, z)
	} else {
		VMOVUPS_Z(m, k, z)
	}
	return z
}

// store16 stores z to m, only the lanes of k when k is not nil.
func store16(z VecVirtual, m Mem, k OpmaskVirtual) {
	if k == nil {
		VMOVUPS(z, m)
	} else {
		VMOVUPS(z, k, m)
	}
}

// hmaxZ returns an X register whose low lane is the largest of z's 16
// lanes (VMAXPS's order: halves, then quarters, then pairs).
func hmaxZ(z VecVirtual) VecVirtual { return hfoldZ(z, VMAXPS, VMAXSS) }

func maxZ() {
	TEXT("maxZ", NOSPLIT, "func(x []float32) float32")
	Pragma("noescape")
	Doc("maxZ returns the largest element of x, ignoring NaNs, -Inf when x is empty",
		"or all NaN: four 16-lane running maxima over blocks of 64, then one.",
		"VMAXPS returns its second source when either is NaN, and that is always",
		"the running maximum.")
	x := ld(Param("x").Base())
	n := ld(Param("x").Len())
	acc := []VecVirtual{bcastF32(negInf), ZMM(), ZMM(), ZMM()}
	for _, r := range acc[1:] {
		VMOVAPS(acc[0], r)
	}
	Label("block")
	CMPQ(n, U8(64))
	JL(LabelRef("loop"))
	for i, r := range acc {
		t := load16(Mem{Base: x, Disp: 64 * i}, nil)
		VMAXPS(r, t, r)
	}
	ADDQ(U32(256), x)
	SUBQ(U8(64), n)
	JMP(LabelRef("block"))
	loop16(n, []GPVirtual{x}, nil, func(k OpmaskVirtual) {
		t := load16(Mem{Base: x}, k)
		if k == nil {
			VMAXPS(acc[0], t, acc[0])
		} else {
			VMAXPS(acc[1], t, k, acc[1])
		}
	})
	VMAXPS(acc[1], acc[0], acc[0])
	VMAXPS(acc[3], acc[2], acc[2])
	VMAXPS(acc[2], acc[0], acc[0])
	Store(hmaxZ(acc[0]), ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// negInf is -Inf as a float32.
var negInf = float32(math.Inf(-1))

func scaleZ() {
	TEXT("scaleZ", NOSPLIT, "func(x []float32, s float32)")
	Pragma("noescape")
	Doc("scaleZ computes",
		"",
		"\tfor i := range x {",
		"\t\tx[i] *= s",
		"\t}")
	s := ZMM()
	VBROADCASTSS(NewParamAddr("s", 24), s)
	x := ld(Param("x").Base())
	n := ld(Param("x").Len())
	loop16(n, []GPVirtual{x}, nil, func(k OpmaskVirtual) {
		t := load16(Mem{Base: x}, k)
		VMULPS(s, t, t)
		store16(t, Mem{Base: x}, k)
	})
	VZEROUPPER()
	RET()
}

func mulScaledZ() {
	TEXT("mulScaledZ", NOSPLIT, "func(out, x, w []float32, s float32)")
	Pragma("noescape")
	Doc("mulScaledZ computes, rounding as Go does,",
		"",
		"\tfor i := range x {",
		"\t\tout[i] = x[i] * s * w[i]",
		"\t}")
	s := ZMM()
	VBROADCASTSS(NewParamAddr("s", 72), s)
	o := ld(Param("out").Base())
	x := ld(Param("x").Base())
	w := ld(Param("w").Base())
	n := ld(Param("x").Len())
	loop16(n, []GPVirtual{o, x, w}, nil, func(k OpmaskVirtual) {
		t := load16(Mem{Base: x}, k)
		u := load16(Mem{Base: w}, k)
		VMULPS(s, t, t)
		VMULPS(u, t, t)
		store16(t, Mem{Base: o}, k)
	})
	VZEROUPPER()
	RET()
}

func sumSqZ() {
	TEXT("sumSqZ", NOSPLIT, "func(x []float32) float64")
	Pragma("noescape")
	Doc("sumSqZ returns Σ x[i]² accumulated in float64, as RMSNorm's pure-Go loop",
		"does, in two 8-lane float64 accumulators and a fixed lane tree.")
	x := ld(Param("x").Base())
	n := ld(Param("x").Len())
	acc := []VecVirtual{ZMM(), ZMM()}
	for _, r := range acc {
		VXORPD(r, r, r)
	}
	loop16(n, []GPVirtual{x}, nil, func(k OpmaskVirtual) {
		t := load16(Mem{Base: x}, k)
		hi := YMM()
		VEXTRACTF64X4(U8(1), t, hi)
		d0, d1 := ZMM(), ZMM()
		VCVTPS2PD(t.AsY(), d0)
		VCVTPS2PD(hi, d1)
		VFMADD231PD(d0, d0, acc[0])
		VFMADD231PD(d1, d1, acc[1])
	})
	VADDPD(acc[1], acc[0], acc[0])
	y := YMM()
	VEXTRACTF64X4(U8(1), acc[0], y)
	VADDPD(y, acc[0].AsY(), y)
	h := XMM()
	VEXTRACTF128(U8(1), y, h)
	VADDPD(h, y.AsX(), h)
	t := XMM()
	VUNPCKHPD(h, h, t)
	VADDSD(t, h, h)
	Store(h, ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// ropeConsts are the tables ropePairsZ needs: the lane index i/2, which
// spreads the cosines and sines of 8 pairs over 16 lanes, and the sign bit
// in the even lanes.
func ropeConsts() (idx, sign Mem) {
	idx = GLOBL("ropePairIdx", RODATA|NOPTR)
	for i := 0; i < 16; i++ {
		DATA(4*i, U32(i/2))
	}
	sign = GLOBL("ropePairSign", RODATA|NOPTR)
	for i := 0; i < 16; i++ {
		s := uint32(0)
		if i%2 == 0 {
			s = 0x80000000
		}
		DATA(4*i, U32(s))
	}
	return idx, sign
}

func ropePairsZ() {
	TEXT("ropePairsZ", NOSPLIT, "func(x, cos, sin []float32)")
	Pragma("noescape")
	Doc("ropePairsZ rotates the pairs (x[2i], x[2i+1]) by the angles whose cosines",
		"and sines are cos[i] and sin[i], i < len(x)/2, with one rounding fewer",
		"than the pure-Go loop:",
		"",
		"\tx[2i], x[2i+1] = fma(-x[2i+1], sin[i], x[2i]·cos[i]), fma(x[2i], sin[i], x[2i+1]·cos[i])")
	idxMem, signMem := ropeConsts()
	idx, sign := ZMM(), ZMM()
	VMOVDQU32(idxMem, idx)
	VMOVDQU32(signMem, sign)
	x := ld(Param("x").Base())
	cs := ld(Param("cos").Base())
	sn := ld(Param("sin").Base())
	n := ld(Param("x").Len())
	body := func(k OpmaskVirtual) {
		c8, s8 := YMM(), YMM()
		if k == nil {
			VMOVUPS(Mem{Base: cs}, c8)
			VMOVUPS(Mem{Base: sn}, s8)
		} else {
			half := GP64()
			MOVQ(n, half)
			SHRQ(U8(1), half)
			kh := tailMask(half)
			VMOVUPS_Z(Mem{Base: cs}, kh, c8)
			VMOVUPS_Z(Mem{Base: sn}, kh, s8)
		}
		c, s := ZMM(), ZMM()
		VPERMPS(c8.AsZ(), idx, c)
		VPERMPS(s8.AsZ(), idx, s)
		VXORPS(sign, s, s) // −sin in the even lanes
		v := load16(Mem{Base: x}, k)
		sw := ZMM()
		VPERMILPS(U8(0xb1), v, sw) // the pairs swapped
		out := ZMM()
		VMULPS(c, v, out)
		VFMADD231PS(s, sw, out)
		store16(out, Mem{Base: x}, k)
	}
	loop16(n, []GPVirtual{x}, []GPVirtual{cs, sn}, body)
	VZEROUPPER()
	RET()
}

func ropeHalvesZ() {
	TEXT("ropeHalvesZ", NOSPLIT, "func(a, b, cos, sin []float32)")
	Pragma("noescape")
	Doc("ropeHalvesZ rotates the pairs (a[i], b[i]) by the angles whose cosines",
		"and sines are cos[i] and sin[i] (NEOX order: a and b are a head's two",
		"halves), with one rounding fewer than the pure-Go loop:",
		"",
		"\ta[i], b[i] = fma(-b[i], sin[i], a[i]·cos[i]), fma(a[i], sin[i], b[i]·cos[i])")
	a := ld(Param("a").Base())
	b := ld(Param("b").Base())
	cs := ld(Param("cos").Base())
	sn := ld(Param("sin").Base())
	n := ld(Param("a").Len())
	loop16(n, []GPVirtual{a, b, cs, sn}, nil, func(k OpmaskVirtual) {
		va, vb := load16(Mem{Base: a}, k), load16(Mem{Base: b}, k)
		c, s := load16(Mem{Base: cs}, k), load16(Mem{Base: sn}, k)
		oa, ob := ZMM(), ZMM()
		VMULPS(c, va, oa)
		VFNMADD231PS(s, vb, oa) // oa −= b·sin
		VMULPS(c, vb, ob)
		VFMADD231PS(s, va, ob) // ob += a·sin
		store16(oa, Mem{Base: a}, k)
		store16(ob, Mem{Base: b}, k)
	})
	VZEROUPPER()
	RET()
}
