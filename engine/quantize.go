package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/dfill/dfill/engine/gguf"
	"github.com/dfill/dfill/engine/kernel"
)

// ErrNoFallback is returned when a tensor's rows are not a whole number of
// blocks of the type its mix gives it and llama.cpp defines no other type
// for it (Q8_0 or Q4_0 of a width that is not a multiple of 32).
var ErrNoFallback = errors.New("engine: no tensor type fits the rows")

// Mix is one of llama.cpp's quantization mixes ("file types"), numbered as
// llama.h's enum llama_ftype numbers them: the number is what Quantize
// writes to general.file_type.
type Mix uint32

// The mixes dfill writes: every llama_ftype whose tensor types dfill has
// quantizers for and that needs no importance matrix.
const (
	MixF32    Mix = 0  // LLAMA_FTYPE_ALL_F32
	MixF16    Mix = 1  // LLAMA_FTYPE_MOSTLY_F16
	MixQ4_0   Mix = 2  // LLAMA_FTYPE_MOSTLY_Q4_0
	MixQ4_1   Mix = 3  // LLAMA_FTYPE_MOSTLY_Q4_1
	MixQ8_0   Mix = 7  // LLAMA_FTYPE_MOSTLY_Q8_0
	MixQ5_0   Mix = 8  // LLAMA_FTYPE_MOSTLY_Q5_0
	MixQ5_1   Mix = 9  // LLAMA_FTYPE_MOSTLY_Q5_1
	MixQ2_K   Mix = 10 // LLAMA_FTYPE_MOSTLY_Q2_K
	MixQ3_K_S Mix = 11 // LLAMA_FTYPE_MOSTLY_Q3_K_S
	MixQ3_K_M Mix = 12 // LLAMA_FTYPE_MOSTLY_Q3_K_M
	MixQ3_K_L Mix = 13 // LLAMA_FTYPE_MOSTLY_Q3_K_L
	MixQ4_K_S Mix = 14 // LLAMA_FTYPE_MOSTLY_Q4_K_S
	MixQ4_K_M Mix = 15 // LLAMA_FTYPE_MOSTLY_Q4_K_M
	MixQ5_K_S Mix = 16 // LLAMA_FTYPE_MOSTLY_Q5_K_S
	MixQ5_K_M Mix = 17 // LLAMA_FTYPE_MOSTLY_Q5_K_M
	MixQ6_K   Mix = 18 // LLAMA_FTYPE_MOSTLY_Q6_K
	MixIQ4_NL Mix = 25 // LLAMA_FTYPE_MOSTLY_IQ4_NL
	MixIQ4_XS Mix = 30 // LLAMA_FTYPE_MOSTLY_IQ4_XS
	MixBF16   Mix = 32 // LLAMA_FTYPE_MOSTLY_BF16
)

// mixes lists every Mix with its name and default tensor type, as
// llama.cpp's llama_ftype_get_default_type (src/llama-quant.cpp) maps them.
var mixes = []struct {
	mix  Mix
	name string
	def  gguf.Type
}{
	{MixF32, "F32", gguf.TypeF32},
	{MixF16, "F16", gguf.TypeF16},
	{MixBF16, "BF16", gguf.TypeBF16},
	{MixQ8_0, "Q8_0", gguf.TypeQ8_0},
	{MixQ4_0, "Q4_0", gguf.TypeQ4_0},
	{MixQ4_1, "Q4_1", gguf.TypeQ4_1},
	{MixQ5_0, "Q5_0", gguf.TypeQ5_0},
	{MixQ5_1, "Q5_1", gguf.TypeQ5_1},
	{MixQ2_K, "Q2_K", gguf.TypeQ2_K},
	{MixQ3_K_S, "Q3_K_S", gguf.TypeQ3_K},
	{MixQ3_K_M, "Q3_K_M", gguf.TypeQ3_K},
	{MixQ3_K_L, "Q3_K_L", gguf.TypeQ3_K},
	{MixQ4_K_S, "Q4_K_S", gguf.TypeQ4_K},
	{MixQ4_K_M, "Q4_K_M", gguf.TypeQ4_K},
	{MixQ5_K_S, "Q5_K_S", gguf.TypeQ5_K},
	{MixQ5_K_M, "Q5_K_M", gguf.TypeQ5_K},
	{MixQ6_K, "Q6_K", gguf.TypeQ6_K},
	{MixIQ4_NL, "IQ4_NL", gguf.TypeIQ4_NL},
	{MixIQ4_XS, "IQ4_XS", gguf.TypeIQ4_XS},
}

// lookup returns m's name and default type, and false for an unknown mix.
func (m Mix) lookup() (string, gguf.Type, bool) {
	for _, x := range mixes {
		if x.mix == m {
			return x.name, x.def, true
		}
	}
	return "mix(" + strconv.Itoa(int(m)) + ")", gguf.TypeF32, false
}

// String returns the mix's name as llama-quantize spells it ("Q4_K_M").
func (m Mix) String() string { name, _, _ := m.lookup(); return name }

// Type returns the mix's default tensor type: the type of every 2-D weight
// no rule of TypeFor changes (Q4_K for Q4_K_M).
func (m Mix) Type() gguf.Type { _, t, _ := m.lookup(); return t }

// check returns an error for a Mix that is none of the constants.
func (m Mix) check() error {
	if _, _, ok := m.lookup(); !ok {
		return fmt.Errorf("%w: unknown quantization mix %d", ErrBadOptions, uint32(m))
	}
	return nil
}

// ParseMix returns the mix named s, case-insensitive ("q4_k_m").
func ParseMix(s string) (Mix, error) {
	for _, x := range mixes {
		if strings.EqualFold(x.name, s) {
			return x.mix, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown quantization mix %q (want one of %s)", ErrBadOptions, s, strings.Join(MixNames(), ", "))
}

// MixNames lists the mixes' names, floats first, then by size.
func MixNames() []string {
	names := make([]string, len(mixes))
	for i, x := range mixes {
		names[i] = x.name
	}
	return names
}

// MixModel is what TypeFor needs to know of the model a tensor belongs to.
type MixModel struct {
	// Arch is general.architecture: llama.cpp treats "falcon" apart, and
	// "llama" with 80 layers and grouped-query attention as its 70B.
	Arch string
	// Layers is block_count.
	Layers int
	// Heads and KVHeads are the attention's head counts; their ratio (GQA)
	// raises attn_v in some mixes.
	Heads, KVHeads int
	// Tied is set when the model has no output.weight: token_embd doubles
	// as the output and is quantized as one.
	Tied bool
	// Experts is expert_count (0 for a dense model): llama.cpp gives a
	// model of exactly 8 experts (Mixtral's) more bits in attention.
	Experts int
}

// TypeFor returns the type llama.cpp's llama-quantize gives the tensor
// name of shape dims (innermost first) and type from in a model m
// quantized to mix: llama_tensor_get_type, llama_tensor_get_type_impl and
// tensor_type_fallback of llama.cpp's src/llama-quant.cpp (ggml-org,
// commit 007dbbf3), without an importance matrix, tensor overrides or
// --pure. (Older llama.cpp fell back from Q2_K and Q3_K to IQ4_NL; that
// commit falls back to Q4_0.) Tensors llama.cpp does not quantize (1-D ones: norms, biases)
// keep from. The layer of a per-layer tensor is read from its name
// ("blk.N."); for a dense model that is llama.cpp's running count of
// attn_v and ffn_down tensors (and what llama.cpp's layer_info reads from
// the name for a model with experts). The rules for models of exactly 8
// experts are followed too (MixModel.Experts).
func TypeFor(mix Mix, name string, dims []uint64, from gguf.Type, m MixModel) (gguf.Type, error) {
	if err := mix.check(); err != nil {
		return 0, err
	}
	if !quantizable(name, dims) {
		return from, nil
	}
	def := mix.Type()
	if def.BlockSize() == 1 { // F32, F16, BF16: ggml_is_quantized is false, no rule applies
		return def, nil
	}
	return fallback(name, mixRule(mix, name, int(dims[0]), m), int(dims[0]))
}

// quantizable reports whether llama.cpp quantizes the tensor name of shape
// dims at all: tensor_allows_quantization in src/llama-quant.cpp (the
// names a dense dream or llada model can hold, and the generic ones).
func quantizable(name string, dims []uint64) bool {
	n := len(dims) // ggml_n_dims: trailing dimensions of 1 do not count
	for n > 1 && dims[n-1] == 1 {
		n--
	}
	if n < 2 || !strings.HasSuffix(name, "weight") {
		return false
	}
	for _, not := range []string{"_norm.weight", "ffn_gate_inp.weight", "altup", "laurel", "per_layer_model_proj",
		"ssm_conv1d", "attn_rel_b.weight"} {
		if strings.Contains(name, not) {
			return false
		}
	}
	return name != "position_embd.weight" && name != "token_types.weight"
}

// category is llama.cpp's tensor_category: what a tensor does, as
// tensor_get_category reads it from the name.
type category int

const (
	catOther category = iota
	catTokenEmbd
	catOutput
	catAttnQ
	catAttnK
	catAttnV // attn_v, attn_qkv and attn_kv_b: category_is_attn_v
	catAttnQKV
	catAttnOutput
	catFFNDown
)

func categoryOf(name string) category {
	switch {
	case name == "output.weight":
		return catOutput
	case name == "token_embd.weight" || name == "per_layer_token_embd.weight":
		return catTokenEmbd
	case strings.Contains(name, "attn_qkv.weight"):
		return catAttnQKV
	case strings.Contains(name, "attn_kv_b.weight"), strings.Contains(name, "attn_v.weight"):
		return catAttnV
	case strings.Contains(name, "attn_k.weight"):
		return catAttnK
	case strings.Contains(name, "attn_q.weight"):
		return catAttnQ
	case strings.Contains(name, "attn_output.weight"):
		return catAttnOutput
	case strings.Contains(name, "ffn_down"):
		return catFFNDown
	}
	return catOther // ffn_up and ffn_gate change only in IQ3 mixes
}

// layerOf returns N of a name "blk.N.…", or 0.
func layerOf(name string) int {
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(rest[:max(strings.IndexByte(rest, '.'), 0)])
	if err != nil {
		return 0
	}
	return n
}

// useMoreBits is llama.cpp's use_more_bits: the first and last eighth of
// the layers and every third one between get more bits in _M mixes.
func useMoreBits(layer, layers int) bool {
	return layer < layers/8 || layer >= 7*layers/8 || (layer-layers/8)%3 == 2
}

// mixRule is llama_tensor_get_type_impl of src/llama-quant.cpp for the
// mixes dfill writes, with has_imatrix false: the type of a quantizable
// tensor with rows of cols elements, before the fallback.
func mixRule(mix Mix, name string, cols int, m MixModel) gguf.Type {
	t := mix.Type()
	cat := categoryOf(name)
	falcon := m.Arch == "falcon"
	gqa := 1
	if m.KVHeads > 0 {
		gqa = m.Heads / m.KVHeads
	}
	i, n := layerOf(name), m.Layers
	switch {
	case cat == catOutput || (m.Tied && cat == catTokenEmbd):
		switch {
		case falcon || cols%t.BlockSize() != 0:
			return gguf.TypeQ8_0
		case t != gguf.TypeQ8_0:
			return gguf.TypeQ6_K
		}
	case cat == catAttnV:
		switch {
		case mix == MixQ2_K:
			t = gguf.TypeQ3_K
			if gqa >= 4 {
				t = gguf.TypeQ4_K
			}
		case mix == MixQ3_K_M:
			t = gguf.TypeQ4_K
			if i < 2 {
				t = gguf.TypeQ5_K
			}
		case mix == MixQ3_K_L:
			t = gguf.TypeQ5_K
		case (mix == MixIQ4_NL || mix == MixIQ4_XS) && gqa >= 4:
			t = gguf.TypeQ5_K
		case (mix == MixQ4_K_M || mix == MixQ5_K_M) && useMoreBits(i, n):
			t = gguf.TypeQ6_K
		case mix == MixQ4_K_S && i < 4:
			t = gguf.TypeQ5_K
		}
		// LLM_TYPE_70B: eight heads share each attn_v, so more bits cost little.
		if m.Arch == "llama" && n == 80 && m.Heads != m.KVHeads && (t == gguf.TypeQ3_K || t == gguf.TypeQ4_K) {
			t = gguf.TypeQ5_K
		}
		if m.Experts == 8 {
			t = gguf.TypeQ8_0
		}
	case cat == catAttnK:
		if m.Experts == 8 {
			t = gguf.TypeQ8_0
		}
	case cat == catFFNDown:
		switch {
		case mix == MixQ2_K:
			t = gguf.TypeQ3_K
		case mix == MixQ3_K_M:
			switch {
			case i < n/16:
				t = gguf.TypeQ5_K
			case !falcon || useMoreBits(i, n):
				t = gguf.TypeQ4_K
			}
		case mix == MixQ3_K_L:
			t = gguf.TypeQ5_K
			if falcon {
				t = gguf.TypeQ4_K
			}
		case mix == MixQ4_K_M:
			switch {
			case falcon && i < n/16:
				t = gguf.TypeQ6_K
			case falcon && useMoreBits(i, n):
				t = gguf.TypeQ5_K
			case !falcon && useMoreBits(i, n):
				t = gguf.TypeQ6_K
			}
		case i < n/8 && (mix == MixIQ4_NL || mix == MixIQ4_XS):
			t = gguf.TypeQ5_K
		case mix == MixQ5_K_M && useMoreBits(i, n):
			t = gguf.TypeQ6_K
		case mix == MixQ4_K_S && !falcon && i < n/8:
			t = gguf.TypeQ5_K
		}
	case cat == catAttnOutput:
		switch {
		case falcon && mix == MixQ3_K_L:
			t = gguf.TypeQ4_K
		case falcon:
		case m.Experts == 8:
			switch mix {
			case MixQ2_K, MixQ3_K_S, MixQ3_K_M, MixIQ4_NL, MixQ4_K_S, MixQ4_K_M, MixIQ4_XS:
				t = gguf.TypeQ5_K
			}
		case mix == MixQ2_K:
			t = gguf.TypeQ3_K
		case mix == MixQ3_K_M:
			t = gguf.TypeQ4_K
		case mix == MixQ3_K_L:
			t = gguf.TypeQ5_K
		}
	case cat == catAttnQKV:
		switch mix {
		case MixQ3_K_M, MixQ3_K_L:
			t = gguf.TypeQ4_K
		case MixQ4_K_M:
			t = gguf.TypeQ5_K
		case MixQ5_K_M:
			t = gguf.TypeQ6_K
		}
	}
	return t
}

// fallback is llama.cpp's tensor_type_fallback: t when rows of cols
// elements are whole blocks of it, else the type llama.cpp falls back to
// (a 32-element type of about as many bits), else F16.
func fallback(name string, t gguf.Type, cols int) (gguf.Type, error) {
	if cols%t.BlockSize() == 0 {
		return t, nil
	}
	var r gguf.Type
	switch t {
	case gguf.TypeIQ4_XS:
		r = gguf.TypeIQ4_NL
	case gguf.TypeQ2_K, gguf.TypeQ3_K:
		r = gguf.TypeQ4_0
	case gguf.TypeQ4_K:
		r = gguf.TypeQ5_0
	case gguf.TypeQ5_K:
		r = gguf.TypeQ5_1
	case gguf.TypeQ6_K:
		r = gguf.TypeQ8_0
	default:
		return 0, fmt.Errorf("%w: tensor %s: rows of %d are not whole %s blocks of %d, and llama.cpp has no fallback for %s",
			ErrNoFallback, name, cols, t, t.BlockSize(), t)
	}
	if cols%r.BlockSize() != 0 {
		return gguf.TypeF16, nil
	}
	return r, nil
}

// QuantizedTensor is one tensor Quantize wrote: its name, its type before
// and after, and its bytes after.
type QuantizedTensor struct {
	Name     string
	From, To gguf.Type
	Bytes    uint64
}

// Quantize writes the model in to w quantized to mix, with the tensor
// types TypeFor chooses, and returns what it wrote, tensor by tensor. The
// metadata is copied, with general.file_type set to the mix's llama_ftype
// and general.quantization_version to 2 (GGML_QNT_VERSION), as
// llama-quantize does. Tensors are converted one at a time, row by row
// (dequantized to float32, quantized to the new type), so memory holds one
// output tensor and a few rows besides in's mapping; a tensor already of
// its new type is copied unchanged. ctx is checked between tensors.
func Quantize(ctx context.Context, in *gguf.File, w io.Writer, mix Mix) ([]QuantizedTensor, error) {
	q, err := newQuantizer(in, mix)
	if err != nil {
		return nil, err
	}
	if err := q.write(ctx, w); err != nil {
		return nil, err
	}
	return q.done, nil
}

// quantizer is one Quantize: the input, the plan, and what it has done.
type quantizer struct {
	in    *gguf.File
	meta  []gguf.KV
	specs []gguf.TensorSpec
	done  []QuantizedTensor

	// The largest buffers of a write, for tests of its memory: the output
	// buffer WriteStream handed fill, and float32 elements of a row.
	maxFill, maxRow int
}

// newQuantizer plans the quantization of in to mix: the metadata and each
// tensor's new type.
func newQuantizer(in *gguf.File, mix Mix) (*quantizer, error) {
	if err := mix.check(); err != nil {
		return nil, err
	}
	cfg, err := ConfigFromGGUF(in, "quantize input")
	if err != nil {
		return nil, err
	}
	_, hasOutput := in.Tensor("output.weight")
	m := MixModel{Arch: string(cfg.Arch), Layers: cfg.Layers, Heads: cfg.Heads, KVHeads: cfg.KVHeads, Tied: !hasOutput, Experts: cfg.Experts}
	q := &quantizer{in: in, specs: make([]gguf.TensorSpec, len(in.Tensors))}
	for i, t := range in.Tensors {
		if !t.Type.Known() {
			return nil, fmt.Errorf("%w: tensor %s: %w: %s", ErrBadModel, t.Name, gguf.ErrUnknownType, t.Type)
		}
		to, err := TypeFor(mix, t.Name, t.Dims, t.Type, m)
		if err != nil {
			return nil, err
		}
		q.specs[i] = gguf.TensorSpec{Name: t.Name, Type: to, Dims: t.Dims}
	}
	q.meta = quantizedMetadata(in.Metadata, mix)
	return q, nil
}

// quantizedMetadata returns meta with general.file_type and
// general.quantization_version set for mix, and llama.cpp's split keys
// removed (the output is one file), as llama_model_quantize_impl does.
func quantizedMetadata(meta []gguf.KV, mix Mix) []gguf.KV {
	set := map[string]gguf.Value{
		"general.file_type":            gguf.Val(uint32(mix)),
		"general.quantization_version": gguf.Val(uint32(2)),
	}
	out := make([]gguf.KV, 0, len(meta)+len(set))
	for _, kv := range meta {
		switch kv.Key {
		case "split.no", "split.count", "split.tensors.count":
			continue
		}
		if v, ok := set[kv.Key]; ok {
			kv.Value = v
			delete(set, kv.Key)
		}
		out = append(out, kv)
	}
	for _, k := range []string{"general.quantization_version", "general.file_type"} {
		if v, ok := set[k]; ok {
			out = append(out, gguf.KV{Key: k, Value: v})
		}
	}
	return out
}

// write streams the quantized model to w.
func (q *quantizer) write(ctx context.Context, w io.Writer) error {
	q.done = q.done[:0]
	return gguf.WriteStream(w, q.meta, q.specs, func(i int, dst []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		q.maxFill = max(q.maxFill, len(dst))
		src, to := &q.in.Tensors[i], q.specs[i].Type
		if src.Type == to {
			copy(dst, src.Data)
		} else if err := q.convert(src, to, dst); err != nil {
			return err
		}
		q.done = append(q.done, QuantizedTensor{Name: src.Name, From: src.Type, To: to, Bytes: uint64(len(dst))})
		return nil
	})
}

// convert converts the rows of src to type to into dst, the rows split
// between the CPUs, each worker holding one row of float32.
func (q *quantizer) convert(src *gguf.TensorInfo, to gguf.Type, dst []byte) error {
	cols := int(src.Dims[0])
	inRow, err := src.Type.RowSize(cols)
	if err != nil {
		return err
	}
	outRow, err := to.RowSize(cols)
	if err != nil {
		return err
	}
	rows := len(dst) / outRow
	if len(src.Data) != rows*inRow {
		return fmt.Errorf("%w: tensor %s: %d bytes, want %d", ErrBadModel, src.Name, len(src.Data), rows*inRow)
	}
	q.maxRow = max(q.maxRow, cols)
	return onCPUs(rows, func(next func() (int, bool)) error {
		row := make([]float32, cols)
		for r, ok := next(); ok; r, ok = next() {
			if err := kernel.Dequantize(src.Type, src.Data[r*inRow:(r+1)*inRow], row); err != nil {
				return err
			}
			b, err := kernel.Quantize(to, row)
			if err != nil {
				return err
			}
			copy(dst[r*outRow:], b)
		}
		return nil
	})
}

// onCPUs runs work on min(GOMAXPROCS, n) goroutines that share the items
// [0, n) round-robin: each calls next until it says there are no more, so
// each can hold scratch of its own. The errors are joined.
func onCPUs(n int, work func(next func() (int, bool)) error) error {
	workers := min(runtime.GOMAXPROCS(0), n)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for k := range workers {
		wg.Go(func() {
			i := k - workers
			errs[k] = work(func() (int, bool) {
				i += workers
				return i, i < n
			})
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
