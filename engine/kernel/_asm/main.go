// Command _asm generates engine/kernel's amd64 assembly with avo:
//
//	cd engine/kernel && go generate
//
// It lives in its own module so that avo stays out of dfill's go.mod. Every
// function here has a pure-Go twin in engine/kernel (the reference it is
// tested against); each TEXT's doc comment is the Go loop it computes.
package main

import (
	"fmt"
	"math"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/gotypes"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The register-blocked GEMM micro-kernels. GEMMs computes a tile of out =
// x·Wᵀ with the activation rows along the vector lanes and the weight rows
// broadcast, so that the weight (f32 in place, or a decoded tile) needs no
// packing; only x is packed, once per MatMul. Each output element is one
// chain of FMAs over k = 0..K-1 from zero, whatever the tile shape, which
// makes every variant's result independent of how rows are batched.
const (
	maxNRZ = 12 // weight rows per AVX-512 tile: 2×12 accumulators + 2 x + 1 broadcast ≤ 32 registers
	maxNRY = 6  // weight rows per AVX2 tile: 2×6 accumulators + 2 x + 1 broadcast ≤ 16 registers
)

func main() {
	ConstraintExpr("!purego")
	for v := 1; v <= 2; v++ {
		for nr := 1; nr <= maxNRZ; nr++ {
			gemm(true, v, nr)
		}
		for nr := 1; nr <= maxNRZ; nr++ {
			gemmRows(v, nr)
		}
		for nr := 1; nr <= maxNRY; nr++ {
			gemm(false, v, nr)
		}
	}
	dotZ()
	dotY()
	axpyZ()
	axpyY()
	fmaPeak(true)
	fmaPeak(false)
	decodeF16Z()
	decodeBF16Z()
	decodeQ8_0Z()
	decodeQ4KBlockZ()
	expSubZ()
	swigluZ()
	pack16Z()
	maxZ()
	scaleZ()
	mulScaledZ()
	sumSqZ()
	ropePairsZ()
	ropeHalvesZ()
	for v := 1; v <= 2; v++ {
		for nr := 1; nr <= maxQ8Rows; nr++ {
			q8Tile(v, nr)
		}
	}
	for _, t := range kqTypes {
		for nr := 1; nr <= maxKQRows; nr++ {
			kqTile(t, nr)
		}
	}
	vnniPeak()
	quantQ8Row()
	roundQ8Row()
	bf16Peak()
	Generate()
}

// gemm emits gemm{Z,Y}<v>x<nr>: v vectors of activation rows (16 lanes for
// AVX-512 Z, 8 for AVX2 Y) times nr weight rows.
func gemm(z bool, v, nr int) {
	lanes, name, ldc := 8, "gemmY", 16
	if z {
		lanes, name, ldc = 16, "gemmZ", 32
	}
	name = fmt.Sprintf("%s%dx%d", name, v, nr)
	if z {
		TEXT(name, NOSPLIT, "func(c, x, w *float32, xs, ws, k, load int, out *float32, idx *int32, valid int)")
	} else {
		TEXT(name, NOSPLIT, "func(c, x, w *float32, xs, ws, k, load int)")
	}
	Pragma("noescape")
	Doc(fmt.Sprintf("%s computes a %d×%d tile of x·Wᵀ, activation rows along the lanes:", name, v*lanes, nr),
		"",
		fmt.Sprintf("\tfor r := 0; r < %d; r++ {", nr),
		fmt.Sprintf("\t\tfor l := 0; l < %d; l++ {", v*lanes),
		"\t\t\tvar acc float32",
		"\t\t\tif load != 0 {",
		fmt.Sprintf("\t\t\t\tacc = c[r*%d + l]", ldc),
		"\t\t\t}",
		"\t\t\tfor kk := 0; kk < k; kk++ {",
		fmt.Sprintf("\t\t\t\tacc = fma(x[(l/%d)*xs/4 + kk*%d + l%%%d], w[r*ws/4 + kk], acc)", lanes, lanes, lanes),
		"\t\t\t}",
		fmt.Sprintf("\t\t\tc[r*%d + l] = acc", ldc),
		"\t\t}",
		"\t}",
		"",
		fmt.Sprintf("x is packed in blocks of %d rows, k-major, xs bytes apart; ws is the byte stride", lanes),
		"of w's rows. With load = 0 the sums start from zero, else from c, so a",
		"product split over chunks of k is the same chain of FMAs as one call.")
	if z {
		Doc("When out is not nil the sums go to out instead of c, for the first valid",
			"lanes only: out[l*stride + r] with l*stride = idx[l%16] + (l/16)*idx[1]*16.")
	}
	acc, c := gemmLoop(z, v, nr)
	Label("store")
	if z {
		o := ld(Param("out"))
		TESTQ(o, o)
		JNZ(LabelRef("scatter"))
	}
	for r := 0; r < nr; r++ {
		for j := 0; j < v; j++ {
			VMOVUPS(acc[r][j], Mem{Base: c, Disp: 4 * (r*ldc + j*lanes)})
		}
	}
	VZEROUPPER()
	RET()
	if !z {
		return
	}

	// Scatter: lane l of vector j goes to out + 4·(idx[l] + 16j·idx[1]) + 4r.
	Label("scatter")
	out := ld(Param("out"))
	ip := ld(Param("idx"))
	valid := ld(Param("valid"))
	idx := ZMM()
	VMOVDQU32(Mem{Base: ip}, idx)
	masks := laneMasks(v, valid)
	obases := []GPVirtual{out}
	if v > 1 {
		step := GP64()
		MOVL(Mem{Base: ip, Disp: 4}, step.As32()) // idx[1] = the row stride in elements
		SHLQ(U8(6), step)                         // 16 rows of 4 bytes
		b1 := GP64()
		LEAQ(Mem{Base: out, Index: step, Scale: 1}, b1)
		obases = append(obases, b1)
	}
	for r := 0; r < nr; r++ {
		for j := 0; j < v; j++ {
			kt := K()
			KMOVW(masks[j], kt)
			VSCATTERDPS(acc[r][j], kt, Mem{Base: obases[j], Index: idx, Scale: 4, Disp: 4 * r})
		}
	}
	VZEROUPPER()
	RET()
}

// gemmLoop emits the body every GEMM tile shares: it loads the parameters
// c, x, w, xs, ws, k and load, starts the nr×v accumulators from zero or
// from c, runs the k loop of FMAs, and leaves the sums in the returned
// registers at the label "store".
func gemmLoop(z bool, v, nr int) ([][]VecVirtual, GPVirtual) {
	lanes, vb, ldc := 8, 32, 16
	if z {
		lanes, vb, ldc = 16, 64, 32
	}
	vec := func() VecVirtual {
		if z {
			return ZMM()
		}
		return YMM()
	}
	c := ld(Param("c"))
	xp := ld(Param("x"))
	p0 := ld(Param("w"))
	xs := ld(Param("xs"))
	s := ld(Param("ws"))
	n := ld(Param("k"))
	load := ld(Param("load"))
	s3 := GP64()
	LEAQ(Mem{Base: s, Index: s, Scale: 2}, s3)
	bases := []GPVirtual{p0}
	for b := 4; b < nr; b += 4 {
		p := GP64()
		LEAQ(Mem{Base: bases[len(bases)-1], Index: s, Scale: 4}, p)
		bases = append(bases, p)
	}
	row := func(r int) Mem {
		m := Mem{Base: bases[r/4]}
		switch r % 4 {
		case 1:
			m.Index, m.Scale = s, 1
		case 2:
			m.Index, m.Scale = s, 2
		case 3:
			m.Index, m.Scale = s3, 1
		}
		return m
	}

	acc := make([][]VecVirtual, nr)
	for r := range acc {
		acc[r] = make([]VecVirtual, v)
		for j := range acc[r] {
			acc[r][j] = vec()
		}
	}
	TESTQ(load, load)
	JNZ(LabelRef("load"))
	for r := range acc {
		for j := range acc[r] {
			VXORPS(acc[r][j], acc[r][j], acc[r][j])
		}
	}
	JMP(LabelRef("start"))
	Label("load")
	for r := range acc {
		for j := range acc[r] {
			VMOVUPS(Mem{Base: c, Disp: 4 * (r*ldc + j*lanes)}, acc[r][j])
		}
	}
	Label("start")
	TESTQ(n, n)
	JZ(LabelRef("store"))
	Label("loop")
	xv := make([]VecVirtual, v)
	for j := range xv {
		xv[j] = vec()
		if j == 0 {
			VMOVUPS(Mem{Base: xp}, xv[j])
		} else {
			VMOVUPS(Mem{Base: xp, Index: xs, Scale: 1}, xv[j])
		}
	}
	for r := 0; r < nr; r++ {
		b := vec()
		VBROADCASTSS(row(r), b)
		for j := 0; j < v; j++ {
			VFMADD231PS(b, xv[j], acc[r][j])
		}
	}
	ADDQ(U8(vb), xp)
	for _, p := range bases {
		ADDQ(U8(4), p)
	}
	DECQ(n)
	JNZ(LabelRef("loop"))

	return acc, c
}

// gemmRows emits gemmZR<v>x<nr>: gemmZ<v>x<nr> whose last chunk stores its
// sums as rows, for the transposed product (MatMul with the weight packed
// as the lanes and the activations broadcast): lane l of row r goes to
// out[r*ldo + l], for the first valid lanes.
func gemmRows(v, nr int) {
	name := fmt.Sprintf("gemmZR%dx%d", v, nr)
	TEXT(name, NOSPLIT, "func(c, x, w *float32, xs, ws, k, load int, out *float32, ldo, valid int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is gemmZ%dx%d that, when out is not nil, stores lane l of row r to", name, v, nr),
		"out[r*ldo + l] instead of c, for the first valid lanes.")
	acc, c := gemmLoop(true, v, nr)
	Label("store")
	o := ld(Param("out"))
	TESTQ(o, o)
	JNZ(LabelRef("rows"))
	for r := 0; r < nr; r++ {
		for j := 0; j < v; j++ {
			VMOVUPS(acc[r][j], Mem{Base: c, Disp: 4 * (r*32 + j*16)})
		}
	}
	VZEROUPPER()
	RET()

	Label("rows")
	storeRows(acc)
}

// storeRows ends a tile that stores its sums as rows: acc[r][j] (lanes
// 16j..16j+15 of row r) goes to out[r*ldo + 16j + l] for the lanes below
// valid, out, ldo and valid being the function's parameters.
func storeRows(acc [][]VecVirtual) {
	out := ld(Param("out"))
	ldo := ld(Param("ldo"))
	SHLQ(U8(2), ldo) // bytes
	valid := ld(Param("valid"))
	masks := laneMasks(len(acc[0]), valid)
	for r := range acc {
		for j := range acc[r] {
			VMOVUPS(acc[r][j], masks[j], Mem{Base: out, Disp: 64 * j})
		}
		if r+1 < len(acc) {
			ADDQ(ldo, out)
		}
	}
	VZEROUPPER()
	RET()
}

// laneMasks returns, for each of v vectors of 16 lanes, the mask of the
// lanes below valid.
func laneMasks(v int, valid GPVirtual) []OpmaskVirtual {
	masks := make([]OpmaskVirtual, v)
	for j := 0; j < v; j++ {
		cnt := GP64()
		MOVQ(valid, cnt)
		if j > 0 {
			SUBQ(U8(16*j), cnt)
			zero := GP64()
			XORQ(zero, zero)
			CMPQ(cnt, zero)
			CMOVQLT(zero, cnt)
		}
		sixteen := GP64()
		MOVQ(U32(16), sixteen)
		CMPQ(cnt, sixteen)
		CMOVQGT(sixteen, cnt)
		masks[j] = tailMask(cnt)
	}
	return masks
}

// hsumZ adds the 16 lanes of z into the low lane of its X register, in the
// fixed order (lo256+hi256), then (lo128+hi128), then lanes (0+2, 1+3), then
// (0+1).
func hsumZ(z VecVirtual) VecVirtual { return hfoldZ(z, VADDPS, VADDSS) }

// hsumY is hsumZ for the 8 lanes of y.
func hsumY(y VecVirtual) VecVirtual { return hfoldY(y, VADDPS, VADDSS) }

// hfoldZ folds the 16 lanes of z into the low lane of an X register with
// the packed op and, for the last pair, the scalar one: halves, then
// quarters, then lanes (0+2, 1+3), then (0+1).
func hfoldZ(z VecVirtual, op, scalar func(ops ...Op)) VecVirtual {
	y := YMM()
	VEXTRACTF64X4(U8(1), z, y)
	op(y, z.AsY(), y)
	return hfoldY(y, op, scalar)
}

// hfoldY is hfoldZ for the 8 lanes of y.
func hfoldY(y VecVirtual, op, scalar func(ops ...Op)) VecVirtual {
	x := XMM()
	VEXTRACTF128(U8(1), y, x)
	op(x, y.AsX(), x)
	t := XMM()
	VMOVHLPS(x, x, t)
	op(t, x, x)
	VMOVSHDUP(x, t)
	scalar(t, x, x)
	return x
}

func dotZ() {
	TEXT("dotZ", NOSPLIT, "func(a, b []float32) float32")
	Pragma("noescape")
	Doc("dotZ returns Σ a[i]·b[i] over len(a) elements with AVX-512: four 16-lane",
		"accumulators over blocks of 64, single vectors into the first, a masked",
		"tail into the second, then (acc0+acc1)+(acc2+acc3) and a fixed lane tree.",
		"The order depends on len(a) alone.")
	a := ld(Param("a").Base())
	b := ld(Param("b").Base())
	n := ld(Param("a").Len())
	acc := []VecVirtual{ZMM(), ZMM(), ZMM(), ZMM()}
	for _, r := range acc {
		VXORPS(r, r, r)
	}
	Label("block")
	CMPQ(n, U8(64))
	JL(LabelRef("single"))
	for i, r := range acc {
		t := ZMM()
		VMOVUPS(Mem{Base: a, Disp: 64 * i}, t)
		VFMADD231PS(Mem{Base: b, Disp: 64 * i}, t, r)
	}
	ADDQ(U32(256), a)
	ADDQ(U32(256), b)
	SUBQ(U8(64), n)
	JMP(LabelRef("block"))
	Label("single")
	CMPQ(n, U8(16))
	JL(LabelRef("tail"))
	t := ZMM()
	VMOVUPS(Mem{Base: a}, t)
	VFMADD231PS(Mem{Base: b}, t, acc[0])
	ADDQ(U8(64), a)
	ADDQ(U8(64), b)
	SUBQ(U8(16), n)
	JMP(LabelRef("single"))
	Label("tail")
	TESTQ(n, n)
	JZ(LabelRef("reduce"))
	k := tailMask(n)
	ta, tb := ZMM(), ZMM()
	VMOVUPS_Z(Mem{Base: a}, k, ta)
	VMOVUPS_Z(Mem{Base: b}, k, tb)
	VFMADD231PS(tb, ta, acc[1])
	Label("reduce")
	VADDPS(acc[1], acc[0], acc[0])
	VADDPS(acc[3], acc[2], acc[2])
	VADDPS(acc[2], acc[0], acc[0])
	Store(hsumZ(acc[0]), ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// tailMask returns an opmask of the low n bits (n ≤ 16). It needs BMI2.
func tailMask(n GPVirtual) OpmaskVirtual {
	ones, m := GP32(), GP32()
	MOVL(U32(0xffff), ones)
	BZHIL(n.As32(), ones, m) // BMI2: m = ones with bits n and up cleared
	k := K()
	KMOVW(m, k)
	return k
}

func dotY() {
	TEXT("dotY", NOSPLIT, "func(a, b []float32) float32")
	Pragma("noescape")
	Doc("dotY returns Σ a[i]·b[i] over len(a) elements with AVX2: four 8-lane",
		"accumulators over blocks of 32, single vectors into the first, a scalar",
		"tail into lane 0 of the second, then (acc0+acc1)+(acc2+acc3) and a fixed",
		"lane tree. The order depends on len(a) alone.")
	a := ld(Param("a").Base())
	b := ld(Param("b").Base())
	n := ld(Param("a").Len())
	acc := []VecVirtual{YMM(), YMM(), YMM(), YMM()}
	for _, r := range acc {
		VXORPS(r, r, r)
	}
	Label("block")
	CMPQ(n, U8(32))
	JL(LabelRef("single"))
	for i, r := range acc {
		t := YMM()
		VMOVUPS(Mem{Base: a, Disp: 32 * i}, t)
		VFMADD231PS(Mem{Base: b, Disp: 32 * i}, t, r)
	}
	ADDQ(U8(128), a)
	ADDQ(U8(128), b)
	SUBQ(U8(32), n)
	JMP(LabelRef("block"))
	Label("single")
	CMPQ(n, U8(8))
	JL(LabelRef("tail"))
	t := YMM()
	VMOVUPS(Mem{Base: a}, t)
	VFMADD231PS(Mem{Base: b}, t, acc[0])
	ADDQ(U8(32), a)
	ADDQ(U8(32), b)
	SUBQ(U8(8), n)
	JMP(LabelRef("single"))
	Label("tail")
	tl := XMM()
	VXORPS(tl, tl, tl)
	Label("tailloop")
	TESTQ(n, n)
	JZ(LabelRef("reduce"))
	ts := XMM()
	VMOVSS(Mem{Base: a}, ts)
	VFMADD231SS(Mem{Base: b}, ts, tl)
	ADDQ(U8(4), a)
	ADDQ(U8(4), b)
	DECQ(n)
	JMP(LabelRef("tailloop"))
	Label("reduce")
	VADDPS(tl.AsY(), acc[1], acc[1]) // VEX zeroes tl's upper lanes
	VADDPS(acc[1], acc[0], acc[0])
	VADDPS(acc[3], acc[2], acc[2])
	VADDPS(acc[2], acc[0], acc[0])
	Store(hsumY(acc[0]), ReturnIndex(0))
	VZEROUPPER()
	RET()
}

func axpyZ() {
	TEXT("axpyZ", NOSPLIT, "func(alpha float32, x, y []float32)")
	Pragma("noescape")
	Doc("axpyZ computes, with AVX-512,",
		"",
		"\tfor i := range x {",
		"\t\ty[i] = fma(alpha, x[i], y[i])",
		"\t}")
	al := ZMM()
	VBROADCASTSS(NewParamAddr("alpha", 0), al)
	x := ld(Param("x").Base())
	y := ld(Param("y").Base())
	n := ld(Param("x").Len())
	Label("loop")
	CMPQ(n, U8(16))
	JL(LabelRef("tail"))
	t := ZMM()
	VMOVUPS(Mem{Base: y}, t)
	VFMADD231PS(Mem{Base: x}, al, t)
	VMOVUPS(t, Mem{Base: y})
	ADDQ(U8(64), x)
	ADDQ(U8(64), y)
	SUBQ(U8(16), n)
	JMP(LabelRef("loop"))
	Label("tail")
	TESTQ(n, n)
	JZ(LabelRef("done"))
	k := tailMask(n)
	tx, ty := ZMM(), ZMM()
	VMOVUPS_Z(Mem{Base: x}, k, tx)
	VMOVUPS_Z(Mem{Base: y}, k, ty)
	VFMADD231PS(tx, al, ty)
	VMOVUPS(ty, k, Mem{Base: y})
	Label("done")
	VZEROUPPER()
	RET()
}

func axpyY() {
	TEXT("axpyY", NOSPLIT, "func(alpha float32, x, y []float32)")
	Pragma("noescape")
	Doc("axpyY computes, with AVX2,",
		"",
		"\tfor i := range x {",
		"\t\ty[i] = fma(alpha, x[i], y[i])",
		"\t}")
	al := YMM()
	VBROADCASTSS(NewParamAddr("alpha", 0), al)
	x := ld(Param("x").Base())
	y := ld(Param("y").Base())
	n := ld(Param("x").Len())
	Label("loop")
	CMPQ(n, U8(8))
	JL(LabelRef("tail"))
	t := YMM()
	VMOVUPS(Mem{Base: y}, t)
	VFMADD231PS(Mem{Base: x}, al, t)
	VMOVUPS(t, Mem{Base: y})
	ADDQ(U8(32), x)
	ADDQ(U8(32), y)
	SUBQ(U8(8), n)
	JMP(LabelRef("loop"))
	Label("tail")
	TESTQ(n, n)
	JZ(LabelRef("done"))
	ts := XMM()
	VMOVSS(Mem{Base: y}, ts)
	VFMADD231SS(Mem{Base: x}, al.AsX(), ts)
	VMOVSS(ts, Mem{Base: y})
	ADDQ(U8(4), x)
	ADDQ(U8(4), y)
	DECQ(n)
	JMP(LabelRef("tail"))
	Label("done")
	VZEROUPPER()
	RET()
}

// fmaPeak emits a loop of independent FMAs on registers only, to measure the
// machine's FMA throughput: n iterations of 16 (Z: 512-bit) or 12 (Y: 256-bit)
// FMAs, enough independent chains to cover the latency on two ports.
func fmaPeak(z bool) {
	name, chains := "fmaPeakY", 12
	if z {
		name, chains = "fmaPeakZ", 16
	}
	TEXT(name, NOSPLIT, "func(n int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s runs n iterations of %d independent vector FMAs on registers (peak measurement).", name, chains))
	vec := YMM
	if z {
		vec = ZMM
	}
	peakLoop(chains, vec, VXORPS, VADDPS, func(a, b, acc VecVirtual) { VFMADD231PS(a, b, acc) })
}

// peakLoop emits the body of a peak measurement: n iterations of chains
// independent op(a, b, acc) on registers made by vec and cleared with clear,
// the accumulators folded with fold at the end so that they stay live.
func peakLoop(chains int, vec func() VecVirtual, clear, fold func(ops ...Op), op func(a, b, acc VecVirtual)) {
	n := ld(Param("n"))
	a, b := vec(), vec()
	clear(a, a, a)
	clear(b, b, b)
	acc := make([]VecVirtual, chains)
	for i := range acc {
		acc[i] = vec()
		clear(acc[i], acc[i], acc[i])
	}
	TESTQ(n, n)
	JZ(LabelRef("done"))
	Label("loop")
	for i := range acc {
		op(a, b, acc[i])
	}
	DECQ(n)
	JNZ(LabelRef("loop"))
	Label("done")
	for i := 1; i < chains; i++ {
		fold(acc[i], acc[0], acc[0])
	}
	VZEROUPPER()
	RET()
}

func decodeF16Z() {
	TEXT("decodeF16Z", NOSPLIT, "func(dst []float32, src []byte)")
	Pragma("noescape")
	Doc("decodeF16Z converts len(dst) halves (a multiple of 16) to float32 with",
		"VCVTPH2PS: dst[i] = F16ToF32(src[2i:]) (a signaling NaN comes out quiet).")
	d := ld(Param("dst").Base())
	s := ld(Param("src").Base())
	n := ld(Param("dst").Len())
	SHRQ(U8(4), n)
	JZ(LabelRef("done"))
	Label("loop")
	t := ZMM()
	VCVTPH2PS(Mem{Base: s}, t)
	VMOVUPS(t, Mem{Base: d})
	ADDQ(U8(32), s)
	ADDQ(U8(64), d)
	DECQ(n)
	JNZ(LabelRef("loop"))
	Label("done")
	VZEROUPPER()
	RET()
}

func decodeBF16Z() {
	TEXT("decodeBF16Z", NOSPLIT, "func(dst []float32, src []byte)")
	Pragma("noescape")
	Doc("decodeBF16Z converts len(dst) bfloat16s (a multiple of 16) to float32:",
		"dst[i] = math.Float32frombits(uint32(src[2i:]) << 16).")
	d := ld(Param("dst").Base())
	s := ld(Param("src").Base())
	n := ld(Param("dst").Len())
	SHRQ(U8(4), n)
	JZ(LabelRef("done"))
	Label("loop")
	t := ZMM()
	VPMOVZXWD(Mem{Base: s}, t)
	VPSLLD(U8(16), t, t)
	VMOVUPS(t, Mem{Base: d})
	ADDQ(U8(32), s)
	ADDQ(U8(64), d)
	DECQ(n)
	JNZ(LabelRef("loop"))
	Label("done")
	VZEROUPPER()
	RET()
}

func decodeQ8_0Z() {
	TEXT("decodeQ8_0Z", NOSPLIT, "func(dst []float32, src []byte)")
	Pragma("noescape")
	Doc("decodeQ8_0Z is decodeQ8_0Generic with AVX-512: for each block of 32,",
		"",
		"\td := F16ToF32(block[0:2])",
		"\tfor j := 0; j < 32; j++ {",
		"\t\tdst[j] = float32(int8(block[2+j])) * d",
		"\t}")
	d := ld(Param("dst").Base())
	s := ld(Param("src").Base())
	n := ld(Param("dst").Len())
	SHRQ(U8(5), n)
	JZ(LabelRef("done"))
	Label("loop")
	h := XMM()
	VPBROADCASTW(Mem{Base: s}, h)
	VCVTPH2PS(h, h)
	sc := ZMM()
	VBROADCASTSS(h, sc)
	for i := 0; i < 2; i++ {
		t := ZMM()
		VPMOVSXBD(Mem{Base: s, Disp: 2 + 16*i}, t)
		VCVTDQ2PS(t, t)
		VMULPS(sc, t, t)
		VMOVUPS(t, Mem{Base: d, Disp: 64 * i})
	}
	ADDQ(U8(34), s)
	ADDQ(U8(128), d)
	DECQ(n)
	JNZ(LabelRef("loop"))
	Label("done")
	VZEROUPPER()
	RET()
}

func decodeQ4KBlockZ() {
	TEXT("decodeQ4KBlockZ", NOSPLIT, "func(dst *float32, qs *byte, dm *[16]float32)")
	Pragma("noescape")
	Doc("decodeQ4KBlockZ decodes the 128 nibble bytes of one Q4_K super-block,",
		"given each sub-block's scale dm[j] = d·sc_j and offset dm[8+j] = dmin·m_j:",
		"",
		"\tfor j := 0; j < 4; j++ {",
		"\t\tfor l := 0; l < 32; l++ {",
		"\t\t\tdst[64*j+l] = float32(dm[2*j]*float32(qs[32*j+l]&0xf)) - dm[8+2*j]",
		"\t\t\tdst[64*j+32+l] = float32(dm[2*j+1]*float32(qs[32*j+l]>>4)) - dm[8+2*j+1]",
		"\t\t}",
		"\t}")
	d := ld(Param("dst"))
	q := ld(Param("qs"))
	dm := ld(Param("dm"))
	fifteen := GP32()
	MOVL(U32(15), fifteen)
	mask := ZMM()
	VPBROADCASTD(fifteen, mask)
	for j := 0; j < 4; j++ {
		for half := 0; half < 2; half++ {
			sub := 2*j + half
			sc, mn := ZMM(), ZMM()
			VBROADCASTSS(Mem{Base: dm, Disp: 4 * sub}, sc)
			VBROADCASTSS(Mem{Base: dm, Disp: 4 * (8 + sub)}, mn)
			for i := 0; i < 2; i++ {
				t := ZMM()
				VPMOVZXBD(Mem{Base: q, Disp: 32*j + 16*i}, t)
				if half == 0 {
					VPANDD(mask, t, t)
				} else {
					VPSRLD(U8(4), t, t)
				}
				VCVTDQ2PS(t, t)
				VMULPS(sc, t, t)
				VSUBPS(mn, t, t)
				VMOVUPS(t, Mem{Base: d, Disp: 4 * (64*j + 32*half + 16*i)})
			}
		}
	}
	VZEROUPPER()
	RET()
}

// pack16Z gathers one column of 16 rows per vector: the packing of x
// that the AVX-512 GEMM tiles read (packTask), for a whole block of rows.
func pack16Z() {
	TEXT("pack16Z", NOSPLIT, "func(dst *float32, src *float32, idx *[16]int32, k int)")
	Pragma("noescape")
	Doc("pack16Z is packTask's loop for a block of 16 rows with AVX-512 gathers:",
		"",
		"	for c := 0; c < k; c++ {",
		"		for l := 0; l < 16; l++ {",
		"			dst[16*c+l] = src[idx[l]+c]",
		"		}",
		"	}")
	d := ld(Param("dst"))
	s := ld(Param("src"))
	ip := ld(Param("idx"))
	n := ld(Param("k"))
	vi := ZMM()
	VMOVDQU32(Mem{Base: ip}, vi)
	const unroll = 4
	Label("loop4")
	CMPQ(n, U8(unroll))
	JL(LabelRef("tail"))
	for i := 0; i < unroll; i++ {
		m := K()
		KXNORW(m, m, m)
		t := ZMM()
		VGATHERDPS(Mem{Base: s, Index: vi, Scale: 4, Disp: 4 * i}, m, t)
		VMOVUPS(t, Mem{Base: d, Disp: 64 * i})
	}
	ADDQ(U8(4*unroll), s)
	ADDQ(U32(64*unroll), d)
	SUBQ(U8(unroll), n)
	JMP(LabelRef("loop4"))
	Label("tail")
	TESTQ(n, n)
	JZ(LabelRef("done"))
	m := K()
	KXNORW(m, m, m)
	t := ZMM()
	VGATHERDPS(Mem{Base: s, Index: vi, Scale: 4}, m, t)
	VMOVUPS(t, Mem{Base: d})
	ADDQ(U8(4), s)
	ADDQ(U8(64), d)
	DECQ(n)
	JMP(LabelRef("tail"))
	Label("done")
	VZEROUPPER()
	RET()
}

// ld loads a parameter into a fresh 64-bit register.
func ld(p Component) GPVirtual {
	r := GP64()
	Load(p, r)
	return r
}

// expConsts are the constants of expZ, broadcast into registers once.
type expConsts struct {
	lo, hi, log2e, c1, c2, one VecVirtual
	poly                       []VecVirtual
}

// bcastF32 broadcasts the float32 constant f into a new ZMM register.
func bcastF32(f float32) VecVirtual {
	g := GP32()
	MOVL(U32(math.Float32bits(f)), g)
	z := ZMM()
	VPBROADCASTD(g, z)
	return z
}

func newExpConsts() expConsts {
	return expConsts{
		lo: bcastF32(-150), hi: bcastF32(89), log2e: bcastF32(1.44269504088896341),
		c1: bcastF32(0.693359375), c2: bcastF32(-2.12194440e-4), one: bcastF32(1),
		// Cephes expf's polynomial for e^r on [-ln2/2, ln2/2], highest degree first.
		poly: []VecVirtual{bcastF32(1.9875691500e-4), bcastF32(1.3981999507e-3), bcastF32(8.3334519073e-3),
			bcastF32(4.1665795894e-2), bcastF32(1.6666665459e-1), bcastF32(5.0000001201e-1)},
	}
}

// expZ returns e^x lane by lane (Cephes expf: x clamped to [-150, 89], so
// that very negative inputs give exactly 0 and large ones +Inf; n =
// round(x·log2 e), r = x − n·ln2 in two steps, e^r by a degree-7 polynomial,
// scaled by 2^n with VSCALEFPS). About 2 ulp.
func expZ(x VecVirtual, c expConsts) VecVirtual {
	VMAXPS(c.lo, x, x)
	VMINPS(c.hi, x, x)
	n := ZMM()
	VMULPS(c.log2e, x, n)
	VRNDSCALEPS(U8(0), n, n)
	VFNMADD231PS(c.c1, n, x) // x -= n·c1
	VFNMADD231PS(c.c2, n, x) // x -= n·c2
	p := ZMM()
	VMOVAPS(c.poly[0], p)
	for _, k := range c.poly[1:] {
		VFMADD213PS(k, x, p) // p = p·r + k
	}
	r2, y := ZMM(), ZMM()
	VMULPS(x, x, r2)
	VADDPS(c.one, x, y)
	VFMADD231PS(r2, p, y) // y = p·r² + r + 1
	VSCALEFPS(n, y, y)
	return y
}

func expSubZ() {
	TEXT("expSubZ", NOSPLIT, "func(x []float32, m float32) float32")
	Pragma("noescape")
	Doc("expSubZ replaces x[i] with e^(x[i]−m) (expZ: about 2 ulp, exactly 0 for",
		"−Inf) and returns their sum, in 16 lanes and a fixed lane tree:",
		"",
		"	for i := range x {",
		"		x[i] = exp(x[i] - m)",
		"		sum += x[i]",
		"	}")
	c := newExpConsts()
	mz := ZMM()
	VBROADCASTSS(NewParamAddr("m", 24), mz)
	x := ld(Param("x").Base())
	n := ld(Param("x").Len())
	acc := ZMM()
	VXORPS(acc, acc, acc)
	Label("loop")
	CMPQ(n, U8(16))
	JL(LabelRef("tail"))
	t := ZMM()
	VMOVUPS(Mem{Base: x}, t)
	VSUBPS(mz, t, t)
	y := expZ(t, c)
	VMOVUPS(y, Mem{Base: x})
	VADDPS(y, acc, acc)
	ADDQ(U8(64), x)
	SUBQ(U8(16), n)
	JMP(LabelRef("loop"))
	Label("tail")
	TESTQ(n, n)
	JZ(LabelRef("reduce"))
	k := tailMask(n)
	tt := ZMM()
	VMOVUPS_Z(Mem{Base: x}, k, tt)
	VSUBPS(mz, tt, tt)
	yt := expZ(tt, c)
	VMOVUPS(yt, k, Mem{Base: x})
	VADDPS(yt, acc, k, acc)
	Label("reduce")
	Store(hsumZ(acc), ReturnIndex(0))
	VZEROUPPER()
	RET()
}

func swigluZ() {
	TEXT("swigluZ", NOSPLIT, "func(out, gate, up []float32)")
	Pragma("noescape")
	Doc("swigluZ computes, with expZ,",
		"",
		"	for i := range gate {",
		"		out[i] = gate[i] * up[i] / (1 + exp(-gate[i]))",
		"	}")
	c := newExpConsts()
	o := ld(Param("out").Base())
	g := ld(Param("gate").Base())
	u := ld(Param("up").Base())
	n := ld(Param("gate").Len())
	body := func(k OpmaskVirtual) {
		gv, uv, e := ZMM(), ZMM(), ZMM()
		if k == nil {
			VMOVUPS(Mem{Base: g}, gv)
			VMOVUPS(Mem{Base: u}, uv)
		} else {
			VMOVUPS_Z(Mem{Base: g}, k, gv)
			VMOVUPS_Z(Mem{Base: u}, k, uv)
		}
		zero := ZMM()
		VXORPS(zero, zero, zero)
		VSUBPS(gv, zero, e)
		y := expZ(e, c)
		VADDPS(c.one, y, y)
		VMULPS(uv, gv, gv)
		VDIVPS(y, gv, gv)
		if k == nil {
			VMOVUPS(gv, Mem{Base: o})
		} else {
			VMOVUPS(gv, k, Mem{Base: o})
		}
	}
	loop16(n, []GPVirtual{o, g, u}, nil, body)
	VZEROUPPER()
	RET()
}
