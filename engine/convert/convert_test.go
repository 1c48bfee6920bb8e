package convert_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dfill/dfill/engine"
	"github.com/dfill/dfill/engine/convert"
	"github.com/dfill/dfill/engine/gguf"
	"github.com/dfill/dfill/engine/tokenizer"
)

// convertTo converts the checkpoint in dir to a GGUF file and returns its
// path.
func convertTo(t *testing.T, dir, outType string) (string, convert.Result) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.gguf")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := convert.Convert(context.Background(), dir, f, convert.Options{OutType: outType})
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	return path, res
}

// testCheckpoint is a checkpoint written in Hugging Face's layout: its
// weights, vocabulary, shape, HF names and mask token.
type testCheckpoint struct {
	m     hfModel
	v     bpeVocab
	s     hfShape
	names func(string, int) string
	mask  string
}

// writeCheckpoint writes a tiny checkpoint of the family arch ("dream",
// "llada", "llada-moe" or "rnd1") to dir, less the tensors named drop
// (MoE families).
func writeCheckpoint(t *testing.T, dir, arch, dtype string, tied bool, drop ...string) testCheckpoint {
	t.Helper()
	switch arch {
	case "dream":
		m, v := writeDream(t, dir, tiny, dtype, tied)
		return testCheckpoint{m, v, tiny, dreamName(tied), "<|mask|>"}
	case "llada":
		m, v := writeLLaDA(t, dir, tiny, dtype)
		return testCheckpoint{m, v, tiny, lladaName, "<|mdm_mask|>"}
	case "llada-moe":
		m, v := writeLLaDAMoE(t, dir, tinyLLaDAMoE, dtype, drop...)
		return testCheckpoint{m, v, tinyLLaDAMoE, moeName(false), "<|mask|>"}
	case "rnd1":
		m, v := writeRND1(t, dir, tinyRND1, dtype, drop...)
		return testCheckpoint{m, v, tinyRND1, moeName(false), "<|mask|>"}
	}
	t.Fatalf("no test checkpoint of family %q", arch)
	return testCheckpoint{}
}

// TestConvertLogits converts checkpoints written in Hugging Face's layout,
// loads them with engine.Load, and compares dfill's logits with a float64
// forward pass computed from the safetensors values directly. The
// tolerance is on the largest absolute difference, relative to the largest
// logit: 1e-3 for float weights (float32 arithmetic over two layers), 5e-2
// for Q8_0 (weights and activations rounded to 8 bits, about 0.4% each).
// For the MoE families the reference's routing must also be clear by
// minMargin (router logits 0.01 apart with float weights, 0.3 with Q8_0's
// rounding), or a token could go to other experts in dfill than in the
// reference for rounding alone.
func TestConvertLogits(t *testing.T) {
	tests := []struct {
		name      string
		arch      string
		dtype     string // of the checkpoint
		outType   string
		tied      bool
		wantType  gguf.Type
		tol       float64
		minMargin float64
	}{
		{name: "dream f32", arch: "dream", dtype: "F32", outType: "f32", wantType: gguf.TypeF32, tol: 1e-3},
		{name: "dream bf16 auto", arch: "dream", dtype: "BF16", outType: "", wantType: gguf.TypeBF16, tol: 1e-3},
		{name: "dream f32 tied", arch: "dream", dtype: "F32", outType: "f32", tied: true, wantType: gguf.TypeF32, tol: 1e-3},
		{name: "dream q8_0", arch: "dream", dtype: "F32", outType: "q8_0", wantType: gguf.TypeQ8_0, tol: 5e-2},
		{name: "llada f16 to f32", arch: "llada", dtype: "F16", outType: "f32", wantType: gguf.TypeF32, tol: 1e-3},
		{name: "llada f16 auto", arch: "llada", dtype: "F16", outType: "auto", wantType: gguf.TypeF16, tol: 1e-3},
		{name: "llada q8_0", arch: "llada", dtype: "BF16", outType: "q8_0", wantType: gguf.TypeQ8_0, tol: 5e-2},
		{name: "llada-moe f32", arch: "llada-moe", dtype: "F32", outType: "f32", wantType: gguf.TypeF32, tol: 1e-3, minMargin: 0.01},
		{name: "llada-moe bf16 auto", arch: "llada-moe", dtype: "BF16", outType: "auto", wantType: gguf.TypeBF16, tol: 1e-3, minMargin: 0.01},
		{name: "llada-moe q8_0", arch: "llada-moe", dtype: "F32", outType: "q8_0", wantType: gguf.TypeQ8_0, tol: 5e-2, minMargin: 0.3},
		{name: "rnd1 f16 to f32", arch: "rnd1", dtype: "F16", outType: "f32", wantType: gguf.TypeF32, tol: 1e-3, minMargin: 0.01},
		{name: "rnd1 bf16 auto", arch: "rnd1", dtype: "BF16", outType: "", wantType: gguf.TypeBF16, tol: 1e-3, minMargin: 0.01},
		{name: "rnd1 q8_0", arch: "rnd1", dtype: "BF16", outType: "q8_0", wantType: gguf.TypeQ8_0, tol: 5e-2, minMargin: 0.3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ck := writeCheckpoint(t, dir, tc.arch, tc.dtype, tc.tied)
			path, res := convertTo(t, dir, tc.outType)
			if res.Arch != tc.arch || res.Type != tc.wantType {
				t.Errorf("Convert = arch %s type %s, want %s %s", res.Arch, res.Type, tc.arch, tc.wantType)
			}
			model, err := engine.Load(path, engine.LoadOptions{Threads: 2})
			if err != nil {
				t.Fatalf("engine.Load: %v", err)
			}
			defer model.Close()
			matrices := []string{"blk.0.attn_q.weight"}
			if ck.s.experts > 0 {
				matrices = append(matrices, "blk.1.ffn_gate_exps.weight", "blk.1.ffn_up_exps.weight", "blk.1.ffn_down_exps.weight")
				if r, _ := model.File().Tensor("blk.1.ffn_gate_inp.weight"); r.Type != gguf.TypeF32 {
					t.Errorf("blk.1.ffn_gate_inp.weight is %s, want F32", r.Type)
				}
			}
			for _, name := range matrices {
				if w, _ := model.File().Tensor(name); w.Type != tc.wantType {
					t.Errorf("%s is %s, want %s", name, w.Type, tc.wantType)
				}
			}
			if _, ok := model.File().Tensor("output.weight"); ok == tc.tied {
				t.Errorf("output.weight present = %v with tied embeddings %v", ok, tc.tied)
			}
			tokens := []int32{int32(ck.v.id("<|endoftext|>")), 104, 101, 108, 108, 111, 32, 119, 259, int32(ck.v.id(ck.mask)), int32(ck.v.id("<extra>")), 255}
			got, err := model.Logits(context.Background(), tokens)
			if err != nil {
				t.Fatal(err)
			}
			want, margin := referenceLogits(ck.m, ck.s, ck.names, tokens)
			if margin < tc.minMargin {
				t.Fatalf("the reference routes a token by a router-logit margin of %g (below %g): rounding could choose other experts", margin, tc.minMargin)
			}
			var maxDiff, maxAbs float64
			for i := range want {
				for j, w := range want[i] {
					maxDiff = math.Max(maxDiff, math.Abs(float64(got[i*ck.s.vocab+j])-w))
					maxAbs = math.Max(maxAbs, math.Abs(w))
				}
			}
			if maxAbs < 1 {
				t.Fatalf("reference logits are all below 1 (max %g): the test would not see an error", maxAbs)
			}
			if maxDiff > tc.tol*maxAbs {
				t.Errorf("logits differ from the reference by %g (largest logit %g, tolerance %g)", maxDiff, maxAbs, tc.tol*maxAbs)
			}
			t.Logf("max |dfill - reference| = %.3g of %.3g; routing margin %.3g", maxDiff, maxAbs, margin)
		})
	}
}

// TestConvertMetadata checks the keys convert_hf_to_gguf.py writes for each
// family, the vocabulary (tokens, types, merges and special ids), and for
// the MoE families the shapes and types of the q/k norms, the router and
// the stacked experts.
func TestConvertMetadata(t *testing.T) {
	tests := []struct {
		name        string
		arch        string
		pre         string
		shift       string // diffusion.shift_logits: "true", "false", "" for absent
		engineShift bool   // what dfill's engine then does
		bos         string
		addBOS      bool
	}{
		{name: "dream", arch: "dream", pre: "qwen2", shift: "", engineShift: true, bos: "<|beginoftext|>", addBOS: false},
		{name: "llada", arch: "llada", pre: "llama-bpe", shift: "false", engineShift: false, bos: "<|startoftext|>", addBOS: true},
		// Ling's split, written as Qwen2's: see lingSplit in tokenizer.go.
		{name: "llada-moe", arch: "llada-moe", pre: "llada-moe", shift: "false", engineShift: false, bos: "<|startoftext|>", addBOS: false},
		{name: "rnd1", arch: "rnd1", pre: "qwen2", shift: "", engineShift: true, bos: "<|endoftext|>", addBOS: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ck := writeCheckpoint(t, dir, tc.arch, "BF16", false)
			v, s := ck.v, ck.s
			path, _ := convertTo(t, dir, "f16")
			model, err := engine.Load(path, engine.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer model.Close()
			f := model.File()
			a := tc.arch
			// Keys with 0 are absent.
			for key, want := range map[string]uint64{
				a + ".block_count": uint64(s.layers), a + ".embedding_length": uint64(s.dim),
				a + ".feed_forward_length": uint64(s.ffn), a + ".attention.head_count": uint64(s.heads),
				a + ".attention.head_count_kv": uint64(s.kvHeads), a + ".attention.key_length": uint64(s.headDim),
				a + ".attention.value_length": uint64(s.headDim), a + ".expert_count": uint64(s.experts),
				a + ".expert_used_count": uint64(s.used), a + ".expert_feed_forward_length": uint64(s.expFFN),
				"general.file_type": 1, "general.quantization_version": 2,
				"tokenizer.ggml.mask_token_id": uint64(v.id(ck.mask)), "tokenizer.ggml.bos_token_id": uint64(v.id(tc.bos)),
				"tokenizer.ggml.eos_token_id": uint64(v.id("<|endoftext|>")),
			} {
				if got, ok := f.Uint(key); ok != (want != 0) || got != want {
					t.Errorf("%s = %d (present %v), want %d", key, got, ok, want)
				}
			}
			for key, want := range map[string]string{"general.architecture": a, "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": tc.pre} {
				if got, _ := f.String(key); got != want {
					t.Errorf("%s = %q, want %q", key, got, want)
				}
			}
			shift := ""
			if b, ok := f.Bool("diffusion.shift_logits"); ok {
				shift = map[bool]string{true: "true", false: "false"}[b]
			}
			if shift != tc.shift {
				t.Errorf("diffusion.shift_logits = %q, want %q", shift, tc.shift)
			}
			if causal, ok := f.Bool(a + ".attention.causal"); !ok || causal {
				t.Errorf("%s.attention.causal = %v (present %v), want false", a, causal, ok)
			}
			if eps, _ := f.Float(a + ".attention.layer_norm_rms_epsilon"); math.Abs(eps-s.eps) > 1e-6*s.eps {
				t.Errorf("epsilon = %g, want %g", eps, s.eps)
			}
			if base, _ := f.Float(a + ".rope.freq_base"); base != s.ropeBase {
				t.Errorf("rope.freq_base = %g, want %g", base, s.ropeBase)
			}
			if model.Config.ShiftLogits != tc.engineShift || model.Config.MaskID != int32(v.id(ck.mask)) {
				t.Errorf("engine config: shift %v mask %d, want %v %d", model.Config.ShiftLogits, model.Config.MaskID, tc.engineShift, v.id(ck.mask))
			}
			if s.experts > 0 {
				hd := uint64(s.hd())
				for _, c := range []struct {
					name string
					typ  gguf.Type
					dims []uint64
				}{
					{"blk.1.attn_q_norm.weight", gguf.TypeF32, []uint64{hd}},
					{"blk.1.attn_k_norm.weight", gguf.TypeF32, []uint64{hd}},
					{"blk.1.attn_q.weight", gguf.TypeF16, []uint64{uint64(s.dim), uint64(s.heads) * hd}},
					{"blk.1.ffn_gate_inp.weight", gguf.TypeF32, []uint64{uint64(s.dim), uint64(s.experts)}},
					{"blk.1.ffn_gate_exps.weight", gguf.TypeF16, []uint64{uint64(s.dim), uint64(s.expFFN), uint64(s.experts)}},
					{"blk.1.ffn_up_exps.weight", gguf.TypeF16, []uint64{uint64(s.dim), uint64(s.expFFN), uint64(s.experts)}},
					{"blk.1.ffn_down_exps.weight", gguf.TypeF16, []uint64{uint64(s.expFFN), uint64(s.dim), uint64(s.experts)}},
				} {
					if info, ok := f.Tensor(c.name); !ok || info.Type != c.typ || !slices.Equal(info.Dims, c.dims) {
						t.Errorf("%s: %s %v (present %v), want %s %v", c.name, info.Type, info.Dims, ok, c.typ, c.dims)
					}
				}
				for _, name := range []string{"blk.0.ffn_gate.weight", "blk.0.ffn_up.weight", "blk.0.ffn_down.weight"} {
					if _, ok := f.Tensor(name); ok {
						t.Errorf("a MoE file has %s", name)
					}
				}
			}
			tok := model.Tokenizer
			if tok.AddBOS() != tc.addBOS {
				t.Errorf("add_bos_token = %v, want %v", tok.AddBOS(), tc.addBOS)
			}
			for text, ids := range v.encoded {
				var want []int32
				for _, id := range ids {
					want = append(want, int32(id))
				}
				if got := tok.Encode(text); !slices.Equal(got, want) {
					t.Errorf("Encode(%q) = %v, want %v", text, got, want)
				}
			}
			for _, c := range []struct {
				id   int
				typ  int32
				text string
			}{
				{v.id(ck.mask), tokenizer.TypeControl, ck.mask},
				{v.id("<extra>"), tokenizer.TypeUserDefined, "<extra>"},
				{s.vocab - 1, tokenizer.TypeUnused, fmt.Sprintf("[PAD%d]", s.vocab-1)},
				{256, tokenizer.TypeNormal, "he"},
			} {
				if got := tok.Type(int32(c.id)); got != c.typ || tok.Token(int32(c.id)) != c.text {
					t.Errorf("token %d = %q type %d, want %q type %d", c.id, tok.Token(int32(c.id)), got, c.text, c.typ)
				}
			}
			merges, _ := f.Strings("tokenizer.ggml.merges")
			if !slices.Equal(merges, []string{"h e", "l l", "Ġ w", "he ll"}) {
				t.Errorf("merges = %q", merges)
			}
		})
	}
}

// TestConvertErrors checks that a checkpoint dfill cannot convert is an
// error that names what is wrong.
func TestConvertErrors(t *testing.T) {
	tests := []struct {
		name    string
		arch    string   // of the checkpoint written before edit ("": dream)
		drop    []string // tensors left out of it (MoE families)
		edit    func(t *testing.T, dir string)
		outType string
		wantErr error
		want    string // in the message
	}{
		{name: "unknown architecture", wantErr: convert.ErrUnknownArch, want: "GPT2LMHeadModel",
			edit: func(t *testing.T, dir string) { setConfig(t, dir, "architectures", []string{"GPT2LMHeadModel"}) }},
		{name: "bad outtype", outType: "q4_k", wantErr: convert.ErrUnsupported, want: "q4_k",
			edit: func(*testing.T, string) {}},
		{name: "missing shard", wantErr: convert.ErrBadCheckpoint, want: "model-00002-of-00002.safetensors",
			edit: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "model-00002-of-00002.safetensors")) }},
		{name: "shape against config", wantErr: convert.ErrBadCheckpoint, want: "model.layers.0.self_attn.k_proj.weight",
			edit: func(t *testing.T, dir string) { setConfig(t, dir, "num_key_value_heads", 4) }},
		{name: "truncated shard", wantErr: convert.ErrBadCheckpoint, want: "model-00001-of-00002.safetensors",
			edit: func(t *testing.T, dir string) {
				p := filepath.Join(dir, "model-00001-of-00002.safetensors")
				st, _ := os.Stat(p)
				os.Truncate(p, st.Size()-10)
			}},
		{name: "no mask token", wantErr: convert.ErrBadCheckpoint, want: "mask",
			edit: func(t *testing.T, dir string) {
				setConfig(t, dir, "mask_token_id", nil)
				os.Remove(filepath.Join(dir, "tokenizer_config.json"))
			}},
		{name: "llada-moe dense layer", arch: "llada-moe", wantErr: convert.ErrUnsupported, want: "moe_layer_freq = [1,0]: layer 1",
			edit: func(t *testing.T, dir string) { setConfig(t, dir, "moe_layer_freq", []int{1, 0}) }},
		{name: "llada-moe sigmoid router", arch: "llada-moe", wantErr: convert.ErrUnsupported, want: "moe_router_score_function",
			edit: func(t *testing.T, dir string) { setConfig(t, dir, "moe_router_score_function", "sigmoid") }},
		{name: "llada-moe renormalised weights", arch: "llada-moe", wantErr: convert.ErrUnsupported, want: "norm_topk_prob",
			edit: func(t *testing.T, dir string) { setConfig(t, dir, "norm_topk_prob", true) }},
		{name: "llada-moe clamped qkv", arch: "llada-moe", wantErr: convert.ErrUnsupported, want: "clip_qkv = 8",
			edit: func(t *testing.T, dir string) { setConfig(t, dir, "clip_qkv", 8) }},
		{name: "llada-moe shared experts", arch: "llada-moe", wantErr: convert.ErrUnsupported, want: "shared_expert_intermediate_size",
			edit: func(t *testing.T, dir string) { setConfig(t, dir, "shared_expert_intermediate_size", 64) }},
		{name: "llada-moe no expert width", arch: "llada-moe", wantErr: convert.ErrBadCheckpoint, want: "expert_intermediate_size",
			edit: func(t *testing.T, dir string) { setConfig(t, dir, "expert_intermediate_size", nil) }},
		{name: "llada-moe expert shape", arch: "llada-moe", wantErr: convert.ErrBadCheckpoint, want: "model.layers.0.mlp.experts.0.gate_proj.weight",
			edit: func(t *testing.T, dir string) { setConfig(t, dir, "expert_intermediate_size", 16) }},
		{name: "rnd1 shared experts", arch: "rnd1", wantErr: convert.ErrUnsupported, want: "shared_expert_intermediate_size",
			edit: func(t *testing.T, dir string) { setConfig(t, dir, "shared_expert_intermediate_size", 64) }},
		{name: "rnd1 dense layer", arch: "rnd1", wantErr: convert.ErrUnsupported, want: "mlp_only_layers",
			edit: func(t *testing.T, dir string) { setConfig(t, dir, "mlp_only_layers", []int{1}) }},
		{name: "rnd1 weights not renormalised", arch: "rnd1", wantErr: convert.ErrUnsupported, want: "norm_topk_prob",
			edit: func(t *testing.T, dir string) { setConfig(t, dir, "norm_topk_prob", false) }},
		{name: "rnd1 more experts used than there are", arch: "rnd1", wantErr: convert.ErrBadCheckpoint, want: "num_experts_per_tok = 8 experts used per token of num_experts = 4",
			edit: func(t *testing.T, dir string) { setConfig(t, dir, "num_experts_per_tok", 8) }},
		{name: "rnd1 router against expert count", arch: "rnd1", wantErr: convert.ErrBadCheckpoint, want: "model.layers.0.mlp.gate.weight",
			edit: func(t *testing.T, dir string) { setConfig(t, dir, "num_experts", 3) }},
		{name: "rnd1 missing expert", arch: "rnd1", drop: []string{"model.layers.1.mlp.experts.3.up_proj.weight"},
			wantErr: convert.ErrBadCheckpoint, want: "no tensor model.layers.1.mlp.experts.3.up_proj.weight",
			edit: func(*testing.T, string) {}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			arch := cmp.Or(tc.arch, "dream")
			writeCheckpoint(t, dir, arch, "F32", false, tc.drop...)
			tc.edit(t, dir)
			var out strings.Builder
			_, err := convert.Convert(context.Background(), dir, &out, convert.Options{OutType: tc.outType})
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Convert = %v, want %v naming %q", err, tc.wantErr, tc.want)
			}
			t.Logf("Convert: %v", err)
		})
	}
}

// setConfig sets key in dir's config.json (nil deletes it).
func setConfig(t *testing.T, dir, key string, value any) {
	t.Helper()
	hp := map[string]any{}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &hp); err != nil {
		t.Fatal(err)
	}
	if value == nil {
		delete(hp, key)
	} else {
		hp[key] = value
	}
	writeJSON(t, dir, "config.json", hp)
}
