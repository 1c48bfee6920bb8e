package convert

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
)

// hparams is a JSON configuration file (config.json,
// generation_config.json) as read.
type hparams map[string]any

// readJSON reads the JSON object at path; a missing file is an empty one
// when optional.
func readJSON(path string, optional bool) (hparams, error) {
	b, err := os.ReadFile(path)
	if optional && os.IsNotExist(err) {
		return hparams{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	var h hparams
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadCheckpoint, path, err)
	}
	return h, nil
}

// int returns the integer at key, the first of a list of integers (an
// eos_token_id may be a list), or false.
func (h hparams) int(key string) (int, bool) {
	v := h[key]
	if l, ok := v.([]any); ok && len(l) > 0 {
		v = l[0]
	}
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<31 {
		return 0, false
	}
	return int(f), true
}

// float returns the number at key, or false.
func (h hparams) float(key string) (float64, bool) {
	f, ok := h[key].(float64)
	return f, ok
}

// family is how one model family's checkpoint maps to GGUF.
type family struct {
	arch string // general.architecture
	// HF names of the embedding, the final norm and the output projection.
	embd, norm, output string
	// blockPrefix is the HF name prefix of block %d.
	blockPrefix string
	// leaves pairs a block tensor's HF name (after the prefix) with its
	// GGUF name (after "blk.N."), in the order they are written.
	leaves [][2]string
	// keys name the config.json fields of the hyperparameters, in the
	// order convert_hf_to_gguf.py tries them.
	layers, dim, ffn, heads, kvHeads, context []string
	// undoPermute un-permutes q and k from HF's half-split RoPE order to
	// ggml's adjacent pairs (LLaDA).
	undoPermute bool
	// shiftLogits is written as diffusion.shift_logits when set.
	shiftLogits *bool
}

var (
	no = false

	dream = family{
		arch: "dream", embd: "model.embed_tokens.weight", norm: "model.norm.weight", output: "lm_head.weight",
		blockPrefix: "model.layers.%d.",
		leaves: [][2]string{
			{"input_layernorm.weight", "attn_norm.weight"},
			{"self_attn.q_proj.weight", "attn_q.weight"},
			{"self_attn.q_proj.bias", "attn_q.bias"},
			{"self_attn.k_proj.weight", "attn_k.weight"},
			{"self_attn.k_proj.bias", "attn_k.bias"},
			{"self_attn.v_proj.weight", "attn_v.weight"},
			{"self_attn.v_proj.bias", "attn_v.bias"},
			{"self_attn.o_proj.weight", "attn_output.weight"},
			{"post_attention_layernorm.weight", "ffn_norm.weight"},
			{"mlp.gate_proj.weight", "ffn_gate.weight"},
			{"mlp.up_proj.weight", "ffn_up.weight"},
			{"mlp.down_proj.weight", "ffn_down.weight"},
		},
		layers: []string{"num_hidden_layers"}, dim: []string{"hidden_size"}, ffn: []string{"intermediate_size"},
		heads: []string{"num_attention_heads"}, kvHeads: []string{"num_key_value_heads"},
		context: []string{"max_position_embeddings"},
	}

	llada = family{
		arch: "llada", embd: "model.transformer.wte.weight", norm: "model.transformer.ln_f.weight", output: "model.transformer.ff_out.weight",
		blockPrefix: "model.transformer.blocks.%d.",
		leaves: [][2]string{
			{"attn_norm.weight", "attn_norm.weight"},
			{"q_proj.weight", "attn_q.weight"},
			{"k_proj.weight", "attn_k.weight"},
			{"v_proj.weight", "attn_v.weight"},
			{"attn_out.weight", "attn_output.weight"},
			{"ff_norm.weight", "ffn_norm.weight"},
			{"ff_proj.weight", "ffn_gate.weight"},
			{"up_proj.weight", "ffn_up.weight"},
			{"ff_out.weight", "ffn_down.weight"},
		},
		layers: []string{"n_layers", "num_hidden_layers"}, dim: []string{"d_model", "hidden_size"},
		ffn: []string{"mlp_hidden_size", "intermediate_size"}, heads: []string{"n_heads", "num_attention_heads"},
		kvHeads: []string{"n_kv_heads", "num_key_value_heads"}, context: []string{"max_sequence_length", "max_position_embeddings"},
		undoPermute: true, shiftLogits: &no,
	}
)

// families maps config.json's architectures values to families; a nil
// family is one dfill knows of but cannot convert yet.
var families = map[string]*family{
	"DreamModel":      &dream,
	"LLaDAModelLM":    &llada,
	"LLaDAMoEModel":   nil,
	"LLaDAMoEModelLM": nil,
	"RND1":            nil,
}

// familyOf returns the family config.json's architectures names.
func familyOf(hp hparams, path string) (*family, error) {
	var names []string
	if l, ok := hp["architectures"].([]any); ok {
		for _, v := range l {
			if s, ok := v.(string); ok {
				names = append(names, s)
			}
		}
	}
	for _, n := range names {
		f, ok := families[n]
		if ok && f == nil {
			return nil, fmt.Errorf("%w: %s: architecture %s: dfill's engine has no llada-moe or rnd1 yet", ErrUnsupported, path, n)
		}
		if ok {
			return f, nil
		}
	}
	return nil, fmt.Errorf("%w: %s: architectures %q (dfill converts DreamModel and LLaDAModelLM)", ErrUnknownArch, path, strings.Join(names, ", "))
}

// shape is a model's hyperparameters, from config.json.
type shape struct {
	layers, dim, ffn, heads, kvHeads, headDim, context int
	ropeBase, eps                                      float64
	explicitHeadDim                                    bool
}

// shapeOf reads f's hyperparameters from config.json (hp, at path).
func (f *family) shapeOf(hp hparams, path string) (shape, error) {
	var s shape
	first := func(keys []string, dst *int, def int) error {
		for _, k := range keys {
			if v, ok := hp.int(k); ok {
				if v <= 0 {
					return fmt.Errorf("%w: %s: %s = %d", ErrBadCheckpoint, path, k, v)
				}
				*dst = v
				return nil
			}
		}
		if def > 0 {
			*dst = def
			return nil
		}
		return fmt.Errorf("%w: %s: none of %s", ErrBadCheckpoint, path, strings.Join(keys, ", "))
	}
	for _, k := range []struct {
		keys []string
		dst  *int
	}{{f.layers, &s.layers}, {f.dim, &s.dim}, {f.ffn, &s.ffn}, {f.heads, &s.heads}} {
		if err := first(k.keys, k.dst, 0); err != nil {
			return s, err
		}
	}
	if err := first(f.kvHeads, &s.kvHeads, s.heads); err != nil {
		return s, err
	}
	if err := first(f.context, &s.context, 4096); err != nil {
		return s, err
	}
	if s.heads%s.kvHeads != 0 || s.dim%s.heads != 0 {
		return s, fmt.Errorf("%w: %s: %d heads, %d key/value heads and width %d do not divide", ErrBadCheckpoint, path, s.heads, s.kvHeads, s.dim)
	}
	s.headDim = s.dim / s.heads
	if v, ok := hp.int("head_dim"); ok && v > 0 {
		s.headDim, s.explicitHeadDim = v, true
	}
	s.ropeBase = 10000
	if v, ok := hp.float("rope_theta"); ok && v > 0 {
		s.ropeBase = v
	}
	s.eps = 1e-6
	if v, ok := hp.float("rms_norm_eps"); ok && v > 0 {
		s.eps = v
	}
	if rs, ok := hp["rope_scaling"].(map[string]any); ok && len(rs) > 0 {
		return s, fmt.Errorf("%w: %s: rope_scaling %v (dfill runs plain RoPE)", ErrUnsupported, path, rs)
	}
	for _, k := range []string{"use_sliding_window", "include_bias", "include_qkv_bias"} {
		if v, _ := hp[k].(bool); v {
			return s, fmt.Errorf("%w: %s: %s is true", ErrUnsupported, path, k)
		}
	}
	return s, nil
}
