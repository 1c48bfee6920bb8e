package convert

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
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
	// maskID is the mask token id convert_hf_to_gguf.py writes whatever
	// the tokenizer says (0: none); configMask takes config.json's
	// mask_token_id before the tokenizer's mask token.
	maskID     int
	configMask bool
	// moe describes the routed experts of a MoE family (nil: a dense FFN
	// in every block, whose width ffn names).
	moe *moe
}

// moe is how a family's routed experts map to GGUF: per block the router
// (ffn_gate_inp) and each expert's SwiGLU matrices, stacked into
// ffn_{gate,up,down}_exps as convert_hf_to_gguf.py's Qwen2MoeModel stacks
// them (torch.stack over the experts, expert 0 first).
type moe struct {
	// keys name the config.json fields of the expert count, the experts
	// each token uses and one expert's FFN width.
	experts, used, ffn []string
	// router is the router's HF name after the block prefix; expert is
	// expert %d's HF name prefix after the block prefix.
	router, expert string
	// settings are the config.json values dfill's graph for the family
	// fixes.
	settings []setting
}

// setting is a config.json key whose value the family's graph fixes: check
// returns why a value (never a missing key) is refused, or "".
type setting struct {
	key   string
	check func(v any) string
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

	// moeLeaves are the block tensors before the experts of llada-moe and
	// rnd1 (both the Qwen3-MoE block: q/k RMS norms per head, no biases).
	moeLeaves = [][2]string{
		{"input_layernorm.weight", "attn_norm.weight"},
		{"self_attn.q_proj.weight", "attn_q.weight"},
		{"self_attn.k_proj.weight", "attn_k.weight"},
		{"self_attn.v_proj.weight", "attn_v.weight"},
		{"self_attn.q_norm.weight", "attn_q_norm.weight"},
		{"self_attn.k_norm.weight", "attn_k_norm.weight"},
		{"self_attn.o_proj.weight", "attn_output.weight"},
		{"post_attention_layernorm.weight", "ffn_norm.weight"},
	}

	// The config.json keys of the expert counts, as TextModel tries them.
	expertKeys = []string{"num_local_experts", "num_experts", "n_routed_experts"}
	usedKeys   = []string{"num_experts_per_tok", "num_experts_per_token", "top_k_experts"}

	// LLaDA-MoE (LLaDAMoEModel): TextModel's keys, the expert width from
	// expert_intermediate_size, mask id 156895 hard-coded as llama.cpp's
	// converter writes it, unshifted logits.
	lladaMoE = family{
		arch: "llada-moe", embd: "model.embed_tokens.weight", norm: "model.norm.weight", output: "lm_head.weight",
		blockPrefix: "model.layers.%d.", leaves: moeLeaves,
		layers: []string{"num_hidden_layers"}, dim: []string{"hidden_size"}, ffn: []string{"intermediate_size"},
		heads: []string{"num_attention_heads"}, kvHeads: []string{"num_key_value_heads"},
		context:     []string{"max_position_embeddings"},
		shiftLogits: &no, maskID: 156895, configMask: true,
		moe: &moe{
			experts: expertKeys, used: usedKeys, ffn: []string{"expert_intermediate_size"},
			router: "mlp.gate.weight", expert: "mlp.experts.%d.",
			settings: slices.Concat(qwen3MoESettings, []setting{
				{"moe_layer_freq", everyLayerMoE},
				{"qk_layernorm", is(true, "llama.cpp's llada-moe graph normalises q and k")},
				{"moe_router_score_function", is("softmax", "llama.cpp's llada-moe router is a softmax")},
				{"norm_topk_prob", isNot(true, "llama.cpp's llada-moe weights the chosen experts by their probabilities as they are")},
				{"clip_qkv", is(nil, "dfill does not clamp q, k and v")},
			}),
		},
	}

	// RND1 (RND1Model, a Qwen2MoeModel): the expert width from
	// moe_intermediate_size, config.json's mask_token_id, causal false and
	// no diffusion.shift_logits (absent: shifted).
	rnd1 = family{
		arch: "rnd1", embd: "model.embed_tokens.weight", norm: "model.norm.weight", output: "lm_head.weight",
		blockPrefix: "model.layers.%d.", leaves: moeLeaves,
		layers: []string{"num_hidden_layers"}, dim: []string{"hidden_size"}, ffn: []string{"intermediate_size"},
		heads: []string{"num_attention_heads"}, kvHeads: []string{"num_key_value_heads"},
		context:    []string{"max_position_embeddings"},
		configMask: true,
		moe: &moe{
			experts: expertKeys, used: usedKeys, ffn: []string{"moe_intermediate_size"},
			router: "mlp.gate.weight", expert: "mlp.experts.%d.",
			settings: slices.Concat(qwen3MoESettings, []setting{
				{"decoder_sparse_step", is(1.0, "llama.cpp's rnd1 graph routes every layer")},
				{"mlp_only_layers", isEmpty("llama.cpp's rnd1 graph has no dense layers")},
				{"norm_topk_prob", is(true, "llama.cpp's rnd1 graph renormalises the chosen experts' weights")},
			}),
		},
	}

	// qwen3MoESettings are refused by both MoE families: shared experts,
	// biased projections, partial RoPE and activations other than SiLU.
	qwen3MoESettings = []setting{
		{"shared_expert_intermediate_size", isZero("shared experts (dfill's llada-moe and rnd1 have none)")},
		{"attention_bias", isNot(true, "dfill's llada-moe and rnd1 have no q/k/v/o biases")},
		{"partial_rotary_factor", is(1.0, "dfill rotates whole heads")},
		{"hidden_act", is("silu", "dfill's experts are SwiGLU")},
	}
)

// is accepts a setting equal to want (or null), refusing others with why.
func is(want any, why string) func(any) string {
	return func(v any) string {
		if v == nil || v == want {
			return ""
		}
		return why
	}
}

// isNot accepts a setting other than bad.
func isNot(bad any, why string) func(any) string {
	return func(v any) string {
		if v == bad {
			return why
		}
		return ""
	}
}

// isZero accepts a setting that is null or 0.
func isZero(why string) func(any) string {
	return func(v any) string {
		if v == nil || v == 0.0 {
			return ""
		}
		return why
	}
}

// isEmpty accepts a setting that is null or an empty list.
func isEmpty(why string) func(any) string {
	return func(v any) string {
		if l, ok := v.([]any); v == nil || ok && len(l) == 0 {
			return ""
		}
		return why
	}
}

// everyLayerMoE accepts a moe_layer_freq of 1 or a list of 1s: LLaDA-MoE
// writes one flag per layer, and a 0 is a dense layer, which llama.cpp's
// llada-moe graph does not have.
func everyLayerMoE(v any) string {
	l, ok := v.([]any)
	if !ok {
		return is(1.0, "llama.cpp's llada-moe graph routes every layer")(v)
	}
	for i, f := range l {
		if f != 1.0 {
			return fmt.Sprintf("layer %d is not routed (llama.cpp's llada-moe graph has no dense layers)", i)
		}
	}
	return ""
}

// families maps config.json's architectures values to families.
var families = map[string]*family{
	"DreamModel":      &dream,
	"LLaDAModelLM":    &llada,
	"LLaDAMoEModel":   &lladaMoE,
	"LLaDAMoEModelLM": &lladaMoE,
	"RND1":            &rnd1,
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
		if f, ok := families[n]; ok {
			return f, nil
		}
	}
	known := slices.Sorted(maps.Keys(families))
	return nil, fmt.Errorf("%w: %s: architectures %q (dfill converts %s and %s)", ErrUnknownArch, path,
		strings.Join(names, ", "), strings.Join(known[:len(known)-1], ", "), known[len(known)-1])
}

// shape is a model's hyperparameters, from config.json.
type shape struct {
	layers, dim, ffn, heads, kvHeads, headDim, context int
	ropeBase, eps                                      float64
	explicitHeadDim                                    bool
	// experts, used and expFFN are the routed experts' count, how many
	// each token uses and one expert's FFN width (0 for a dense family);
	// ffn is then 0 unless config.json gives one.
	experts, used, expFFN int
}

// shapeOf reads f's hyperparameters from config.json (hp, at path).
func (f *family) shapeOf(hp hparams, path string) (shape, error) {
	var s shape
	from := map[*int]string{} // the key each field was read from
	// first sets dst from the first of keys config.json has; with none,
	// dst is def, or for def 0 an error when required.
	first := func(keys []string, dst *int, def int, required bool) error {
		for _, k := range keys {
			if v, ok := hp.int(k); ok {
				if v <= 0 {
					return fmt.Errorf("%w: %s: %s = %d", ErrBadCheckpoint, path, k, v)
				}
				*dst, from[dst] = v, k
				return nil
			}
		}
		if def > 0 || !required {
			*dst = def
			return nil
		}
		return fmt.Errorf("%w: %s: none of %s", ErrBadCheckpoint, path, strings.Join(keys, ", "))
	}
	for _, k := range []struct {
		keys     []string
		dst      *int
		required bool
	}{{f.layers, &s.layers, true}, {f.dim, &s.dim, true}, {f.ffn, &s.ffn, f.moe == nil}, {f.heads, &s.heads, true}} {
		if err := first(k.keys, k.dst, 0, k.required); err != nil {
			return s, err
		}
	}
	if err := first(f.kvHeads, &s.kvHeads, s.heads, true); err != nil {
		return s, err
	}
	if err := first(f.context, &s.context, 4096, true); err != nil {
		return s, err
	}
	if f.moe != nil {
		for _, k := range []struct {
			keys []string
			dst  *int
		}{{f.moe.experts, &s.experts}, {f.moe.used, &s.used}, {f.moe.ffn, &s.expFFN}} {
			if err := first(k.keys, k.dst, 0, true); err != nil {
				return s, err
			}
		}
		if s.used > s.experts {
			return s, fmt.Errorf("%w: %s: %s = %d experts used per token of %s = %d", ErrBadCheckpoint, path,
				from[&s.used], s.used, from[&s.experts], s.experts)
		}
		if err := f.moe.check(hp, path); err != nil {
			return s, err
		}
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

// check refuses a checkpoint whose config.json sets one of m's settings to
// a value the family's graph does not compute, naming the key.
func (m *moe) check(hp hparams, path string) error {
	for _, st := range m.settings {
		v, ok := hp[st.key]
		if !ok {
			continue
		}
		if why := st.check(v); why != "" {
			b, _ := json.Marshal(v)
			return fmt.Errorf("%w: %s: %s = %s: %s", ErrUnsupported, path, st.key, b, why)
		}
	}
	return nil
}

// maskToken returns the mask token id of a checkpoint of family f whose
// embedding has vocab rows, where the tokenizer's files name found (-1:
// none) and config.json is hp.
func (f *family) maskToken(found int32, hp hparams, vocab int) int32 {
	// llama.cpp's LLaDAMoEModel writes 156895 (LLaDA-MoE-7B's <|mask|>)
	// whatever the files say. A vocabulary too small to hold it (a test
	// checkpoint's) takes config.json's mask_token_id or the tokenizer's
	// mask token instead, so that the file still loads.
	if f.maskID > 0 && f.maskID < vocab {
		return int32(f.maskID)
	}
	if f.configMask {
		if id, ok := hp.int("mask_token_id"); ok && id >= 0 && id < vocab {
			return int32(id)
		}
	}
	return found
}
