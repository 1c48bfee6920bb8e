package convert

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/dfill/dfill/engine/gguf"
	"github.com/dfill/dfill/engine/kernel"
)

// Options tune Convert.
type Options struct {
	// OutType is the type of the 2-D weights: "f32", "f16", "bf16" or
	// "q8_0"; "" or "auto" picks as convert_hf_to_gguf.py's --outtype auto
	// does: bf16 for a BF16 checkpoint, else f16. Vectors (norms, biases)
	// stay F32, and a matrix whose rows are not whole Q8_0 blocks is
	// written F16.
	OutType string
	// Name is general.name; "" names the model after its folder.
	Name string
}

// Result says what Convert wrote.
type Result struct {
	Arch    string    // general.architecture
	Type    gguf.Type // the type of the 2-D weights
	Tensors int
	Params  uint64
}

// item is one GGUF tensor and where its values come from.
type item struct {
	name string
	// srcs hold its rows: one tensor, or the experts' matrices, whose
	// rows are stacked in order (expert 0's first).
	srcs []*tensor
	// dims are its GGUF dims, innermost first: [cols], [cols, rows], or
	// [cols, rows per expert, experts].
	dims  []uint64
	heads int  // >0: rows are un-permuted from HF's RoPE order in this many heads
	f32   bool // a matrix kept F32 whatever the output type (the router, as llama.cpp keeps it)
}

// cols returns the length of one row of it.
func (it item) cols() int { return int(it.dims[0]) }

// rows returns how many rows it has in all (1 for a vector).
func (it item) rows() int {
	n := 1
	for _, d := range it.dims[1:] {
		n *= int(d)
	}
	return n
}

// ParseType returns the GGUF type an --outtype value names, or auto for ""
// and "auto" (the type is then decided by the checkpoint).
func ParseType(s string) (t gguf.Type, auto bool, err error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return 0, true, nil
	case "f32":
		return gguf.TypeF32, false, nil
	case "f16":
		return gguf.TypeF16, false, nil
	case "bf16":
		return gguf.TypeBF16, false, nil
	case "q8_0":
		return gguf.TypeQ8_0, false, nil
	}
	return 0, false, fmt.Errorf("%w: output type %q (f32, f16, bf16, q8_0 or auto)", ErrUnsupported, s)
}

// Convert writes the Hugging Face checkpoint in dir to w as a GGUF file.
// ctx is checked before each tensor.
func Convert(ctx context.Context, dir string, w io.Writer, opt Options) (Result, error) {
	outType, auto, err := ParseType(opt.OutType)
	if err != nil {
		return Result{}, err
	}
	cfgPath := filepath.Join(dir, "config.json")
	hp, err := readJSON(cfgPath, false)
	if err != nil {
		return Result{}, err
	}
	fam, err := familyOf(hp, cfgPath)
	if err != nil {
		return Result{}, err
	}
	s, err := fam.shapeOf(hp, cfgPath)
	if err != nil {
		return Result{}, err
	}
	ck, err := openCheckpoint(dir)
	if err != nil {
		return Result{}, err
	}
	defer ck.Close()
	items, vocabSize, err := fam.plan(ck, s)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", dir, err)
	}
	if auto {
		outType = gguf.TypeF16
		if items[0].srcs[0].DType == "BF16" {
			outType = gguf.TypeBF16
		}
	}
	voc, err := vocab(dir, vocabSize, hp)
	if err != nil {
		return Result{}, err
	}
	voc.Mask = fam.maskToken(voc.Mask, hp, vocabSize)
	if voc.Mask < 0 {
		return Result{}, fmt.Errorf("%w: %s: no mask token (mask_token in tokenizer_config.json or mask_token_id in config.json)", ErrBadCheckpoint, dir)
	}
	if fam == &llada {
		voc.AddBOS = true // as convert_hf_to_gguf.py's LLaDAModel writes it
	}
	name := opt.Name
	if name == "" {
		name = filepath.Base(filepath.Clean(dir))
	}
	specs := make([]gguf.TensorSpec, len(items))
	res := Result{Arch: fam.arch, Type: outType, Tensors: len(items)}
	for i, it := range items {
		t := gguf.TypeF32
		if len(it.dims) > 1 && !it.f32 {
			t = outType
			if it.cols()%t.BlockSize() != 0 {
				t = gguf.TypeF16
			}
		}
		specs[i] = gguf.TensorSpec{Name: it.name, Type: t, Dims: it.dims}
		res.Params += uint64(it.rows() * it.cols())
	}
	meta := append(fam.metadata(s, vocabSize, name, outType), voc.Metadata()...)
	var buf []byte
	var vals []float32
	err = gguf.WriteStream(w, meta, specs, func(i int, dst []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		buf, vals, err = fill(items[i], specs[i].Type, dst, buf, vals)
		return err
	})
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// fill writes the values of it, as type t, into dst; buf and vals are
// scratch reused across tensors.
func fill(it item, t gguf.Type, dst, buf []byte, vals []float32) ([]byte, []float32, error) {
	cols := it.cols()
	rowSize, err := t.RowSize(cols)
	if err != nil {
		return buf, vals, err
	}
	// Each source holds the same number of rows (checked by plan).
	srcRows := it.rows() / len(it.srcs)
	if it.heads == 0 && sameType(it.srcs, t) {
		// The same type: the bytes as they are, source after source.
		for i, src := range it.srcs {
			part := dst[i*srcRows*rowSize : (i+1)*srcRows*rowSize]
			if _, err := src.f.ReadAt(part, src.off); err != nil {
				return buf, vals, fmt.Errorf("%w: %s: tensor %s: %v", ErrBadCheckpoint, src.File, src.Name, err)
			}
		}
		return buf, vals, nil
	}
	// Rows are read a batch at a time (one at a time when un-permuted), so
	// the scratch stays near a megabyte whatever the tensor's size.
	batch := max(1, (1<<18)/cols)
	if it.heads > 0 {
		batch = 1
	}
	if cap(vals) < batch*cols {
		vals = make([]float32, batch*cols)
	}
	for i, src := range it.srcs {
		base := i * srcRows
		for lo := 0; lo < srcRows; lo += batch {
			hi := min(lo+batch, srcRows)
			from := lo
			if it.heads > 0 {
				from = unpermuteRow(lo, srcRows/it.heads)
			}
			if buf, err = src.readRows(from, from+hi-lo, cols, buf, vals); err != nil {
				return buf, vals, err
			}
			q, err := kernel.Quantize(t, vals[:(hi-lo)*cols])
			if err != nil {
				return buf, vals, fmt.Errorf("%s: %w", it.name, err)
			}
			copy(dst[(base+lo)*rowSize:], q)
		}
	}
	return buf, vals, nil
}

// sameType reports whether every one of srcs holds type t already.
func sameType(srcs []*tensor, t gguf.Type) bool {
	for _, src := range srcs {
		if src.DType != t.String() {
			return false
		}
	}
	return true
}

// unpermuteRow returns the HF row that becomes row r of a q or k
// projection whose heads are headDim rows each: HF orders a head's rows as
// RoPE's two halves (rotate_half), ggml as adjacent pairs, so GGUF row
// 2i+j of a head is HF row j·headDim/2+i — the inverse of
// convert_hf_to_gguf.py's permute, which LLaDAModel applies.
func unpermuteRow(r, headDim int) int {
	h, k := r/headDim, r%headDim
	i, j := k/2, k%2
	return h*headDim + j*headDim/2 + i
}

// plan lists the GGUF tensors of a checkpoint of family f and shape s, in
// the order they are written, checking every checkpoint tensor's shape and
// that none is left unmapped. It returns the vocabulary size, the rows of
// the embedding.
func (f *family) plan(ck *checkpoint, s shape) ([]item, int, error) {
	embd, err := ck.tensor(f.embd)
	if err != nil {
		return nil, 0, err
	}
	if len(embd.Shape) != 2 || embd.Shape[1] != s.dim {
		return nil, 0, fmt.Errorf("%w: %s: tensor %s has shape %v, want [vocab %d]", ErrBadCheckpoint, embd.File, embd.Name, embd.Shape, s.dim)
	}
	vocab := embd.Shape[0]
	qDim, kvDim := s.heads*s.headDim, s.kvHeads*s.headDim
	used := map[string]bool{}
	var items []item
	// source returns the checkpoint tensor hfName, checked to have the
	// shape want (PyTorch's order, outermost first).
	source := func(hfName string, want []int) (*tensor, error) {
		t, err := ck.tensor(hfName)
		if err != nil {
			return nil, err
		}
		if !equal(t.Shape, want) {
			return nil, fmt.Errorf("%w: %s: tensor %s has shape %v, the config needs %v", ErrBadCheckpoint, t.File, t.Name, t.Shape, want)
		}
		used[hfName] = true
		return t, nil
	}
	add := func(hfName, name string, want []int, heads int) error {
		t, err := source(hfName, want)
		if err != nil {
			return err
		}
		items = append(items, item{name: name, srcs: []*tensor{t}, dims: ggufDims(want), heads: heads})
		return nil
	}
	if err := add(f.embd, "token_embd.weight", []int{vocab, s.dim}, 0); err != nil {
		return nil, 0, err
	}
	if err := add(f.norm, "output_norm.weight", []int{s.dim}, 0); err != nil {
		return nil, 0, err
	}
	if _, ok := ck.tensors[f.output]; ok {
		if err := add(f.output, "output.weight", []int{vocab, s.dim}, 0); err != nil {
			return nil, 0, err
		}
	}
	shapes := map[string][]int{
		"attn_norm.weight": {s.dim}, "ffn_norm.weight": {s.dim},
		"attn_q.weight": {qDim, s.dim}, "attn_k.weight": {kvDim, s.dim}, "attn_v.weight": {kvDim, s.dim},
		"attn_q.bias": {qDim}, "attn_k.bias": {kvDim}, "attn_v.bias": {kvDim},
		"attn_q_norm.weight": {s.headDim}, "attn_k_norm.weight": {s.headDim},
		"attn_output.weight": {s.dim, qDim},
		"ffn_gate.weight":    {s.ffn, s.dim}, "ffn_up.weight": {s.ffn, s.dim}, "ffn_down.weight": {s.dim, s.ffn},
	}
	for l := 0; l < s.layers; l++ {
		prefix := fmt.Sprintf(f.blockPrefix, l)
		for _, leaf := range f.leaves {
			heads := 0
			if f.undoPermute {
				switch leaf[1] {
				case "attn_q.weight":
					heads = s.heads
				case "attn_k.weight":
					heads = s.kvHeads
				}
			}
			if err := add(prefix+leaf[0], fmt.Sprintf("blk.%d.%s", l, leaf[1]), shapes[leaf[1]], heads); err != nil {
				return nil, 0, err
			}
		}
		if f.moe == nil {
			continue
		}
		router, err := source(prefix+f.moe.router, []int{s.experts, s.dim})
		if err != nil {
			return nil, 0, err
		}
		items = append(items, item{name: fmt.Sprintf("blk.%d.ffn_gate_inp.weight", l), srcs: []*tensor{router},
			dims: ggufDims([]int{s.experts, s.dim}), f32: true})
		for _, w := range []struct {
			leaf, name string
			shape      []int // one expert's
		}{
			{"gate_proj.weight", "ffn_gate_exps.weight", []int{s.expFFN, s.dim}},
			{"up_proj.weight", "ffn_up_exps.weight", []int{s.expFFN, s.dim}},
			{"down_proj.weight", "ffn_down_exps.weight", []int{s.dim, s.expFFN}},
		} {
			srcs := make([]*tensor, s.experts)
			for e := range srcs {
				if srcs[e], err = source(prefix+fmt.Sprintf(f.moe.expert, e)+w.leaf, w.shape); err != nil {
					return nil, 0, err
				}
			}
			items = append(items, item{name: fmt.Sprintf("blk.%d.%s", l, w.name), srcs: srcs,
				dims: ggufDims(append([]int{s.experts}, w.shape...))})
		}
	}
	for name, t := range ck.tensors {
		if !used[name] && !strings.HasSuffix(name, "rotary_emb.inv_freq") {
			return nil, 0, fmt.Errorf("%w: %s: tensor %s has no GGUF name in a %s model of %d layers", ErrBadCheckpoint, t.File, name, f.arch, s.layers)
		}
	}
	return items, vocab, nil
}

// ggufDims returns a PyTorch shape (outermost first) as GGUF dims
// (innermost first).
func ggufDims(shape []int) []uint64 {
	dims := make([]uint64, len(shape))
	for i, d := range shape {
		dims[len(shape)-1-i] = uint64(d)
	}
	return dims
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// fileType is general.file_type (llama.cpp's LlamaFileType) for a file
// whose 2-D weights are t.
func fileType(t gguf.Type) uint32 {
	switch t {
	case gguf.TypeF16:
		return 1
	case gguf.TypeQ8_0:
		return 7
	case gguf.TypeBF16:
		return 32
	}
	return 0 // ALL_F32
}

// metadata returns the general.* and <arch>.* keys, as
// convert_hf_to_gguf.py writes them for f.
func (f *family) metadata(s shape, vocab int, name string, t gguf.Type) []gguf.KV {
	a := f.arch
	kv := []gguf.KV{
		{Key: "general.architecture", Value: gguf.Val(a)},
		{Key: "general.type", Value: gguf.Val("model")},
		{Key: "general.name", Value: gguf.Val(name)},
		{Key: a + ".block_count", Value: gguf.Val(uint32(s.layers))},
		{Key: a + ".context_length", Value: gguf.Val(uint32(s.context))},
		{Key: a + ".embedding_length", Value: gguf.Val(uint32(s.dim))},
		{Key: a + ".attention.head_count", Value: gguf.Val(uint32(s.heads))},
		{Key: a + ".attention.head_count_kv", Value: gguf.Val(uint32(s.kvHeads))},
		{Key: a + ".rope.freq_base", Value: gguf.Val(float32(s.ropeBase))},
		{Key: a + ".attention.layer_norm_rms_epsilon", Value: gguf.Val(float32(s.eps))},
		{Key: a + ".attention.causal", Value: gguf.Val(false)},
	}
	if s.ffn > 0 {
		kv = append(kv, gguf.KV{Key: a + ".feed_forward_length", Value: gguf.Val(uint32(s.ffn))})
	}
	if f.moe != nil {
		kv = append(kv, gguf.KV{Key: a + ".expert_count", Value: gguf.Val(uint32(s.experts))},
			gguf.KV{Key: a + ".expert_used_count", Value: gguf.Val(uint32(s.used))},
			gguf.KV{Key: a + ".expert_feed_forward_length", Value: gguf.Val(uint32(s.expFFN))})
	}
	if s.explicitHeadDim {
		kv = append(kv, gguf.KV{Key: a + ".attention.key_length", Value: gguf.Val(uint32(s.headDim))},
			gguf.KV{Key: a + ".attention.value_length", Value: gguf.Val(uint32(s.headDim))})
	}
	if f == &llada {
		kv = append(kv, gguf.KV{Key: a + ".vocab_size", Value: gguf.Val(uint32(vocab))},
			gguf.KV{Key: a + ".rope.dimension_count", Value: gguf.Val(uint32(s.headDim))})
	}
	if f.shiftLogits != nil {
		kv = append(kv, gguf.KV{Key: "diffusion.shift_logits", Value: gguf.Val(*f.shiftLogits)})
	}
	return append(kv,
		gguf.KV{Key: "general.file_type", Value: gguf.Val(fileType(t))},
		gguf.KV{Key: "general.quantization_version", Value: gguf.Val(uint32(2))})
}
