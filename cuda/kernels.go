//go:build cuda || cudaemu

package cuda

import (
	"fmt"

	"github.com/dfill/dfill/engine/gguf"
)

// The typed launches of the kernels in kernels/*.cu, one function each.
// They queue work on the default stream and must run inside Device.do;
// pointers are device addresses, shapes row-major as the kernels' comments
// say.

// matrix is a weight matrix on the GPU: rows rows of cols elements of typ,
// each rowBytes bytes, as GGUF stores it (a tensor of dims [cols, rows]).
type matrix struct {
	typ        gguf.Type
	rows, cols int
	rowBytes   int64
	buf        buffer
}

// typeSuffix names the weight types the kernels read as they are.
var typeSuffix = map[gguf.Type]string{
	gguf.TypeF32:  "f32",
	gguf.TypeF16:  "f16",
	gguf.TypeBF16: "bf16",
	gguf.TypeQ8_0: "q8_0",
	gguf.TypeQ4_K: "q4_k",
	gguf.TypeQ6_K: "q6_k",
}

// The matrix kernels' tile and the K granule of a split.
const (
	tileM, tileN = 64, 64
	tileK        = 32
	maxSplits    = 16
)

// gemmOptions choose a product's kernel: the tensor-core kernel unless
// simt (always for F32 weights), and the split-K count the occupancy rule
// gives unless splits > 0.
type gemmOptions struct {
	simt   bool
	splits int
}

// splitK returns how many pieces to split the K dimension of an (m, n, k)
// product into, and each piece's length (a multiple of tileK): enough that
// the product has about two tiles per multiprocessor, at most maxSplits.
func (d *Device) splitK(m, n, k, force int) (splits, chunk int) {
	units := k / tileK
	splits = force
	if splits <= 0 {
		tiles := ceilDiv(m, tileM) * ceilDiv(n, tileN)
		splits = max(1, ceilDiv(2*d.info.SMs, tiles))
	}
	splits = max(1, min(splits, units, maxSplits))
	chunk = ceilDiv(units, splits) * tileK
	return ceilDiv(k, chunk), chunk
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// matmul computes out (m, w.rows) = x (m, w.cols)·wᵀ, plus bias (w.rows
// floats, when not 0), added to out when accumulate. partial is the
// split-K scratch, grown as needed.
func (d *Device) matmul(out, x devPtr, m int, w *matrix, bias devPtr, accumulate bool, partial *buffer, o gemmOptions) error {
	if m == 0 || w.rows == 0 {
		return nil
	}
	suffix, ok := typeSuffix[w.typ]
	if !ok || w.cols%tileK != 0 {
		return fmt.Errorf("%w: a %s weight of %d columns", ErrUnsupported, w.typ, w.cols)
	}
	name, threads := "gemm_tc_"+suffix, 128
	if o.simt || w.typ == gguf.TypeF32 {
		name, threads = "gemm_simt_"+suffix, 256
	}
	splits, chunk := d.splitK(m, w.rows, w.cols, o.splits)
	if splits > 1 {
		if err := d.grow(partial, int64(splits)*int64(m)*int64(w.rows)*4); err != nil {
			return err
		}
	}
	acc := 0
	if accumulate {
		acc = 1
	}
	err := d.launch(name, [3]int{ceilDiv(w.rows, tileN), ceilDiv(m, tileM), splits}, [3]int{threads, 1, 1}, 0,
		ptrArg(out), ptrArg(x), ptrArg(w.buf.ptr), intArg(m), intArg(w.rows), intArg(w.cols), i64Arg(w.rowBytes),
		ptrArg(bias), intArg(acc), ptrArg(partial.ptr), intArg(chunk))
	if err != nil || splits == 1 {
		return err
	}
	mn := int64(m) * int64(w.rows)
	return d.launch("splitk_reduce", [3]int{int(min(ceilDiv64(mn, 256), 4096)), 1, 1}, [3]int{256, 1, 1}, 0,
		ptrArg(out), ptrArg(partial.ptr), intArg(splits), i64Arg(mn), intArg(w.rows), ptrArg(bias), intArg(acc))
}

func ceilDiv64(a, b int64) int64 { return (a + b - 1) / b }

// rmsNorm writes out row r (rows, dim) = x row idx[r] (r when idx is 0)
// RMS-normalised and scaled by w.
func (d *Device) rmsNorm(out, x, w, idx devPtr, rows, dim int, eps float32) error {
	if rows == 0 {
		return nil
	}
	return d.launch("rmsnorm", [3]int{rows, 1, 1}, [3]int{256, 1, 1}, 0,
		ptrArg(out), ptrArg(x), ptrArg(w), ptrArg(idx), intArg(rows), intArg(dim), f32Arg(eps))
}

// swiGLU writes out[i] = silu(gate[i])·up[i] for n elements.
func (d *Device) swiGLU(out, gate, up devPtr, n int64) error {
	if n == 0 {
		return nil
	}
	return d.launch("swiglu", [3]int{int(min(ceilDiv64(n, 256), 4096)), 1, 1}, [3]int{256, 1, 1}, 0,
		ptrArg(out), ptrArg(gate), ptrArg(up), i64Arg(n))
}

// embed writes row r of x (rows, e.cols) = row tokens[r] of e, decoded.
// The token ids must be below e.rows (the caller checks them).
func (d *Device) embed(x devPtr, e *matrix, tokens devPtr, rows int) error {
	suffix, ok := typeSuffix[e.typ]
	if !ok || e.cols%16 != 0 {
		return fmt.Errorf("%w: embedding a %s matrix of %d columns", ErrUnsupported, e.typ, e.cols)
	}
	if rows == 0 {
		return nil
	}
	return d.launch("embed_"+suffix, [3]int{rows, 1, 1}, [3]int{128, 1, 1}, 0,
		ptrArg(x), ptrArg(e.buf.ptr), i64Arg(e.rowBytes), ptrArg(tokens), intArg(rows), intArg(e.cols))
}

// softmax replaces each row of x (rows, n) with softmax(row/temperature).
func (d *Device) softmax(x devPtr, rows, n int, temperature float32) error {
	if rows == 0 {
		return nil
	}
	return d.launch("softmax", [3]int{rows, 1, 1}, [3]int{256, 1, 1}, 0,
		ptrArg(x), intArg(rows), intArg(n), f32Arg(1/temperature))
}

// ropeShape is what rope_store and attention need of a model.
type ropeShape struct {
	heads, kvHeads, headDim int
	neox                    bool
}

// ropeStore rotates rows [0, rows) of q (rows, heads·hd) and k (rows,
// kvHeads·hd), canvas positions pos0…, and stores k and v (rows,
// kvHeads·hd) into the layer's cache kc, vc (kvHeads, T, hd). cos and sin
// are the RoPE tables (positions, hd/2).
func (d *Device) ropeStore(q, k, v, kc, vc, cos, sin devPtr, rows, pos0, T int, s ropeShape) error {
	if rows == 0 {
		return nil
	}
	neox := 0
	if s.neox {
		neox = 1
	}
	return d.launch("rope_store", [3]int{rows, 1, 1}, [3]int{128, 1, 1}, 0,
		ptrArg(q), ptrArg(k), ptrArg(v), ptrArg(kc), ptrArg(vc), ptrArg(cos), ptrArg(sin),
		intArg(rows), intArg(pos0), intArg(s.heads), intArg(s.kvHeads), intArg(s.headDim), intArg(T), intArg(neox))
}

// The attention kernel's warps per block and widest head.
const (
	attnWarps   = 4
	maxHeadDim  = 256
	statsFields = 6 // row_stats writes six doubles a row
)

// attention writes out (rows, heads·hd) = softmax(q·Kᵀ·scale)·V per row
// and head over the T positions of the layer's cache kc, vc.
func (d *Device) attention(out, q, kc, vc devPtr, rows, T int, s ropeShape, scale float32) error {
	if s.headDim > maxHeadDim || s.headDim%2 != 0 || s.kvHeads == 0 || s.heads%s.kvHeads != 0 {
		return fmt.Errorf("%w: attention with %d heads of %d over %d kv heads", ErrUnsupported, s.heads, s.headDim, s.kvHeads)
	}
	if rows == 0 {
		return nil
	}
	return d.launch("attention", [3]int{ceilDiv(rows*s.heads, attnWarps), 1, 1}, [3]int{32 * attnWarps, 1, 1}, 0,
		ptrArg(out), ptrArg(q), ptrArg(kc), ptrArg(vc), intArg(rows), intArg(s.heads), intArg(s.kvHeads),
		intArg(s.headDim), intArg(T), f32Arg(scale))
}

// rowStats writes, for each row of logits (rows, vocab), statsFields
// doubles to out: best and second token, their logits, Σe^(v−max) and
// Σe^(v−max)(v−max), token mask excluded.
func (d *Device) rowStats(out, logits devPtr, rows, vocab int, mask int32) error {
	if rows == 0 {
		return nil
	}
	return d.launch("row_stats", [3]int{rows, 1, 1}, [3]int{256, 1, 1}, 0,
		ptrArg(out), ptrArg(logits), intArg(rows), intArg(vocab), intArg(int(mask)))
}
