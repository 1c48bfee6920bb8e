package kernel

import (
	"encoding/binary"
	"math"

	"github.com/dfill/dfill/engine/gguf"
)

// K-quant products. MatMul multiplies a Q4_K, Q5_K or Q6_K weight as it
// does a Q8_0 one (q8.go), with every kernel set: the activations are
// quantized to blocks of 32 int8 with one float32 scale dx
// (quantQ8RowGeneric, the same quantization, shared with the Q8_0 products
// of MatMulShared), as llama.cpp's vec_dot_q4_K_q8_K quantizes them on
// every CPU. With the AVX-512 VNNI kernels each sub-block's products are
// then summed exactly as integers. For Q4_K and Q5_K, whose weight is
// d·sc·q − dmin·mn over sub-blocks of 32 (q the unsigned 4- or 5-bit
// quant, sc and mn 6-bit), the activations' block b matching sub-block b:
//
//	out[i][r] = Σ_b d·sc[b]·dx[i][b]·S − dmin·mn[b]·y[i][b]
//	S = Σ_k qx[i][32b+k]·q[r][32b+k],  y[i][b] = dx[i][b]·float32(Σ_k qx[i][32b+k])
//
// computed as two fused multiply-adds per sub-block into one float32 sum
// from 0, the sub-blocks in order: acc = fma(float32(S), float32(d·sc[b]·
// dx[i][b]), acc), then acc = fma(−dmin·mn[b], y[i][b], acc). d·sc and
// dmin·mn are exact in float32 (an f16 times 6 bits); d·sc·dx and y are
// rounded once. For Q6_K, whose weight is d·sc·(q − 32) over sub-blocks of
// 16 (q 6-bit, sc int8), sub-block j being in the activations' block j/2:
//
//	acc = fma(float32(S), float32(d·sc[j]·dx[i][j/2]), acc)
//	S = Σ_k qx[i][16j+k]·(q[r][16j+k] − 32)
//
// for j in order. The AVX-512 VNNI kernels (_asm/kq.go) compute exactly
// this, checked bitwise against a pure-Go loop of the formula
// (kq8_test.go). Every other kernel set multiplies the dequantized
// activations (qx·dx) by the decoded weight with its float32 kernels, as
// for Q8_0 (runDequantized): the same product up to float32 rounding,
// where without VNNI the integer loop would be no faster. So the kernel
// sets agree to rounding, not to the activations' quantization error (at
// most dx/2 per activation, about 0.5% of the products' RMS for Gaussian
// activations), which they all make.
//
// The kernels read the weight packed in panels of 16 rows (packKQPanel),
// ahead by Prepack (1.01 to 1.06 times the GGUF bytes) or on the fly.

const (
	kqLanes     = 16   // weight rows per panel (and per tile)
	kqTileRows  = 12   // activation rows per tile at most (_asm's maxKQRows)
	kqNibbles   = 2048 // bytes of a packed super-block's ql (low 4 bits of the quants)
	kqPairBytes = 512  // of them, the bytes of ql words 8P..8P+7 (two 32-column blocks)

	// kqChunkBytes bounds the quantized activations of one chunk (q8Job):
	// half of a 2 MiB L2 cache, as this Sapphire Rapids has. (m = 32 of a
	// 7B ffn_down, 3584×18944 Q4_K: 330 GOP/s, against 290 with 512 KiB
	// and 260 with 256 KiB, Q8_0's q8ChunkBytes, where the weight streams
	// from memory once per chunk.)
	kqChunkBytes = 1 << 20
)

// A kqLayout is where the parts of a packed super-block of a 16-row panel
// of one K-quant type are (_asm's kqType): ql at 0, then qh, the scales,
// the mins, d and dmin (offsets in bytes).
type kqLayout struct {
	size   int  // bytes of one packed super-block of a panel
	sub16  bool // Q6_K: sub-blocks of 16 with int8 scales, quants offset by 32
	sc, mn int
	d, dm  int
}

var (
	kq4Layout = kqLayout{size: 2432, sc: 2048, mn: 2176, d: 2304, dm: 2368}
	kq5Layout = kqLayout{size: 2944, sc: 2560, mn: 2688, d: 2816, dm: 2880}
	kq6Layout = kqLayout{size: 3392, sub16: true, sc: 3072, d: 3328}
)

// kqLayoutOf returns the packed layout of the K-quant type t, or nil for
// another type.
func kqLayoutOf(t gguf.Type) *kqLayout {
	switch t {
	case gguf.TypeQ4_K:
		return &kq4Layout
	case gguf.TypeQ5_K:
		return &kq5Layout
	case gguf.TypeQ6_K:
		return &kq6Layout
	}
	return nil
}

// A kqTile is a VNNI micro-kernel for Q4_K or Q5_K (_asm's kqTile): nr
// activation rows times one panel of 16 weight rows, over nsb super-blocks;
// xa holds dx·Σqx per block.
type kqTile func(out *float32, ldo int, w *byte, x *int8, xd *float32, xa *float32, m, nsb, valid int, pf *byte)

// A kq6Tile is kqTile for Q6_K; xa holds −32·Σqx per half block.
type kq6Tile func(out *float32, ldo int, w *byte, x *int8, xd *float32, xa *int32, m, nsb, valid int, pf *byte)

// kqKernels holds the K-quant micro-kernels by activation rows, less one.
type kqKernels struct {
	q4, q5 [kqTileRows]kqTile
	q6     [kqTileRows]kq6Tile
}

// kqTiles holds the VNNI K-quant micro-kernels, or nil when the kernel set
// in use has none (then K-quant weights are decoded to float32 and
// multiplied by the dequantized activations).
var kqTiles *kqKernels

// vnniType reports whether MatMul multiplies a weight of type t with the
// VNNI kernels of the kernel set in use.
func vnniType(t gguf.Type) bool {
	return q8Tiles != nil && t == gguf.TypeQ8_0 || kqTiles != nil && kqLayoutOf(t) != nil
}

// vnniPanelBytes returns the bytes of one packed 16-row panel of a Q8_0 or
// K-quant weight of cols columns.
func vnniPanelBytes(t gguf.Type, cols int) int {
	if l := kqLayoutOf(t); l != nil {
		return cols / qkK * l.size
	}
	return cols / qk8_0 * q8PanelBlock
}

// packKQPanel packs panel p of the K-quant weight w (rows 16p..16p+15) for
// the VNNI kernels into dst (Cols/256 packed super-blocks of its
// kqLayout, one after the other), lane l being row 16p+l. A packed
// super-block holds the GGUF blocks' quant bytes interleaved a 32-bit word
// at a time: word k of lane l's ql (128 bytes) at 64k+4l, then word k of
// its qh (Q5_K's 32 bytes, Q6_K's 64) at 2048+64k+4l; then the scales,
// sub-block j's at sc+16j+l (Q6_K's signed), Q4_K's and Q5_K's mins at
// mn+16j+l, and d and dmin as float32 at d+4l and dm+4l. Rows past the
// matrix get zeros.
func packKQPanel(dst []byte, w Matrix, p int) {
	lay := kqLayoutOf(w.Type)
	rb, ts, nsb := w.RowBytes(), w.Type.TypeSize(), w.Cols/qkK
	lanes := min(kqLanes, w.Rows-p*kqLanes)
	for sb := 0; sb < nsb; sb++ {
		d := dst[sb*lay.size : (sb+1)*lay.size]
		if lanes < kqLanes {
			clear(d)
		}
		for l := 0; l < lanes; l++ {
			o := (p*kqLanes+l)*rb + sb*ts
			packKQLane(d, w.Type, lay, w.Data[o:o+ts], l)
		}
	}
}

// packKQLane writes lane l of one packed super-block (packKQPanel's
// layout) from the GGUF block b of type t.
func packKQLane(dst []byte, t gguf.Type, lay *kqLayout, b []byte, l int) {
	var ql, qh []byte
	switch t {
	case gguf.TypeQ4_K:
		ql = b[16 : 16+qkK/2]
	case gguf.TypeQ5_K:
		ql, qh = b[q5KOffQs:q5KOffQs+qkK/2], b[q5KOffQh:q5KOffQh+qkK/8]
	default:
		ql, qh = b[:qkK/2], b[qkK/2:qkK/2+qkK/4]
	}
	lo, hi := (*[kqNibbles]byte)(dst), dst[kqNibbles:] // (l&15 below is l, proved in bounds)
	src := (*[qkK / 2]byte)(ql)
	for k := 0; k < qkK/8; k++ {
		binary.LittleEndian.PutUint32(lo[64*k+4*(l&15):], binary.LittleEndian.Uint32(src[4*k:]))
	}
	for k := 0; k < len(qh)/4; k++ {
		binary.LittleEndian.PutUint32(hi[64*k+4*l:], binary.LittleEndian.Uint32(qh[4*k:]))
	}
	if lay.sub16 {
		for j := 0; j < 16; j++ {
			dst[lay.sc+16*j+l] = b[qkK/2+qkK/4+j]
		}
		binary.LittleEndian.PutUint32(dst[lay.d+4*l:], math.Float32bits(f16Table[binary.LittleEndian.Uint16(b[qkK/2+qkK/4+qkK/16:])]))
		return
	}
	for j := 0; j < 8; j++ {
		dst[lay.sc+16*j+l], dst[lay.mn+16*j+l] = scaleMinK4(j, b[4:16])
	}
	binary.LittleEndian.PutUint32(dst[lay.d+4*l:], math.Float32bits(f16Table[binary.LittleEndian.Uint16(b)]))
	binary.LittleEndian.PutUint32(dst[lay.dm+4*l:], math.Float32bits(f16Table[binary.LittleEndian.Uint16(b[2:])]))
}

// kqExtras computes, from one row's quantized blocks b0..b1 in the
// block-major layout of m rows (quantQ8RowGeneric's), what the K-quant
// kernels read beside them: y (when not nil) gets dx·float32(Σqx) per block
// (Q4_K's and Q5_K's mins) and h (when not nil) −32·Σqx of each half block
// (Q6_K's offset), at the same cells (h's two per cell).
func kqExtras(y []float32, h []int32, qs []int8, xd []float32, corr []int32, m, nb int) {
	for b := 0; b < nb; b++ {
		sum := -corr[b*m] / q8Offset // corr is −128·Σqx
		if y != nil {
			y[b*m] = xd[b*m] * float32(sum)
		}
		if h != nil {
			var lo int32
			for _, v := range qs[b*m*qk8_0 : b*m*qk8_0+qk8_0/2] {
				lo += int32(v)
			}
			h[2*b*m], h[2*b*m+1] = -32*lo, -32*(sum-lo)
		}
	}
}

// kqPanel multiplies chunk c of the job's activations by panel t of the
// K-quant product pr, in tiles of up to kqTileRows rows.
func (j *q8Job) kqPanel(worker int, pr *Product, t, c int) {
	lay := kqLayoutOf(pr.W.Type)
	nsb, rows := pr.W.Cols/qkK, pr.W.Rows
	ws := nsb * lay.size
	qs, xd, _, n := j.region(c)
	xy, xh := j.extras(c)
	i0, r0 := c*j.chunk, t*kqLanes
	valid := min(kqLanes, rows-r0)
	var w []byte
	var next *byte // the next panel of this weight, prefetched by the first tile
	if pr.W.packed != nil {
		w = pr.W.packed.q8[t*ws:]
		if r0+kqLanes < rows {
			next = &w[ws]
		}
	} else {
		w = j.state.bytesFor(worker, ws)
		packKQPanel(w, pr.W, t)
	}
	tiles := (n + kqTileRows - 1) / kqTileRows
	for k, r := 0, 0; r < n; k++ {
		nr := n / tiles
		if k < n%tiles {
			nr++
		}
		out := &pr.Out[(i0+r)*rows+r0]
		switch pr.W.Type {
		case gguf.TypeQ4_K:
			j.kq.q4[nr-1](out, rows, &w[0], &qs[r*qk8_0], &xd[r], &xy[r], n, nsb, valid, next)
		case gguf.TypeQ5_K:
			j.kq.q5[nr-1](out, rows, &w[0], &qs[r*qk8_0], &xd[r], &xy[r], n, nsb, valid, next)
		default:
			j.kq.q6[nr-1](out, rows, &w[0], &qs[r*qk8_0], &xd[r], &xh[2*r], n, nsb, valid, next)
		}
		r += nr
		next = nil
	}
}

// QuantizesActivations reports whether MatMul multiplies a weight of type
// t by the activations quantized to blocks of 32 int8 with a float32 scale
// each (amax/127, rounded half to even), as llama.cpp does, rather than by
// the activations as they are: a Q8_0, Q4_K, Q5_K or Q6_K weight (q8.go,
// kq8.go). It depends on the type alone, not on the kernel set: those
// without VNNI multiply the dequantized activations. A reference product
// that quantizes the same way differs from MatMul's by rounding only.
func QuantizesActivations(t gguf.Type) bool {
	return t == gguf.TypeQ8_0 || kqLayoutOf(t) != nil
}
