package main

import (
	"fmt"
	"math"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The Q8_0 products with AVX-512 VNNI. MatMul quantizes the activations to
// blocks of 32 int8 with a float32 scale (quantQ8RowZ) and multiplies them
// by a Q8_0 weight packed in panels of 16 rows (kernel.packQ8Panel): in a
// panel, each block of 32 columns is 8 groups of 64 bytes, lane l's 4 bytes
// being columns 4g..4g+3 of row l as unsigned bytes (w+128), then the 16
// rows' scales as float32 (576 bytes in all). VPDPBUSD multiplies the
// unsigned weight bytes by the signed activation bytes, four per lane, so
// each block's sum starts from the activation row's correction −128·Σx.
const (
	maxQ8Rows    = 7   // activation rows per tile: 2·2·7 accumulators + 2 weights + 1 broadcast ≤ 32 registers
	q8PanelBlock = 576 // bytes of one block of a 16-row panel
)

// q8Tile emits q8Z<v>x<nr>: nr activation rows times v panels of 16 weight
// rows (16·v output columns), over nb blocks of 32 columns.
func q8Tile(v, nr int) {
	name := fmt.Sprintf("q8Z%dx%d", v, nr)
	TEXT(name, NOSPLIT, "func(out *float32, ldo int, w *byte, ws int, x *int8, xd *float32, xc *int32, m, nb, valid int, pf *byte)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s computes %d activation rows times %d weight rows of a Q8_0 product:", name, nr, 16*v),
		"",
		fmt.Sprintf("\tfor i := 0; i < %d; i++ {", nr),
		fmt.Sprintf("\t\tfor l := 0; l < %d; l++ { // weight row, in panel l/16 (ws bytes apart), lane l%%16", 16*v),
		"\t\t\tvar acc float32",
		"\t\t\tfor b := 0; b < nb; b++ {",
		"\t\t\t\ts := xc[b*m+i] + Σ_k int32(x[(b*m+i)*32+k]) · int32(wu[l][b][k]) // wu = w+128",
		"\t\t\t\tacc = fma(float32(s), float32(xd[b*m+i]·wd[l][b]), acc)",
		"\t\t\t}",
		"\t\t\tout[i*ldo+l] = acc // l < valid",
		"\t\t}",
		"\t}",
		"",
		"x, xd and xc are block-major (quantQ8RowZ's layout for m rows), starting at",
		"the tile's first row; w is the first panel at its first block. When pf is",
		"not nil, each block also prefetches into L2 the same block of the v panels",
		"at pf, ws bytes apart (the next tile's weight).")
	wp := []GPVirtual{ld(Param("w"))}
	if v > 1 {
		w1 := ld(Param("ws"))
		ADDQ(wp[0], w1)
		wp = append(wp, w1)
	}
	xp := ld(Param("x"))
	xd := ld(Param("xd"))
	xc := ld(Param("xc"))
	mstep := ld(Param("m"))
	SHLQ(U8(2), mstep) // 4m: one block's scales of every row
	xstep := GP64()
	MOVQ(mstep, xstep)
	SHLQ(U8(3), xstep) // 32m: one block's bytes of every row
	nb := ld(Param("nb"))
	pf := ld(Param("pf"))
	ws := ld(Param("ws"))

	facc := make([][]VecVirtual, nr)
	iacc := make([][]VecVirtual, nr)
	for i := range facc {
		facc[i] = make([]VecVirtual, v)
		iacc[i] = make([]VecVirtual, v)
		for j := 0; j < v; j++ {
			facc[i][j], iacc[i][j] = ZMM(), ZMM()
			VXORPS(facc[i][j], facc[i][j], facc[i][j])
		}
	}
	TESTQ(nb, nb)
	JZ(LabelRef("store"))
	Label("loop")
	TESTQ(pf, pf)
	JZ(LabelRef("compute"))
	for j := 0; j < v; j++ {
		for l := 0; l < q8PanelBlock/64; l++ {
			m := Mem{Base: pf, Disp: 64 * l}
			if j == 1 {
				m.Index, m.Scale = ws, 1
			}
			PREFETCHT1(m)
		}
	}
	ADDQ(U32(q8PanelBlock), pf)
	Label("compute")
	for i := 0; i < nr; i++ {
		VPBROADCASTD(Mem{Base: xc, Disp: 4 * i}, iacc[i][0])
		for j := 1; j < v; j++ {
			VMOVDQA64(iacc[i][0], iacc[i][j])
		}
	}
	for g := 0; g < 8; g++ {
		wv := make([]VecVirtual, v)
		for j := range wv {
			wv[j] = ZMM()
			VMOVDQU64(Mem{Base: wp[j], Disp: 64 * g}, wv[j])
		}
		for i := 0; i < nr; i++ {
			x := Mem{Base: xp, Disp: 32*i + 4*g}
			if v == 1 {
				VPDPBUSD_BCST(x, wv[0], iacc[i][0])
				continue
			}
			bc := ZMM()
			VPBROADCASTD(x, bc)
			for j := 0; j < v; j++ {
				VPDPBUSD(bc, wv[j], iacc[i][j])
			}
		}
	}
	for i := 0; i < nr; i++ {
		t := ZMM()
		VBROADCASTSS(Mem{Base: xd, Disp: 4 * i}, t)
		for j := 0; j < v; j++ {
			s := ZMM()
			VMULPS(Mem{Base: wp[j], Disp: 512}, t, s)
			VCVTDQ2PS(iacc[i][j], iacc[i][j])
			VFMADD231PS(s, iacc[i][j], facc[i][j])
		}
	}
	for j := range wp {
		ADDQ(U32(q8PanelBlock), wp[j])
	}
	ADDQ(xstep, xp)
	ADDQ(mstep, xd)
	ADDQ(mstep, xc)
	DECQ(nb)
	JNZ(LabelRef("loop"))

	Label("store")
	storeRows(facc)
}

// vnniPeak emits vnniPeakZ, a loop of independent VPDPBUSD on registers, to
// measure the machine's int8 dot-product throughput as fmaPeak does FMA's.
func vnniPeak() {
	const chains = 16
	TEXT("vnniPeakZ", NOSPLIT, "func(n int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("vnniPeakZ runs n iterations of %d independent VPDPBUSD on registers (peak measurement).", chains))
	peakLoop(chains, ZMM, VPXORD, VPADDD, func(a, b, acc VecVirtual) { VPDPBUSD(a, b, acc) })
}

// quantQ8Row emits quantQ8RowZ, quantQ8RowGeneric with AVX-512. It takes
// four blocks at a time: their maxima (and later their sums) are reduced
// together, six 512-bit lane shuffles and two in-lane ones for all four,
// where reducing each block's vector alone takes four shuffles per block,
// all on the one port that runs shuffles; the four results are gathered in
// one 128-bit register, divided there, and stored through a scratch area
// on the stack; the bytes of two blocks come from two packs and a
// permutation instead of four VPMOVDB. The last nb%4 blocks go one by one.
// (64 rows of 896: 9.5-11 µs here, against 17 µs one block at a time.)
func quantQ8Row() {
	TEXT("quantQ8RowZ", NOSPLIT, "func(qs *int8, d *float32, corr *int32, x *float32, nb, m int)")
	Pragma("noescape")
	Doc("quantQ8RowZ quantizes nb blocks of 32 activations of one row, as",
		"quantQ8RowGeneric does, for each block b:",
		"",
		"\tamax := max_k |x[32b+k]|",
		"\tdb := amax / 127",
		"\tid := 1 / db // 0 when db is 0",
		"\tqs[32·m·b+k] = int8(roundEven(x[32b+k]·id))",
		"\td[m·b], corr[m·b] = db, −128·Σ_k qs[32·m·b+k]")
	qs := ld(Param("qs"))
	d := ld(Param("d"))
	corr := ld(Param("corr"))
	x := ld(Param("x"))
	nb := ld(Param("nb"))
	mstep := ld(Param("m"))
	SHLQ(U8(2), mstep)
	qstep := GP64()
	MOVQ(mstep, qstep)
	SHLQ(U8(3), qstep)
	absMask := GP32()
	MOVL(U32(0x7fffffff), absMask)
	abs := ZMM()
	VPBROADCASTD(absMask, abs)
	k127 := bcastF32(127)
	one := bcastF32(1)
	quantQuads(qs, d, corr, x, nb, mstep, qstep, abs, k127, one)
	TESTQ(nb, nb)
	JZ(LabelRef("done"))
	Label("loop")
	x0, x1 := ZMM(), ZMM()
	VMOVUPS(Mem{Base: x}, x0)
	VMOVUPS(Mem{Base: x, Disp: 64}, x1)
	a := ZMM()
	VANDPS(abs, x0, a)
	a1 := ZMM()
	VANDPS(abs, x1, a1)
	VMAXPS(a1, a, a)
	h := hmaxZ(a) // amax
	VDIVSS(k127.AsX(), h, h)
	VMOVSS(h, Mem{Base: d})
	// id = 1/db, or 0 when db is 0.
	id := XMM()
	VDIVSS(h, one.AsX(), id)
	nz := XMM()
	VXORPS(nz, nz, nz)
	VCMPSS(U8(4), nz, h, nz) // db != 0
	VANDPS(nz, id, id)
	idz := ZMM()
	VBROADCASTSS(id, idz)
	s := ZMM()
	for i, xi := range []VecVirtual{x0, x1} {
		VMULPS(idz, xi, xi)
		VCVTPS2DQ(xi, xi)
		VPMOVDB(xi, Mem{Base: qs, Disp: 16 * i})
		if i == 0 {
			VMOVDQA64(xi, s)
		} else {
			VPADDD(xi, s, s)
		}
	}
	sy := YMM()
	VEXTRACTI64X4(U8(1), s, sy)
	VPADDD(sy, s.AsY(), sy)
	sx := XMM()
	VEXTRACTI128(U8(1), sy, sx)
	VPADDD(sx, sy.AsX(), sx)
	st := XMM()
	VPSHUFD(U8(0x4e), sx, st)
	VPADDD(st, sx, sx)
	VPSHUFD(U8(0xb1), sx, st)
	VPADDD(st, sx, sx)
	sum := GP32()
	VMOVD(sx, sum)
	NEGL(sum)
	SHLL(U8(7), sum)
	MOVL(sum, Mem{Base: corr})
	ADDQ(U8(128), x)
	ADDQ(qstep, qs)
	ADDQ(mstep, d)
	ADDQ(mstep, corr)
	DECQ(nb)
	JNZ(LabelRef("loop"))
	Label("done")
	VZEROUPPER()
	RET()
}

// roundQ8Row emits roundQ8RowZ, kernel.roundQ8RowGeneric with AVX-512: the
// activations of the kernel sets without VNNI, quantized as quantQ8RowZ
// quantizes them and dequantized again, a block at a time, in float32 with
// no integers (the rounding is the Go twin's add and subtract of 1.5·2²³).
func roundQ8Row() {
	TEXT("roundQ8RowZ", NOSPLIT, "func(dst, x *float32, nb int)")
	Pragma("noescape")
	Doc("roundQ8RowZ rounds nb blocks of 32 activations to their quantized values,",
		"as roundQ8RowGeneric does (for x without NaNs), for each block b:",
		"",
		"\tamax := max_k |x[32b+k]|",
		"\tdb := amax / 127",
		"\tid := 1 / db // 0 when that is not finite",
		"\tdst[32b+k] = ((x[32b+k]·id + 0x1.8p23) − 0x1.8p23)·db")
	dst := ld(Param("dst"))
	x := ld(Param("x"))
	nb := ld(Param("nb"))
	absMask := GP32()
	MOVL(U32(0x7fffffff), absMask)
	abs := ZMM()
	VPBROADCASTD(absMask, abs)
	k127 := bcastF32(127)
	one := bcastF32(1)
	largest := bcastF32(math.MaxFloat32)
	magic := bcastF32(0x1.8p23)
	TESTQ(nb, nb)
	JZ(LabelRef("done"))
	Label("loop")
	x0, x1 := ZMM(), ZMM()
	VMOVUPS(Mem{Base: x}, x0)
	VMOVUPS(Mem{Base: x, Disp: 64}, x1)
	a, a1 := ZMM(), ZMM()
	VANDPS(abs, x0, a)
	VANDPS(abs, x1, a1)
	VMAXPS(a1, a, a)
	db := hmaxZ(a) // amax
	VDIVSS(k127.AsX(), db, db)
	// id = 1/db, or 0 when that is not finite (db is 0, or too small).
	id, finite := XMM(), XMM()
	VDIVSS(db, one.AsX(), id)
	VCMPSS(U8(2), largest.AsX(), id, finite) // id ≤ MaxFloat32
	VANDPS(finite, id, id)
	idz, dbz := ZMM(), ZMM()
	VBROADCASTSS(id, idz)
	VBROADCASTSS(db, dbz)
	for i, xi := range []VecVirtual{x0, x1} {
		VMULPS(idz, xi, xi)
		VADDPS(magic, xi, xi)
		VSUBPS(magic, xi, xi)
		VMULPS(dbz, xi, xi)
		VMOVUPS(xi, Mem{Base: dst, Disp: 64 * i})
	}
	ADDQ(U8(128), x)
	ADDQ(U8(128), dst)
	DECQ(nb)
	JNZ(LabelRef("loop"))
	Label("done")
	VZEROUPPER()
	RET()
}

// quantQuads emits quantQ8RowZ's loop over groups of four blocks, which
// leaves nb%4 blocks (and the pointers at them) to the single-block loop.
func quantQuads(qs, d, corr, x, nb, mstep, qstep GPVirtual, abs, k127, one VecVirtual) {
	scratch := AllocLocal(32) // the four scales, then the four inverses (or corrections)
	zero := ZMM()
	VPXORD(zero, zero, zero)
	// order is the dword permutation 0, 4, 8, 12, 1, 5, 9, 13, 2, … 15: its
	// first four gather reduceQuad's results into the low 128 bits, and all
	// of it puts the bytes of two packed blocks (below) in order.
	order, t := ZMM(), GP64()
	MOVQ(U64(0x0d0905010c080400), t)
	VMOVQ(t, order.AsX())
	MOVQ(U64(0x0f0b07030e0a0602), t)
	VPINSRQ(U8(1), t, order.AsX(), order.AsX())
	VPMOVZXBD(order.AsX(), order)
	CMPQ(nb, U8(4))
	JL(LabelRef("single"))
	Label("quad")
	var xs [8]VecVirtual
	var a [4]VecVirtual
	for k := range xs {
		xs[k] = ZMM()
		VMOVUPS(Mem{Base: x, Disp: 64 * k}, xs[k])
	}
	for k := range a {
		a[k] = ZMM()
		t := ZMM()
		VANDPS(abs, xs[2*k], a[k])
		VANDPS(abs, xs[2*k+1], t)
		VMAXPS(t, a[k], a[k])
	}
	amax := reduceQuad(a, VSHUFF32X4, VPERMILPS, VMAXPS)
	VPERMPS(amax, order, amax)
	db, id, nonzero := XMM(), XMM(), XMM()
	VDIVPS(k127.AsX(), amax.AsX(), db)
	VDIVPS(db, one.AsX(), id)
	VCMPPS(U8(4), zero.AsX(), db, nonzero) // db != 0
	VANDPS(nonzero, id, id)
	VMOVUPS(db, scratch)
	VMOVUPS(id, scratch.Offset(16))
	var sums [4]VecVirtual
	r := GP32()
	for k := range sums {
		idk := ZMM()
		VBROADCASTSS(scratch.Offset(16+4*k), idk)
		for _, xi := range []VecVirtual{xs[2*k], xs[2*k+1]} {
			VMULPS(idk, xi, xi)
			VCVTPS2DQ(xi, xi)
		}
		sums[k] = ZMM()
		VPADDD(xs[2*k+1], xs[2*k], sums[k])
		MOVL(scratch.Offset(4*k), r)
		MOVL(r, Mem{Base: d})
		ADDQ(mstep, d)
	}
	// Two blocks' 64 int32 become 64 bytes with two packs (in 128-bit
	// lanes: 4 of each of the four vectors per lane) and one permutation,
	// then one 32-byte store per block.
	for k := 0; k < 8; k += 4 {
		a, b := ZMM(), ZMM()
		VPACKSSDW(xs[k+1], xs[k], a)
		VPACKSSDW(xs[k+3], xs[k+2], b)
		VPACKSSWB(b, a, a)
		VPERMD(a, order, a)
		VMOVDQU32(a.AsY(), Mem{Base: qs})
		ADDQ(qstep, qs)
		VEXTRACTI64X4(U8(1), a, Mem{Base: qs})
		ADDQ(qstep, qs)
	}
	sum := reduceQuad(sums, VSHUFI32X4, VPSHUFD, VPADDD)
	VPERMD(sum, order, sum)
	VPSLLD(U8(7), sum.AsX(), sum.AsX())
	VPSUBD(sum.AsX(), zero.AsX(), sum.AsX()) // −128·Σq
	VMOVDQU(sum.AsX(), scratch.Offset(16))
	for k := range 4 {
		MOVL(scratch.Offset(16+4*k), r)
		MOVL(r, Mem{Base: corr})
		ADDQ(mstep, corr)
	}
	ADDQ(U32(4*128), x)
	SUBQ(U8(4), nb)
	CMPQ(nb, U8(4))
	JGE(LabelRef("quad"))
	Label("single")
}

// reduceQuad reduces four vectors of 16 lanes each to one vector whose
// 128-bit lane k holds the reduction (by op) of v[k] in all four elements:
// lanes are paired across vectors by lanes (VSHUFF32X4 or VSHUFI32X4), then
// within a lane by inLane (VPERMILPS or VPSHUFD).
func reduceQuad(v [4]VecVirtual, lanes, inLane, op func(...Op)) VecVirtual {
	half := func(a, b VecVirtual, lo, hi uint8) VecVirtual {
		t, u := ZMM(), ZMM()
		lanes(U8(lo), b, a, t)
		lanes(U8(hi), b, a, u)
		op(u, t, t)
		return t
	}
	// [a.0 a.1 b.0 b.1] op [a.2 a.3 b.2 b.3]: a's halves, then b's.
	v01 := half(v[0], v[1], 0x44, 0xee)
	v23 := half(v[2], v[3], 0x44, 0xee)
	// Lanes 0 and 1 of v01 are v[0]'s, 2 and 3 v[1]'s; the same for v23.
	r := half(v01, v23, 0x88, 0xdd)
	t := ZMM()
	inLane(U8(0x4e), r, t) // swap the 64-bit halves
	op(t, r, r)
	inLane(U8(0xb1), r, t) // swap neighbours
	op(t, r, r)
	return r
}
