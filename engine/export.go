package engine

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/dfill/dfill/engine/gguf"
	"github.com/dfill/dfill/engine/kernel"
	"github.com/dfill/dfill/engine/tokenizer"
)

// Metadata returns the GGUF keys that describe a model of hyperparameters
// cfg with vocabulary vocab, exactly as Load reads them back: the
// architecture keys, the tokenizer.ggml.* vocabulary and general.alignment.
// Writers of models other than WriteRandom (the trainer, its checkpoints)
// start from it and append keys of their own.
func Metadata(cfg Config, vocab tokenizer.Config) []gguf.KV {
	meta := append(cfg.metadata(), vocab.Metadata()...)
	return append(meta, gguf.KV{Key: "general.alignment", Value: gguf.Val(uint32(32))})
}

// TensorNames returns the names of the tensors a model of cfg holds, in the
// order WriteModel writes them: token_embd, output_norm, output (unless
// tied), then each block's attn_norm, attn_q, attn_k, attn_v (and their
// biases for dream, q/k norms for llada-moe and rnd1), attn_output,
// ffn_norm, and ffn_gate, ffn_up, ffn_down, or for routed experts
// ffn_gate_inp and the stacked ffn_{gate,up,down}_exps.
func TensorNames(cfg Config, tied bool) []string {
	ts := tensorsOf(cfg, tied)
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.name
	}
	return names
}

// TensorShape returns the GGUF dims ([cols, rows], [cols, rows, experts],
// or [n] for a vector) of the tensor called name in a model of cfg, or false
// for a name that is not one of TensorNames.
func TensorShape(cfg Config, name string) ([]uint64, bool) {
	for _, t := range tensorsOf(cfg, false) {
		if t.name == name {
			return t.dims, true
		}
	}
	return nil, false
}

// modelTensor is one tensor of a model's layout.
type modelTensor struct {
	name string
	dims []uint64 // innermost first
}

// tensorsOf is the one list of a model's tensors, names and shapes, in
// file order (TensorNames).
func tensorsOf(cfg Config, tied bool) []modelTensor {
	qDim, kvDim := cfg.Heads*cfg.HeadDim, cfg.KVHeads*cfg.HeadDim
	var ts []modelTensor
	add := func(name string, dims ...int) {
		d := make([]uint64, len(dims))
		for i, n := range dims {
			d[i] = uint64(n)
		}
		ts = append(ts, modelTensor{name, d})
	}
	add("token_embd.weight", cfg.Dim, cfg.Vocab)
	add("output_norm.weight", cfg.Dim)
	if !tied {
		add("output.weight", cfg.Dim, cfg.Vocab)
	}
	for l := 0; l < cfg.Layers; l++ {
		p := "blk." + strconv.Itoa(l) + "."
		add(p+"attn_norm.weight", cfg.Dim)
		add(p+"attn_q.weight", cfg.Dim, qDim)
		add(p+"attn_k.weight", cfg.Dim, kvDim)
		add(p+"attn_v.weight", cfg.Dim, kvDim)
		if cfg.HasQKVBias() {
			add(p+"attn_q.bias", qDim)
			add(p+"attn_k.bias", kvDim)
			add(p+"attn_v.bias", kvDim)
		}
		if cfg.HasQKNorm() {
			add(p+"attn_q_norm.weight", cfg.HeadDim)
			add(p+"attn_k_norm.weight", cfg.HeadDim)
		}
		add(p+"attn_output.weight", qDim, cfg.Dim)
		add(p+"ffn_norm.weight", cfg.Dim)
		if cfg.MoE() {
			add(p+"ffn_gate_inp.weight", cfg.Dim, cfg.Experts)
			add(p+"ffn_gate_exps.weight", cfg.Dim, cfg.ExpertFFN, cfg.Experts)
			add(p+"ffn_up_exps.weight", cfg.Dim, cfg.ExpertFFN, cfg.Experts)
			add(p+"ffn_down_exps.weight", cfg.ExpertFFN, cfg.Dim, cfg.Experts)
			continue
		}
		add(p+"ffn_gate.weight", cfg.Dim, cfg.FFN)
		add(p+"ffn_up.weight", cfg.Dim, cfg.FFN)
		add(p+"ffn_down.weight", cfg.FFN, cfg.Dim)
	}
	return ts
}

// WriteModel writes a GGUF model that Load runs: cfg's hyperparameters,
// the vocabulary vocab, and the float32 weights in tensors, keyed by GGUF
// tensor name (TensorNames; output.weight absent means tied), each
// row-major with GGUF's [cols, rows] shape. 2-D weights are stored as typ
// where their rows are whole blocks of it (else Q8_0 or F16, as
// WriteRandom does); vectors stay F32. extra keys are appended to the
// metadata.
func WriteModel(w io.Writer, cfg Config, vocab tokenizer.Config, tensors map[string][]float32, typ gguf.Type, extra ...gguf.KV) error {
	if !typ.Known() {
		return fmt.Errorf("%w: %s", gguf.ErrUnknownType, typ)
	}
	if len(vocab.Tokens) != cfg.Vocab {
		return fmt.Errorf("%w: vocabulary has %d tokens but the model %d", ErrBadOptions, len(vocab.Tokens), cfg.Vocab)
	}
	_, hasOut := tensors["output.weight"]
	names := TensorNames(cfg, !hasOut)
	if len(tensors) != len(names) {
		return fmt.Errorf("%w: %d tensors given, a model of this shape has %d", ErrBadOptions, len(tensors), len(names))
	}
	specs := make([]gguf.TensorSpec, len(names))
	for i, name := range names {
		dims, _ := TensorShape(cfg, name)
		data, ok := tensors[name]
		if !ok {
			return fmt.Errorf("%w: missing tensor %s", ErrBadOptions, name)
		}
		n := 1
		for _, d := range dims {
			n *= int(d)
		}
		if len(data) != n {
			return fmt.Errorf("%w: tensor %s has %d elements, shape %v needs %d", ErrBadOptions, name, len(data), dims, n)
		}
		t := gguf.TypeF32
		if len(dims) >= 2 && !strings.HasSuffix(name, "ffn_gate_inp.weight") {
			t = fitType(typ, int(dims[0]))
		}
		specs[i] = gguf.TensorSpec{Name: name, Type: t, Dims: dims}
	}
	meta := append(Metadata(cfg, vocab), extra...)
	return gguf.WriteStream(w, meta, specs, func(i int, dst []byte) error {
		s := specs[i]
		cols := int(s.Dims[0])
		size := mustRowSize(s.Type, cols)
		data := tensors[s.Name]
		for r := 0; r*cols < len(data); r++ {
			q, err := kernel.Quantize(s.Type, data[r*cols:(r+1)*cols])
			if err != nil {
				return fmt.Errorf("%s: %w", s.Name, err)
			}
			copy(dst[r*size:], q)
		}
		return nil
	})
}
