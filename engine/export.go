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
// biases for dream), attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down.
func TensorNames(cfg Config, tied bool) []string {
	names := []string{"token_embd.weight", "output_norm.weight"}
	if !tied {
		names = append(names, "output.weight")
	}
	for l := 0; l < cfg.Layers; l++ {
		p := "blk." + strconv.Itoa(l) + "."
		names = append(names, p+"attn_norm.weight", p+"attn_q.weight", p+"attn_k.weight", p+"attn_v.weight")
		if cfg.HasQKVBias() {
			names = append(names, p+"attn_q.bias", p+"attn_k.bias", p+"attn_v.bias")
		}
		names = append(names, p+"attn_output.weight", p+"ffn_norm.weight", p+"ffn_gate.weight", p+"ffn_up.weight", p+"ffn_down.weight")
	}
	return names
}

// TensorShape returns the GGUF dims ([cols, rows], or [n] for a vector) of
// the tensor called name in a model of cfg, or false for a name that is not
// one of TensorNames.
func TensorShape(cfg Config, name string) ([]uint64, bool) {
	qDim, kvDim := cfg.Heads*cfg.HeadDim, cfg.KVHeads*cfg.HeadDim
	mat := func(cols, rows int) ([]uint64, bool) { return []uint64{uint64(cols), uint64(rows)}, true }
	vec := func(n int) ([]uint64, bool) { return []uint64{uint64(n)}, true }
	switch name {
	case "token_embd.weight", "output.weight":
		return mat(cfg.Dim, cfg.Vocab)
	case "output_norm.weight":
		return vec(cfg.Dim)
	}
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return nil, false
	}
	num, leaf, ok := strings.Cut(rest, ".")
	if l, err := strconv.Atoi(num); !ok || err != nil || l < 0 || l >= cfg.Layers {
		return nil, false
	}
	switch leaf {
	case "attn_norm.weight", "ffn_norm.weight":
		return vec(cfg.Dim)
	case "attn_q.weight":
		return mat(cfg.Dim, qDim)
	case "attn_k.weight", "attn_v.weight":
		return mat(cfg.Dim, kvDim)
	case "attn_q.bias":
		return vec(qDim)
	case "attn_k.bias", "attn_v.bias":
		return vec(kvDim)
	case "attn_output.weight":
		return mat(qDim, cfg.Dim)
	case "ffn_gate.weight", "ffn_up.weight":
		return mat(cfg.Dim, cfg.FFN)
	case "ffn_down.weight":
		return mat(cfg.FFN, cfg.Dim)
	}
	return nil, false
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
		if len(dims) == 2 {
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
