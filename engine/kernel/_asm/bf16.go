package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/ir"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// AVX512_BF16's VDPBF16PS, measured. A BF16 product could round its
// activations to bfloat16 and run as VDPBF16PS (two products of a pair of
// bfloat16s added to a float32 lane, 64 flops per instruction, twice an
// FMA's), but on the machine dfill is developed on (Sapphire Rapids) it
// issues at half the FMA rate: tiles written with it ran at 93–96 % of its
// peak, 144–159 GFLOP/s on 2 threads, against 227–280 for the FMA kernel on
// the decoded weight. So BF16 weights are decoded and multiplied with FMAs,
// and `dfill bench kernels` prints this peak beside FMA's, for a CPU where
// the balance differs.
//
// Neither Go's assembler nor avo knows VDPBF16PS, so it is written as its
// bytes (vdpbf16ps), on fixed registers.

// vdpbf16ps emits VDPBF16PS zmm(src2), zmm(src1), zmm(dst): dst.fp32[j] +=
// src1.bf16[2j+1]·src2.bf16[2j+1], then += src1.bf16[2j]·src2.bf16[2j]
// (EVEX.512.F3.0F38.W0 52 /r, checked against binutils' encoding).
func vdpbf16ps(src2, src1, dst VecPhysical) {
	r, v, b := int(dst.PhysicalIndex()), int(src1.PhysicalIndex()), int(src2.PhysicalIndex())
	p0 := 0x02 | (^(r>>3)&1)<<7 | (^(b>>4)&1)<<6 | (^(b>>3)&1)<<5 | (^(r>>4)&1)<<4
	p1 := 0x06 | (^v&0xf)<<3
	p2 := 0x40 | (^(v>>4)&1)<<3
	modrm := 0xc0 | (r&7)<<3 | b&7
	Comment(fmt.Sprintf("VDPBF16PS Z%d, Z%d, Z%d", b, v, r))
	for _, x := range []int{0x62, p0, p1, p2, 0x52, modrm} {
		Instruction(&ir.Instruction{Opcode: "BYTE", Operands: []Op{U8(x)}})
	}
}

// zreg returns the physical ZMM register i.
func zreg(i int) VecPhysical {
	return []VecPhysical{Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15,
		Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23, Z24, Z25, Z26, Z27, Z28, Z29, Z30, Z31}[i]
}

// bf16Peak emits bf16PeakZ, a loop of independent VDPBF16PS on registers,
// measured as fmaPeak is.
func bf16Peak() {
	const chains = 16
	TEXT("bf16PeakZ", NOSPLIT, "func(n int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("bf16PeakZ runs n iterations of %d independent VDPBF16PS on registers (peak measurement).", chains))
	n := ld(Param("n"))
	for i := 0; i < chains+2; i++ {
		VPXORD(zreg(i), zreg(i), zreg(i))
	}
	TESTQ(n, n)
	JZ(LabelRef("done"))
	Label("loop")
	for i := 0; i < chains; i++ {
		vdpbf16ps(zreg(chains), zreg(chains+1), zreg(i))
	}
	DECQ(n)
	JNZ(LabelRef("loop"))
	Label("done")
	VZEROUPPER()
	RET()
}
