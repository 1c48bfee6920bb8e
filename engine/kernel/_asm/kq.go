package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The K-quant products (Q4_K, Q5_K, Q6_K) with AVX-512 VNNI. The
// activations are quantized as for Q8_0 (quantQ8RowZ: blocks of 32 int8
// with a float32 scale, block-major), and the weight is packed in panels of
// 16 rows (kernel.packKQPanel), one super-block of 256 columns after the
// other. A packed super-block holds the GGUF block's quant bytes of the 16
// rows interleaved four bytes at a time: the 64 bytes at 64k hold in bytes
// 4l..4l+3 lane l's ql[4k:][:4], for the 32 words of ql; then, from byte
// 2048 in the same way, Q5_K's 8 words of qh and Q6_K's 16. Byte c of ql
// word 8P+g (P < 4, g < 8) has in its low nibble column 4g+c of one 32-column
// block lo(P) and in its high nibble that column of block hi(P): Q4_K's and
// Q5_K's blocks 2P and 2P+1, Q6_K's 4(P/2)+P%2 and 4(P/2)+P%2+2. Q5_K's fifth
// bit of block b's column 4g+c is bit b of byte c of qh word g; Q6_K's two
// high bits of block 4n+2h+r, bits 4h+2r and 4h+2r+1 of byte c of qh word
// 8n+g. Then the scales, one byte per lane and sub-block (Q6_K's signed),
// the mins (Q4_K, Q5_K), and d and dmin as float32 per lane. VPDPBUSD
// multiplies the unsigned quants by the signed activations, four per lane,
// one sub-block at a time, the blocks in order; the float32 terms are added
// per sub-block (kernel/kq8.go has the formula).
const (
	maxKQRows  = 12   // activation rows per tile: 2·12 accumulators + weights, scales, constants ≤ 32 registers
	kqNibbles  = 2048 // bytes of ql per super-block of a panel
	kqPairSize = 512  // bytes of ql per P (two 32-column blocks)
)

// kqType describes one K-quant type's packed super-block.
type kqType struct {
	name, prefix  string
	high          int  // high bits above the nibbles: 0, 1 (Q5_K) or 2 (Q6_K)
	sub16         bool // Q6_K: sub-blocks of 16 with int8 scales, quants offset by 32
	size          int  // bytes of a packed super-block of a panel
	sc, mn, d, dm int  // offsets of the scales, mins, d and dmin
}

var kqTypes = []kqType{
	{name: "Q4_K", prefix: "kq4Z", size: 2432, sc: 2048, mn: 2176, d: 2304, dm: 2368},
	{name: "Q5_K", prefix: "kq5Z", high: 1, size: 2944, sc: 2560, mn: 2688, d: 2816, dm: 2880},
	{name: "Q6_K", prefix: "kq6Z", high: 2, sub16: true, size: 3392, sc: 3072, d: 3328},
}

// kqTile emits <prefix><nr>: nr activation rows times one panel of 16
// weight rows of a K-quant product, over nsb super-blocks.
func kqTile(t kqType, nr int) {
	name := fmt.Sprintf("%s%d", t.prefix, nr)
	xaType := "*float32" // xd·Σx per block
	if t.sub16 {
		xaType = "*int32" // −32·Σx per half block
	}
	TEXT(name, NOSPLIT, "func(out *float32, ldo int, w *byte, x *int8, xd *float32, xa "+xaType+", m, nsb, valid int, pf *byte)")
	Pragma("noescape")
	doc := []string{
		fmt.Sprintf("%s computes %d activation rows times 16 weight rows of a %s product:", name, nr, t.name),
		"",
		fmt.Sprintf("\tfor i := 0; i < %d; i++ {", nr),
		"\t\tfor l := 0; l < 16; l++ { // weight row (lane)",
		"\t\t\tvar acc float32",
	}
	if t.sub16 {
		doc = append(doc,
			"\t\t\tfor j := 0; j < 16*nsb; j++ { // sub-blocks of 16, in block b = j/2",
			"\t\t\t\ts := xa[2*(b*m+i)+j%2] + Σ_k int32(x[(b*m+i)*32+16*(j%2)+k]) · int32(q[l][16j+k]) // xa: −32·Σ of the half",
			"\t\t\t\tacc = fma(float32(s), float32(d[l]·sc[l][j]·xd[b*m+i]), acc)",
			"\t\t\t}")
	} else {
		doc = append(doc,
			"\t\t\tfor b := 0; b < 8*nsb; b++ { // sub-blocks of 32",
			"\t\t\t\ts := Σ_k int32(x[(b*m+i)*32+k]) · int32(q[l][32b+k])",
			"\t\t\t\tacc = fma(float32(s), float32(d[l]·sc[l][b]·xd[b*m+i]), acc)",
			"\t\t\t\tacc = fma(−dmin[l]·mn[l][b], xa[b*m+i], acc) // xa: xd·Σ_k x",
			"\t\t\t}")
	}
	doc = append(doc,
		"\t\t\tout[i*ldo+l] = acc // l < valid",
		"\t\t}",
		"\t}",
		"",
		"with q (the unsigned quants), sc, mn, d and dmin unpacked from the panel at w",
		"(kernel.packKQPanel), d·sc and dmin·mn exact in float32. x, xd and xa are",
		"block-major for m rows, starting at the tile's first row. When pf is not",
		"nil, each super-block also prefetches into L2 the same super-block of the",
		"panel at pf.")
	Doc(doc...)

	w := ld(Param("w"))
	xp := ld(Param("x"))
	xd := ld(Param("xd"))
	xa := ld(Param("xa"))
	mstep := ld(Param("m"))
	SHLQ(U8(2), mstep) // 4m: one block's scales of every row
	nsb := ld(Param("nsb"))
	pf := ld(Param("pf"))
	mask := bcastBytes(0x0f)
	var c16, mask30, bit VecVirtual
	switch t.high {
	case 1:
		c16 = bcastBytes(16) // a set fifth bit adds 16
		bit = ZMM()          // the block's bit in qh: 1 << b%8
	case 2:
		mask30 = bcastBytes(0x30)
	}

	facc := make([]VecVirtual, nr)
	iacc := make([]VecVirtual, nr)
	for i := range facc {
		facc[i], iacc[i] = ZMM(), ZMM()
		VXORPS(facc[i], facc[i], facc[i])
	}
	TESTQ(nsb, nsb)
	JZ(LabelRef("store"))
	Label("sb")
	TESTQ(pf, pf)
	JZ(LabelRef("compute"))
	for l := 0; l < t.size/64; l++ {
		PREFETCHT1(Mem{Base: pf, Disp: 64 * l})
	}
	ADDQ(U32(t.size), pf)
	Label("compute")
	wq, sp := GP64(), GP64()
	MOVQ(w, wq)
	LEAQ(Mem{Base: w, Disp: t.sc}, sp)
	var bp GPVirtual // qh
	if t.high > 0 {
		bp = GP64()
		LEAQ(Mem{Base: w, Disp: kqNibbles}, bp)
	}
	if t.high == 1 {
		one := bcastBytes(1)
		VMOVDQA64(one, bit)
	}
	// Each pass of the loop takes the blocks (r, h) in this order: nibbles
	// h of the pass's first P plus r. Q4_K and Q5_K take one P a pass, Q6_K
	// two, and either way the blocks come in order.
	order := [][2]int{{0, 0}, {0, 1}}
	if t.sub16 {
		order = [][2]int{{0, 0}, {1, 0}, {0, 1}, {1, 1}}
	}
	perPass := len(order) / 2 // P per pass
	passes := GP64()
	MOVQ(U32(4/perPass), passes)
	Label("pass")
	// quants loads the quants of columns 4g..4g+3 of the pass's block
	// (r, h), with their high bits.
	quants := func(r, h, g int) VecVirtual {
		wv := ZMM()
		src := Mem{Base: wq, Disp: kqPairSize*r + 64*g}
		switch {
		case t.high == 2 && h == 0:
			VMOVDQU64(src, wv) // the ternary below keeps the low nibble
		case t.high == 2:
			VPSRLW(U8(4), src, wv)
		case h == 0:
			VPANDD(src, mask, wv)
		default:
			VPSRLW(U8(4), src, wv)
			VPANDD(mask, wv, wv)
		}
		switch t.high {
		case 1:
			k := K()
			VPTESTMB(Mem{Base: bp, Disp: 64 * g}, bit, k)
			VPADDB(c16, wv, k, wv)
		case 2:
			// Bits s, s+1 of qh to bits 4, 5: words shifted, so that bits
			// of the neighbouring byte land outside 0x30.
			hb := ZMM()
			qh := Mem{Base: bp, Disp: 64 * g} // word 8n+g, n the pass
			switch s := 4*h + 2*r; {
			case s < 4:
				VPSLLW(U8(4-s), qh, hb)
				VPANDD(mask30, hb, hb)
			case s == 4:
				VPANDD(qh, mask30, hb)
			default:
				VPSRLW(U8(s-4), qh, hb)
				VPANDD(mask30, hb, hb)
			}
			VPTERNLOGD(U8(0xec), mask, hb, wv) // wv&0x0f | hb
		}
		return wv
	}
	// scale loads sub-block scales (bytes at off from sp) times the float32
	// per lane at off2 from w.
	scale := func(off, off2 int, signed bool) VecVirtual {
		s := ZMM()
		if signed {
			VPMOVSXBD(Mem{Base: sp, Disp: off}, s)
		} else {
			VPMOVZXBD(Mem{Base: sp, Disp: off}, s)
		}
		VCVTDQ2PS(s, s)
		VMULPS(Mem{Base: w, Disp: off2}, s, s)
		return s
	}
	for bi, rh := range order {
		r, h := rh[0], rh[1]
		if !t.sub16 {
			for i := range iacc {
				VPXORD(iacc[i], iacc[i], iacc[i])
			}
			for g := 0; g < 8; g++ {
				wv := quants(r, h, g)
				for i := range iacc {
					VPDPBUSD_BCST(Mem{Base: xp, Disp: 32*i + 4*g}, wv, iacc[i])
				}
			}
			if t.high == 1 {
				VPADDB(bit, bit, bit) // the next block's bit
			}
			dsc := scale(16*bi, t.d, false)
			dmn := scale(t.mn-t.sc+16*bi, t.dm, false)
			for i := range iacc {
				s := ZMM()
				VMULPS_BCST(Mem{Base: xd, Disp: 4 * i}, dsc, s)
				VCVTDQ2PS(iacc[i], iacc[i])
				VFMADD231PS(s, iacc[i], facc[i])
				VFNMADD231PS_BCST(Mem{Base: xa, Disp: 4 * i}, dmn, facc[i])
			}
		} else {
			for s2 := 0; s2 < 2; s2++ {
				for i := range iacc {
					VPBROADCASTD(Mem{Base: xa, Disp: 8*i + 4*s2}, iacc[i])
				}
				for g := 4 * s2; g < 4*s2+4; g++ {
					wv := quants(r, h, g)
					for i := range iacc {
						VPDPBUSD_BCST(Mem{Base: xp, Disp: 32*i + 4*g}, wv, iacc[i])
					}
				}
				dsc := scale(16*(2*bi+s2), t.d, true)
				for i := range iacc {
					s := ZMM()
					VMULPS_BCST(Mem{Base: xd, Disp: 4 * i}, dsc, s)
					VCVTDQ2PS(iacc[i], iacc[i])
					VFMADD231PS(s, iacc[i], facc[i])
				}
			}
		}
		LEAQ(Mem{Base: xp, Index: mstep, Scale: 8}, xp) // 32m bytes: the next block
		ADDQ(mstep, xd)
		ADDQ(mstep, xa)
		if t.sub16 {
			ADDQ(mstep, xa) // two int32 per row
		}
	}
	ADDQ(U32(kqPairSize*perPass), wq)
	if t.sub16 {
		ADDQ(U32(16*2*len(order)), sp) // two sub-blocks a block
	} else {
		ADDQ(U32(16*len(order)), sp)
	}
	if t.high == 2 {
		ADDQ(U32(64*8), bp) // qh words 8n..8n+7 a pass
	}
	DECQ(passes)
	JNZ(LabelRef("pass"))
	ADDQ(U32(t.size), w)
	DECQ(nsb)
	JNZ(LabelRef("sb"))

	Label("store")
	acc := make([][]VecVirtual, nr)
	for i := range acc {
		acc[i] = []VecVirtual{facc[i]}
	}
	storeRows(acc)
}

// bcastBytes broadcasts the byte b to every byte of a new ZMM register.
func bcastBytes(b byte) VecVirtual {
	g := GP32()
	MOVL(U32(uint32(b)*0x01010101), g)
	z := ZMM()
	VPBROADCASTD(g, z)
	return z
}
