package convert_test

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dfill/dfill/engine/kernel"
	"github.com/dfill/dfill/engine/tokenizer"
)

// The pre-tokenizer splits of Qwen2's (Dream's, RND1's), LLaMA-3's
// (LLaDA's) and Ling's (LLaDA-MoE's) tokenizer.json files.
const (
	qwen2Split  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	llama3Split = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	lingSplit   = `'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+`
)

// hfShape is the shape of a tiny test checkpoint.
type hfShape struct {
	layers, dim, heads, kvHeads, ffn, vocab int
	ropeBase, eps                           float64
	headDim                                 int // config.json's head_dim; 0: dim / heads
	// Routed experts (0: a dense FFN of width ffn in every block; with
	// experts, ffn is config.json's intermediate_size, 0 for none): their
	// count, how many each token uses, one expert's width, and whether
	// the chosen experts' weights are renormalised to sum to 1.
	experts, used, expFFN int
	normTopK              bool
}

// hd returns the width of one attention head.
func (s hfShape) hd() int {
	if s.headDim > 0 {
		return s.headDim
	}
	return s.dim / s.heads
}

var (
	tiny = hfShape{layers: 2, dim: 64, heads: 4, kvHeads: 2, ffn: 96, vocab: 272, ropeBase: 10000, eps: 1e-6}
	// tinyLLaDAMoE is LLaDA-MoE-7B-A1B's shape, shrunk: as many key/value
	// heads as heads, no intermediate_size, weights not renormalised.
	tinyLLaDAMoE = hfShape{layers: 2, dim: 64, heads: 4, kvHeads: 4, vocab: 272, ropeBase: 50000, eps: 1e-5,
		experts: 4, used: 2, expFFN: 32}
	// tinyRND1 is RND1-Base-0910's (Qwen3-30B-A3B's) shape, shrunk: an
	// explicit head_dim wider than dim / heads, grouped key/value heads,
	// renormalised weights.
	tinyRND1 = hfShape{layers: 2, dim: 64, heads: 4, kvHeads: 2, ffn: 96, vocab: 272, ropeBase: 1e6, eps: 1e-6,
		headDim: 24, experts: 4, used: 2, expFFN: 32, normTopK: true}
)

// hfTensor is one tensor of a test checkpoint: its values, already rounded
// to dtype, so the reference computes with exactly what the file holds.
type hfTensor struct {
	name  string
	dtype string
	shape []int
	vals  []float64
}

// round returns v as dtype stores it.
func round(v float64, dtype string) float64 {
	switch dtype {
	case "F16":
		return float64(kernel.F16ToF32(kernel.F32ToF16(float32(v))))
	case "BF16":
		return float64(kernel.BF16ToF32(kernel.F32ToBF16(float32(v))))
	}
	return float64(float32(v))
}

// writeSafetensors writes tensors to path in the safetensors format: an
// 8-byte little-endian header length, the JSON header (padded with spaces
// to 8 bytes, as the safetensors library does), then the data.
func writeSafetensors(t *testing.T, path string, tensors []hfTensor) {
	t.Helper()
	header := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var data []byte
	for _, x := range tensors {
		start := len(data)
		for _, v := range x.vals {
			switch x.dtype {
			case "F32":
				data = binary.LittleEndian.AppendUint32(data, math.Float32bits(float32(v)))
			case "F16":
				data = binary.LittleEndian.AppendUint16(data, kernel.F32ToF16(float32(v)))
			case "BF16":
				data = binary.LittleEndian.AppendUint16(data, kernel.F32ToBF16(float32(v)))
			}
		}
		header[x.name] = map[string]any{"dtype": x.dtype, "shape": x.shape, "data_offsets": []int{start, len(data)}}
	}
	hdr, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	for len(hdr)%8 != 0 {
		hdr = append(hdr, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	out = append(append(out, hdr...), data...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeJSON writes v to dir/name.
func writeJSON(t *testing.T, dir, name string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeShards writes tensors as two shards, model-00001-of-00002 and
// model-00002-of-00002, and the model.safetensors.index.json that maps
// them, as transformers' save_pretrained does.
func writeShards(t *testing.T, dir string, tensors []hfTensor) {
	t.Helper()
	half := len(tensors) / 2
	shards := [][]hfTensor{tensors[:half], tensors[half:]}
	weightMap := map[string]string{}
	size := 0
	for i, shard := range shards {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(shards))
		writeSafetensors(t, filepath.Join(dir, name), shard)
		for _, x := range shard {
			weightMap[x.name] = name
			size += len(x.vals) * 4
		}
	}
	writeJSON(t, dir, "model.safetensors.index.json", map[string]any{
		"metadata": map[string]any{"total_size": size}, "weight_map": weightMap,
	})
}

// bpeVocab is a tiny byte-level BPE vocabulary: the 256 byte tokens, then
// merged tokens, then the special tokens (added tokens) at the ids given.
type bpeVocab struct {
	vocab   map[string]int
	merges  [][2]string
	added   []addedToken
	encoded map[string][]int // texts and the ids they encode to
}

type addedToken struct {
	id      int
	content string
	special bool
}

// newVocab builds the vocabulary with the given added tokens placed right
// after the merged tokens.
func newVocab(specials ...string) bpeVocab {
	v := bpeVocab{vocab: map[string]int{}}
	for b := 0; b < 256; b++ {
		v.vocab[tokenizer.EncodeBytes(string([]byte{byte(b)}))] = b
	}
	v.merges = [][2]string{{"h", "e"}, {"l", "l"}, {"Ġ", "w"}, {"he", "ll"}}
	for _, m := range v.merges {
		v.vocab[m[0]+m[1]] = len(v.vocab)
	}
	for _, s := range specials {
		v.added = append(v.added, addedToken{id: len(v.vocab) + len(v.added), content: s, special: true})
	}
	// One added token that is not special: a user-defined token.
	v.added = append(v.added, addedToken{id: len(v.vocab) + len(v.added), content: "<extra>", special: false})
	id := func(s string) int { return v.vocab[s] }
	v.encoded = map[string][]int{
		"hello world": {id("hell"), id("o"), id("Ġw"), id("o"), id("r"), id("l"), id("d")},
	}
	return v
}

// id returns the id of an added token.
func (v bpeVocab) id(content string) int {
	for _, a := range v.added {
		if a.content == content {
			return a.id
		}
	}
	return -1
}

// writeTokenizer writes tokenizer.json in the layout of the tokenizers
// library: merges as "a b" strings, or as [a, b] pairs when pairs is set
// (transformers 4.45 and later), the pre-tokenizer split given.
func (v bpeVocab) writeTokenizer(t *testing.T, dir, split string, pairs bool) {
	t.Helper()
	var merges []any
	for _, m := range v.merges {
		if pairs {
			merges = append(merges, []string{m[0], m[1]})
		} else {
			merges = append(merges, m[0]+" "+m[1])
		}
	}
	var added []any
	for _, a := range v.added {
		added = append(added, map[string]any{"id": a.id, "content": a.content, "single_word": false,
			"lstrip": false, "rstrip": false, "normalized": false, "special": a.special})
	}
	writeJSON(t, dir, "tokenizer.json", map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": added, "normalizer": nil,
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": split}, "behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
		}},
		"post_processor": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": "",
			"end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
			"vocab": v.vocab, "merges": merges},
	})
}

// hfModel is a test checkpoint's weights by HF name.
type hfModel map[string]hfTensor

// randomTensors returns the tensors of a model of shape s: names gives
// each GGUF-role name's HF name (an empty name: the tensor is absent);
// every tensor is random, rounded to dtype. A MoE shape has q/k norms, the
// router ("router") and each expert's matrices ("expert.E.gate", ".up",
// ".down") in place of the dense FFN.
func randomTensors(s hfShape, seed uint64, dtype string, names func(role string, layer int) string, bias bool) ([]hfTensor, hfModel) {
	r := rand.New(rand.NewPCG(seed, 7))
	hd := s.hd()
	q, kv := s.heads*hd, s.kvHeads*hd
	var list []hfTensor
	add := func(name string, scale, offset float64, shape ...int) {
		if name == "" {
			return
		}
		n := 1
		for _, d := range shape {
			n *= d
		}
		vals := make([]float64, n)
		for i := range vals {
			vals[i] = round(offset+scale*(2*r.Float64()-1), dtype)
		}
		list = append(list, hfTensor{name: name, dtype: dtype, shape: shape, vals: vals})
	}
	add(names("embd", 0), 1, 0, s.vocab, s.dim)
	for l := 0; l < s.layers; l++ {
		add(names("attn_norm", l), 0.2, 1, s.dim)
		add(names("q", l), 0.25, 0, q, s.dim)
		add(names("k", l), 0.25, 0, kv, s.dim)
		add(names("v", l), 0.25, 0, kv, s.dim)
		if bias {
			add(names("q_bias", l), 0.5, 0, q)
			add(names("k_bias", l), 0.5, 0, kv)
			add(names("v_bias", l), 0.5, 0, kv)
		}
		if s.experts > 0 {
			add(names("q_norm", l), 0.2, 1, hd)
			add(names("k_norm", l), 0.2, 1, hd)
		}
		add(names("o", l), 0.2, 0, s.dim, q)
		add(names("ffn_norm", l), 0.2, 1, s.dim)
		if s.experts == 0 {
			add(names("gate", l), 0.2, 0, s.ffn, s.dim)
			add(names("up", l), 0.2, 0, s.ffn, s.dim)
			add(names("down", l), 0.2, 0, s.dim, s.ffn)
			continue
		}
		// Router weights of 1 spread the experts' logits several units
		// apart, so that rounding cannot change which ones a token uses.
		add(names("router", l), 1, 0, s.experts, s.dim)
		for e := 0; e < s.experts; e++ {
			add(names(fmt.Sprintf("expert.%d.gate", e), l), 0.2, 0, s.expFFN, s.dim)
			add(names(fmt.Sprintf("expert.%d.up", e), l), 0.2, 0, s.expFFN, s.dim)
			add(names(fmt.Sprintf("expert.%d.down", e), l), 0.2, 0, s.dim, s.expFFN)
		}
	}
	add(names("norm", 0), 0.2, 1, s.dim)
	add(names("output", 0), 0.3, 0, s.vocab, s.dim)
	m := hfModel{}
	for _, x := range list {
		m[x.name] = x
	}
	return list, m
}

// dreamName is the HF name of a Dream (Qwen2) checkpoint's tensor.
func dreamName(tied bool) func(string, int) string {
	return func(role string, l int) string {
		p := fmt.Sprintf("model.layers.%d.", l)
		switch role {
		case "embd":
			return "model.embed_tokens.weight"
		case "norm":
			return "model.norm.weight"
		case "output":
			if tied {
				return ""
			}
			return "lm_head.weight"
		case "attn_norm":
			return p + "input_layernorm.weight"
		case "ffn_norm":
			return p + "post_attention_layernorm.weight"
		case "q", "k", "v", "o":
			return p + "self_attn." + role + "_proj.weight"
		case "q_bias", "k_bias", "v_bias":
			return p + "self_attn." + role[:1] + "_proj.bias"
		}
		return p + "mlp." + role + "_proj.weight"
	}
}

// lladaName is the HF name of a LLaDA checkpoint's tensor (OLMo's names).
func lladaName(role string, l int) string {
	p := fmt.Sprintf("model.transformer.blocks.%d.", l)
	return map[string]string{
		"embd": "model.transformer.wte.weight", "norm": "model.transformer.ln_f.weight", "output": "model.transformer.ff_out.weight",
		"attn_norm": p + "attn_norm.weight", "ffn_norm": p + "ff_norm.weight",
		"q": p + "q_proj.weight", "k": p + "k_proj.weight", "v": p + "v_proj.weight", "o": p + "attn_out.weight",
		"gate": p + "ff_proj.weight", "up": p + "up_proj.weight", "down": p + "ff_out.weight",
	}[role]
}

// moeName is the HF name of a LLaDA-MoE or RND1 checkpoint's tensor (the
// Qwen3-MoE names): Dream's, with q/k norms, the router and the experts.
func moeName(tied bool) func(string, int) string {
	dense := dreamName(tied)
	return func(role string, l int) string {
		p := fmt.Sprintf("model.layers.%d.", l)
		switch role {
		case "q_norm", "k_norm":
			return p + "self_attn." + role + ".weight"
		case "router":
			return p + "mlp.gate.weight"
		}
		if expert, ok := strings.CutPrefix(role, "expert."); ok {
			return p + "mlp.experts." + expert + "_proj.weight" // expert.3.gate: mlp.experts.3.gate_proj.weight
		}
		return dense(role, l)
	}
}

// writeDream writes a Dream checkpoint folder: config.json with the fields
// of Dream-org/Dream-v0-Base-7B's, generation_config.json,
// tokenizer_config.json and tokenizer.json as Dream's tokenizer has them,
// and the weights in two shards. It returns the weights.
func writeDream(t *testing.T, dir string, s hfShape, dtype string, tied bool) (hfModel, bpeVocab) {
	t.Helper()
	v := newVocab("<|endoftext|>", "<|beginoftext|>", "<|mask|>")
	list, m := randomTensors(s, 1, dtype, dreamName(tied), true)
	writeJSON(t, dir, "config.json", map[string]any{
		"architectures": []string{"DreamModel"}, "attention_dropout": 0.0,
		"auto_map":     map[string]string{"AutoConfig": "configuration_dream.DreamConfig", "AutoModel": "modeling_dream.DreamModel"},
		"bos_token_id": v.id("<|beginoftext|>"), "eos_token_id": v.id("<|endoftext|>"), "pad_token_id": v.id("<|endoftext|>"),
		"mask_token_id": v.id("<|mask|>"), "hidden_act": "silu", "hidden_size": s.dim, "initializer_range": 0.02,
		"intermediate_size": s.ffn, "max_position_embeddings": 131072, "max_window_layers": s.layers, "model_type": "Dream",
		"num_attention_heads": s.heads, "num_hidden_layers": s.layers, "num_key_value_heads": s.kvHeads,
		"rms_norm_eps": s.eps, "rope_scaling": nil, "rope_theta": s.ropeBase, "sliding_window": nil,
		"tie_word_embeddings": tied, "torch_dtype": torchDtype(dtype), "transformers_version": "4.46.2", "use_cache": true,
		"use_sliding_window": false, "vocab_size": s.vocab,
	})
	writeJSON(t, dir, "generation_config.json", map[string]any{
		"bos_token_id": v.id("<|beginoftext|>"), "eos_token_id": v.id("<|endoftext|>"), "pad_token_id": v.id("<|endoftext|>"),
		"transformers_version": "4.46.2",
	})
	writeJSON(t, dir, "tokenizer_config.json", map[string]any{
		"add_bos_token": false, "bos_token": "<|beginoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
		"mask_token": "<|mask|>", "model_max_length": 131072, "tokenizer_class": "DreamTokenizer",
	})
	v.writeTokenizer(t, dir, qwen2Split, false)
	writeShards(t, dir, list)
	return m, v
}

// writeLLaDA writes a LLaDA checkpoint folder: config.json with the fields
// of GSAI-ML/LLaDA-8B-Base's, tokenizer files with the mask token named
// only by config.json's mask_token_id, and the weights in two shards.
func writeLLaDA(t *testing.T, dir string, s hfShape, dtype string) (hfModel, bpeVocab) {
	t.Helper()
	v := newVocab("<|startoftext|>", "<|endoftext|>", "<|mdm_mask|>")
	list, m := randomTensors(s, 2, dtype, lladaName, false)
	writeJSON(t, dir, "config.json", map[string]any{
		"activation_type": "silu", "alibi": false, "alibi_bias_max": 8.0, "architectures": []string{"LLaDAModelLM"},
		"attention_dropout": 0.0, "attention_layer_norm": false, "attention_layer_norm_with_affine": true,
		"auto_map":            map[string]string{"AutoConfig": "configuration_llada.LLaDAConfig", "AutoModel": "modeling_llada.LLaDAModelLM"},
		"bias_for_layer_norm": false, "block_group_size": 1, "block_type": "llama", "d_model": s.dim, "embedding_dropout": 0.0,
		"embedding_size": s.vocab, "eos_token_id": v.id("<|endoftext|>"), "flash_attention": false, "include_bias": false,
		"include_qkv_bias": false, "init_cutoff_factor": nil, "init_device": "meta", "init_fn": "mitchell", "init_std": 0.02,
		"input_emb_norm": false, "layer_norm_type": "rms", "layer_norm_with_affine": true, "mask_token_id": v.id("<|mdm_mask|>"),
		"max_sequence_length": 4096, "mlp_hidden_size": s.ffn, "mlp_ratio": 4, "model_type": "llada",
		"multi_query_attention": nil, "n_heads": s.heads, "n_kv_heads": s.kvHeads, "n_layers": s.layers,
		"pad_token_id": v.id("<|endoftext|>"), "precision": "amp_bf16", "residual_dropout": 0.0, "rms_norm_eps": s.eps,
		"rope": true, "rope_full_precision": true, "rope_theta": s.ropeBase, "scale_logits": false,
		"transformers_version": "4.46.3", "use_cache": false, "vocab_size": s.vocab, "weight_tying": false,
	})
	writeJSON(t, dir, "generation_config.json", map[string]any{
		"bos_token_id": v.id("<|startoftext|>"), "eos_token_id": v.id("<|endoftext|>"), "pad_token_id": v.id("<|endoftext|>"),
	})
	writeJSON(t, dir, "tokenizer_config.json", map[string]any{
		"add_bos_token": false, "add_eos_token": false,
		"bos_token": map[string]any{"content": "<|startoftext|>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false},
		"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "model_max_length": 1e30,
		"tokenizer_class": "PreTrainedTokenizerFast",
	})
	v.writeTokenizer(t, dir, llama3Split, true)
	writeShards(t, dir, list)
	return m, v
}

// torchDtype is config.json's torch_dtype for a safetensors dtype.
func torchDtype(dtype string) string {
	return map[string]string{"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype]
}

// without returns list less the tensors named drop.
func without(list []hfTensor, drop []string) []hfTensor {
	return slices.DeleteFunc(list, func(x hfTensor) bool { return slices.Contains(drop, x.name) })
}

// writeLLaDAMoE writes a LLaDA-MoE checkpoint folder: config.json with the
// fields of inclusionAI/LLaDA-MoE-7B-A1B-Base's, tokenizer files with Ling's
// split and the mask token named by tokenizer_config.json, and the weights
// less those named drop in two shards.
func writeLLaDAMoE(t *testing.T, dir string, s hfShape, dtype string, drop ...string) (hfModel, bpeVocab) {
	t.Helper()
	v := newVocab("<|startoftext|>", "<|endoftext|>", "<|mask|>")
	list, m := randomTensors(s, 34, dtype, moeName(false), false) // a seed whose routing TestConvertLogits finds clear
	freq := make([]int, s.layers)
	for i := range freq {
		freq[i] = 1
	}
	writeJSON(t, dir, "config.json", map[string]any{
		"architectures": []string{"LLaDAMoEModel"}, "attention_bias": false, "attention_dropout": 0.0,
		"auto_map": map[string]string{"AutoConfig": "configuration_lladamoe.LLaDAConfig", "AutoModel": "modeling_lladamoe.LLaDAMoEModelLM"},
		"clip_qkv": nil, "dense_intermediate_size": 4 * s.dim, "eos_token_id": v.id("<|endoftext|>"),
		"expert_intermediate_size": s.expFFN, "hidden_act": "silu", "hidden_size": s.dim, "initializer_range": 0.02,
		"max_position_embeddings": 8192, "model_type": "llada_moe", "moe_layer_freq": freq,
		"moe_router_score_function": "softmax", "norm_topk_prob": nil, "num_attention_heads": s.heads,
		"num_experts": s.experts, "num_experts_per_tok": s.used, "num_hidden_layers": s.layers,
		"num_key_value_heads": s.kvHeads, "output_router_logits": false, "pad_token_id": v.id("<|endoftext|>"),
		"partial_rotary_factor": 1.0, "qk_layernorm": true, "rms_norm_eps": s.eps, "rope_scaling": nil,
		"rope_theta": s.ropeBase, "router_aux_loss_coef": 0.01, "shared_expert_intermediate_size": nil,
		"tie_word_embeddings": false, "torch_dtype": torchDtype(dtype), "transformers_version": "4.52.4",
		"use_cache": false, "vocab_size": s.vocab,
	})
	writeJSON(t, dir, "tokenizer_config.json", map[string]any{
		"add_bos_token": false, "add_eos_token": false, "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
		"pad_token": "<|endoftext|>", "mask_token": "<|mask|>", "model_max_length": 8192,
		"tokenizer_class": "PreTrainedTokenizerFast",
	})
	v.writeTokenizer(t, dir, lingSplit, true)
	writeShards(t, dir, without(list, drop))
	return m, v
}

// writeRND1 writes an RND1 checkpoint folder: config.json with the fields
// of radicalnumerics/RND1-Base-0910's (Qwen3-MoE's, with mask_token_id),
// Qwen's tokenizer files, which name no mask token, and the weights less
// those named drop in two shards.
func writeRND1(t *testing.T, dir string, s hfShape, dtype string, drop ...string) (hfModel, bpeVocab) {
	t.Helper()
	v := newVocab("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|mask|>")
	list, m := randomTensors(s, 51, dtype, moeName(false), false) // a seed whose routing TestConvertLogits finds clear
	writeJSON(t, dir, "config.json", map[string]any{
		"architectures": []string{"RND1"}, "attention_bias": false, "attention_dropout": 0.0,
		"bos_token_id": v.id("<|endoftext|>"), "decoder_sparse_step": 1, "eos_token_id": v.id("<|endoftext|>"),
		"head_dim": s.headDim, "hidden_act": "silu", "hidden_size": s.dim, "initializer_range": 0.02,
		"intermediate_size": s.ffn, "mask_token_id": v.id("<|mask|>"), "max_position_embeddings": 40960,
		"max_window_layers": s.layers, "mlp_only_layers": []int{}, "model_type": "rnd1",
		"moe_intermediate_size": s.expFFN, "norm_topk_prob": s.normTopK, "num_attention_heads": s.heads,
		"num_experts": s.experts, "num_experts_per_tok": s.used, "num_hidden_layers": s.layers,
		"num_key_value_heads": s.kvHeads, "output_router_logits": false, "rms_norm_eps": s.eps,
		"rope_scaling": nil, "rope_theta": s.ropeBase, "router_aux_loss_coef": 0.001, "sliding_window": nil,
		"tie_word_embeddings": false, "torch_dtype": torchDtype(dtype), "transformers_version": "4.56.1",
		"use_cache": false, "use_sliding_window": false, "vocab_size": s.vocab,
	})
	writeJSON(t, dir, "generation_config.json", map[string]any{
		"bos_token_id": v.id("<|endoftext|>"), "eos_token_id": v.id("<|endoftext|>"), "transformers_version": "4.56.1",
	})
	writeJSON(t, dir, "tokenizer_config.json", map[string]any{
		"add_bos_token": false, "add_prefix_space": false, "bos_token": nil, "eos_token": "<|endoftext|>",
		"pad_token": "<|endoftext|>", "model_max_length": 131072, "tokenizer_class": "Qwen2Tokenizer",
	})
	v.writeTokenizer(t, dir, qwen2Split, true)
	writeShards(t, dir, without(list, drop))
	return m, v
}

// referenceLogits is the forward pass of the checkpoint's own modeling
// code (Qwen2 for Dream, LLaDA's LLaMA block, the Qwen3-MoE block of
// LLaDA-MoE and RND1), in float64, straight from the HF weights: RMSNorm,
// the q/k/v biases or per-head q/k RMS norms where the checkpoint has them,
// RoPE with rotate_half (the two halves of each head), grouped-query
// attention over every position, and SwiGLU, or for a MoE shape the
// router's softmax, the s.used most probable experts weighted by their
// probabilities (renormalised when s.normTopK) and their SwiGLU FFNs. Row
// i of logits is position i's. margin is the smallest gap, over every
// token and block, between the router logits of the last expert used and
// the first one not used (+Inf for a dense model): rounding smaller than
// it cannot change the experts chosen.
func referenceLogits(m hfModel, s hfShape, name func(string, int) string, tokens []int32) (logits [][]float64, margin float64) {
	hd := s.hd()
	w := func(role string, l int) []float64 { return m[name(role, l)].vals }
	matvec := func(wt []float64, x []float64, rows int) []float64 {
		cols := len(x)
		y := make([]float64, rows)
		for r := range y {
			for c, v := range x {
				y[r] += wt[r*cols+c] * v
			}
		}
		return y
	}
	rms := func(x, g []float64) []float64 {
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		inv := 1 / math.Sqrt(ss/float64(len(x))+s.eps)
		y := make([]float64, len(x))
		for i := range x {
			y[i] = x[i] * inv * g[i]
		}
		return y
	}
	headNorm := func(x, g []float64) {
		for h := 0; h < len(x)/hd; h++ {
			copy(x[h*hd:(h+1)*hd], rms(x[h*hd:(h+1)*hd], g))
		}
	}
	rope := func(x []float64, heads, pos int) {
		for h := 0; h < heads; h++ {
			v := x[h*hd : (h+1)*hd]
			for i := 0; i < hd/2; i++ {
				theta := float64(pos) * math.Pow(s.ropeBase, -float64(2*i)/float64(hd))
				c, sn := math.Cos(theta), math.Sin(theta)
				a, b := v[i], v[i+hd/2]
				v[i], v[i+hd/2] = a*c-b*sn, b*c+a*sn
			}
		}
	}
	swiglu := func(h []float64, gate, up, down string, l, ffn int) []float64 {
		g, u := matvec(w(gate, l), h, ffn), matvec(w(up, l), h, ffn)
		for j := range g {
			g[j] = g[j] / (1 + math.Exp(-g[j])) * u[j]
		}
		return matvec(w(down, l), g, s.dim)
	}
	margin = math.Inf(1)
	experts := func(h []float64, l int) []float64 {
		logit := matvec(w("router", l), h, s.experts)
		order := make([]int, s.experts)
		for e := range order {
			order[e] = e
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(logit[b], logit[a]) })
		if s.used < s.experts {
			margin = math.Min(margin, logit[order[s.used-1]]-logit[order[s.used]])
		}
		top := slices.Max(logit)
		var sum, chosen float64
		prob := make([]float64, s.experts)
		for e, v := range logit {
			prob[e] = math.Exp(v - top)
			sum += prob[e]
		}
		for _, e := range order[:s.used] {
			prob[e] /= sum
			chosen += prob[e]
		}
		out := make([]float64, s.dim)
		for _, e := range order[:s.used] {
			weight := prob[e]
			if s.normTopK {
				weight /= chosen
			}
			p := fmt.Sprintf("expert.%d.", e)
			for d, v := range swiglu(h, p+"gate", p+"up", p+"down", l, s.expFFN) {
				out[d] += weight * v
			}
		}
		return out
	}
	T := len(tokens)
	x := make([][]float64, T)
	emb := w("embd", 0)
	for i, tok := range tokens {
		x[i] = slices.Clone(emb[int(tok)*s.dim : (int(tok)+1)*s.dim])
	}
	for l := 0; l < s.layers; l++ {
		q, k, v := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for i := range x {
			h := rms(x[i], w("attn_norm", l))
			q[i] = matvec(w("q", l), h, s.heads*hd)
			k[i] = matvec(w("k", l), h, s.kvHeads*hd)
			v[i] = matvec(w("v", l), h, s.kvHeads*hd)
			for _, p := range []struct {
				y    []float64
				role string
			}{{q[i], "q_bias"}, {k[i], "k_bias"}, {v[i], "v_bias"}} {
				if b := w(p.role, l); b != nil {
					for j := range p.y {
						p.y[j] += b[j]
					}
				}
			}
			if g := w("q_norm", l); g != nil {
				headNorm(q[i], g)
				headNorm(k[i], w("k_norm", l))
			}
			rope(q[i], s.heads, i)
			rope(k[i], s.kvHeads, i)
		}
		for i := range x {
			att := make([]float64, s.heads*hd)
			for h := 0; h < s.heads; h++ {
				g := h / (s.heads / s.kvHeads)
				scores := make([]float64, T)
				top := math.Inf(-1)
				for j := range scores {
					for d := 0; d < hd; d++ {
						scores[j] += q[i][h*hd+d] * k[j][g*hd+d]
					}
					scores[j] /= math.Sqrt(float64(hd))
					top = math.Max(top, scores[j])
				}
				var sum float64
				for j := range scores {
					scores[j] = math.Exp(scores[j] - top)
					sum += scores[j]
				}
				for j := range scores {
					for d := 0; d < hd; d++ {
						att[h*hd+d] += scores[j] / sum * v[j][g*hd+d]
					}
				}
			}
			o := matvec(w("o", l), att, s.dim)
			for d := range o {
				x[i][d] += o[d]
			}
			h := rms(x[i], w("ffn_norm", l))
			var ffn []float64
			if s.experts > 0 {
				ffn = experts(h, l)
			} else {
				ffn = swiglu(h, "gate", "up", "down", l, s.ffn)
			}
			for d := range ffn {
				x[i][d] += ffn[d]
			}
		}
	}
	out := w("output", 0)
	if out == nil {
		out = emb
	}
	logits = make([][]float64, T)
	for i := range x {
		logits[i] = matvec(out, rms(x[i], w("norm", 0)), s.vocab)
	}
	return logits, margin
}
