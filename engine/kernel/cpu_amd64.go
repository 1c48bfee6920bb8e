//go:build !purego

package kernel

import (
	"encoding/binary"

	"golang.org/x/sys/cpu"
)

// The instruction sets the assembly kernels use. They start as what the CPU
// (and OS) support; tests lower them and call selectKernels to run each
// variant the machine has, as crypto/sha256 does.
var (
	useAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasBMI2
	useAVX2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	useVNNI   = useAVX512 && cpu.X86.HasAVX512VNNI
)

var (
	cpuAVX512 = useAVX512
	cpuAVX2   = useAVX2
	cpuVNNI   = useVNNI
)

var q8ZTiles = [2][q8TileRows]q8Tile{
	{q8Z1x1, q8Z1x2, q8Z1x3, q8Z1x4, q8Z1x5, q8Z1x6, q8Z1x7},
	{q8Z2x1, q8Z2x2, q8Z2x3, q8Z2x4, q8Z2x5, q8Z2x6, q8Z2x7},
}

var kqZTiles = kqKernels{
	q4: [kqTileRows]kqTile{kq4Z1, kq4Z2, kq4Z3, kq4Z4, kq4Z5, kq4Z6, kq4Z7, kq4Z8, kq4Z9, kq4Z10, kq4Z11, kq4Z12},
	q5: [kqTileRows]kqTile{kq5Z1, kq5Z2, kq5Z3, kq5Z4, kq5Z5, kq5Z6, kq5Z7, kq5Z8, kq5Z9, kq5Z10, kq5Z11, kq5Z12},
	q6: [kqTileRows]kq6Tile{kq6Z1, kq6Z2, kq6Z3, kq6Z4, kq6Z5, kq6Z6, kq6Z7, kq6Z8, kq6Z9, kq6Z10, kq6Z11, kq6Z12},
}

func init() { selectKernels() }

var gemmZTiles = gemmKernels{name: "avx512", lanes: 16, nr: 12, ldc: 32, tileOut: [2][]gemmTileOut{
	{gemmZ1x1, gemmZ1x2, gemmZ1x3, gemmZ1x4, gemmZ1x5, gemmZ1x6, gemmZ1x7, gemmZ1x8, gemmZ1x9, gemmZ1x10, gemmZ1x11, gemmZ1x12},
	{gemmZ2x1, gemmZ2x2, gemmZ2x3, gemmZ2x4, gemmZ2x5, gemmZ2x6, gemmZ2x7, gemmZ2x8, gemmZ2x9, gemmZ2x10, gemmZ2x11, gemmZ2x12},
}, pack: pack16Z, tileRows: [2][]gemmTileRows{
	{gemmZR1x1, gemmZR1x2, gemmZR1x3, gemmZR1x4, gemmZR1x5, gemmZR1x6, gemmZR1x7, gemmZR1x8, gemmZR1x9, gemmZR1x10, gemmZR1x11, gemmZR1x12},
	{gemmZR2x1, gemmZR2x2, gemmZR2x3, gemmZR2x4, gemmZR2x5, gemmZR2x6, gemmZR2x7, gemmZR2x8, gemmZR2x9, gemmZR2x10, gemmZR2x11, gemmZR2x12},
}}

var gemmYTiles = gemmKernels{name: "avx2", lanes: 8, nr: 6, ldc: 16, tile: [2][]gemmTile{
	{gemmY1x1, gemmY1x2, gemmY1x3, gemmY1x4, gemmY1x5, gemmY1x6},
	{gemmY2x1, gemmY2x2, gemmY2x3, gemmY2x4, gemmY2x5, gemmY2x6},
}}

// selectKernels installs the fastest kernels that useAVX512, useVNNI and
// useAVX2 allow, or the pure-Go ones when none is set.
func selectKernels() {
	useAVX512 = useAVX512 && cpuAVX512
	useAVX2 = useAVX2 && cpuAVX2
	useVNNI = useVNNI && cpuVNNI && useAVX512
	dotF32, axpyF32, gemm = dotF32Generic, axpyF32Generic, nil
	q8Tiles, kqTiles, quantQ8Row, roundQ8Row = nil, nil, quantQ8RowGeneric, roundQ8RowGeneric
	expSub, swiGLU = expSubGeneric, swiGLUGeneric
	maxF32, scaleF32, sumSq, mulScaled = maxGeneric, scaleGeneric, sumSqGeneric, mulScaledGeneric
	ropePairs, ropeHalves = ropePairsGeneric, ropeHalvesGeneric
	decodeF16, decodeBF16, decodeQ8_0, decodeQ4K = decodeF16Generic, decodeBF16Generic, decodeQ8_0Generic, decodeQ4KGeneric
	switch {
	case useAVX512:
		dotF32, axpyF32, gemm = dotZ, axpyZ, &gemmZTiles
		decodeF16, decodeBF16, decodeQ8_0, decodeQ4K = decodeF16Asm, decodeBF16Asm, decodeQ8_0Asm, decodeQ4KAsm
		expSub, swiGLU = expSubAsm, swigluZ
		maxF32, scaleF32, sumSq, mulScaled = maxZ, scaleZ, sumSqZ, mulScaledZ
		ropePairs, ropeHalves = ropePairsZ, ropeHalvesZ
		quantQ8Row, roundQ8Row = quantQ8RowAsm, roundQ8RowAsm
		if useVNNI {
			q8Tiles, kqTiles = &q8ZTiles, &kqZTiles
		}
	case useAVX2:
		dotF32, axpyF32, gemm = dotY, axpyY, &gemmYTiles
	}
}

// kernelVariants returns the kernel sets this machine can run, fastest
// first; "generic" (pure Go) is always last. "avx512-vnni" is "avx512"
// with the VNNI Q8_0 and K-quant products.
func kernelVariants() []string {
	var v []string
	if cpuVNNI {
		v = append(v, "avx512-vnni")
	}
	if cpuAVX512 {
		v = append(v, "avx512")
	}
	if cpuAVX2 {
		v = append(v, "avx2")
	}
	return append(v, "generic")
}

// useVariant installs the kernel set named by kernelVariants and returns a
// func that restores the CPU's best (SetVariant checks the name).
func useVariant(name string) (restore func()) {
	useAVX512, useAVX2 = name == "avx512" || name == "avx512-vnni", name == "avx2"
	useVNNI = name == "avx512-vnni"
	selectKernels()
	return func() {
		useAVX512, useAVX2, useVNNI = cpuAVX512, cpuAVX2, cpuVNNI
		selectKernels()
	}
}

// Variant returns the name of the kernel set in use: "avx512-vnni",
// "avx512", "avx2" or "generic" (pure Go).
func Variant() string {
	switch {
	case useVNNI:
		return "avx512-vnni"
	case useAVX512:
		return "avx512"
	case useAVX2:
		return "avx2"
	}
	return "generic"
}

// FMAPeak runs n iterations of a register-only loop of independent fused
// multiply-adds as wide as the kernels in use, on the calling goroutine, and
// returns the float32 operations it did (2 per lane per FMA; 0 with the
// pure-Go kernels). Timed on each of T goroutines at once, it measures the
// machine's FMA peak for T threads, the ceiling MatMul is compared with.
func FMAPeak(n int) (flops float64) {
	switch {
	case useAVX512:
		fmaPeakZ(n)
		return float64(n) * 16 * 16 * 2
	case useAVX2:
		fmaPeakY(n)
		return float64(n) * 12 * 8 * 2
	}
	return 0
}

// VNNIPeak is FMAPeak for the VNNI int8 dot product the Q8_0 kernels use:
// it runs n iterations of a register-only loop of independent VPDPBUSD and
// returns the int8 operations they did (2 per byte pair), or 0 without VNNI.
func VNNIPeak(n int) (ops float64) {
	if !useVNNI {
		return 0
	}
	vnniPeakZ(n)
	return float64(n) * 16 * 64 * 2
}

// BF16Peak is FMAPeak for AVX512_BF16's VDPBF16PS (64 flops per
// instruction), which no kernel uses (_asm/bf16.go says why): n iterations
// of a register-only loop of independent VDPBF16PS, or 0 without
// AVX512_BF16.
func BF16Peak(n int) (flops float64) {
	if !useAVX512 || !cpu.X86.HasAVX512BF16 {
		return 0
	}
	bf16PeakZ(n)
	return float64(n) * 16 * 32 * 2
}

// quantQ8RowAsm is quantQ8RowGeneric with quantQ8RowZ.
func quantQ8RowAsm(qs []int8, d []float32, corr []int32, x []float32, m int) {
	nb := len(x) / qk8_0
	if nb == 0 {
		return
	}
	_, _, _ = qs[((nb-1)*m+1)*qk8_0-1], d[(nb-1)*m], corr[(nb-1)*m] // bounds
	quantQ8RowZ(&qs[0], &d[0], &corr[0], &x[0], nb, m)
}

// roundQ8RowAsm is roundQ8RowGeneric with roundQ8RowZ.
func roundQ8RowAsm(dst, x []float32) {
	nb := len(x) / qk8_0
	if nb == 0 {
		return
	}
	_ = dst[nb*qk8_0-1] // bounds
	roundQ8RowZ(&dst[0], &x[0], nb)
}

func decodeF16Asm(dst []float32, src []byte) {
	n := len(dst) &^ 15
	decodeF16Z(dst[:n], src[:2*n])
	decodeF16Generic(dst[n:], src[2*n:])
}

func decodeBF16Asm(dst []float32, src []byte) {
	n := len(dst) &^ 15
	decodeBF16Z(dst[:n], src[:2*n])
	decodeBF16Generic(dst[n:], src[2*n:])
}

func decodeQ8_0Asm(dst []float32, src []byte) {
	nb := len(dst) / qk8_0
	decodeQ8_0Z(dst[:nb*qk8_0], src[:nb*q8_0Bytes])
}

func decodeQ4KAsm(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*q4KBytes]
	var dm [16]float32
	for i := 0; i < nb; i++ {
		b := src[i*q4KBytes : (i+1)*q4KBytes]
		d := f16Table[binary.LittleEndian.Uint16(b)]
		dmin := f16Table[binary.LittleEndian.Uint16(b[2:])]
		for j := 0; j < 8; j++ {
			sc, m := scaleMinK4(j, b[4:16])
			dm[j], dm[8+j] = d*float32(sc), dmin*float32(m)
		}
		decodeQ4KBlockZ(&dst[i*qkK], &b[16], &dm)
	}
}

func expSubAsm(x []float32, m float32) float64 { return float64(expSubZ(x, m)) }
