package convert_test

import (
	"context"
	"encoding/json"
	"errors"
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

// TestConvertLogits converts checkpoints written in Hugging Face's layout,
// loads them with engine.Load, and compares dfill's logits with a float64
// forward pass computed from the safetensors values directly. The
// tolerance is on the largest absolute difference, relative to the largest
// logit: 1e-3 for float weights (float32 arithmetic over two layers), 5e-2
// for Q8_0 (weights and activations rounded to 8 bits, about 0.4% each).
func TestConvertLogits(t *testing.T) {
	tests := []struct {
		name     string
		arch     string
		dtype    string // of the checkpoint
		outType  string
		tied     bool
		wantType gguf.Type
		tol      float64
	}{
		{name: "dream f32", arch: "dream", dtype: "F32", outType: "f32", wantType: gguf.TypeF32, tol: 1e-3},
		{name: "dream bf16 auto", arch: "dream", dtype: "BF16", outType: "", wantType: gguf.TypeBF16, tol: 1e-3},
		{name: "dream f32 tied", arch: "dream", dtype: "F32", outType: "f32", tied: true, wantType: gguf.TypeF32, tol: 1e-3},
		{name: "dream q8_0", arch: "dream", dtype: "F32", outType: "q8_0", wantType: gguf.TypeQ8_0, tol: 5e-2},
		{name: "llada f16 to f32", arch: "llada", dtype: "F16", outType: "f32", wantType: gguf.TypeF32, tol: 1e-3},
		{name: "llada f16 auto", arch: "llada", dtype: "F16", outType: "auto", wantType: gguf.TypeF16, tol: 1e-3},
		{name: "llada q8_0", arch: "llada", dtype: "BF16", outType: "q8_0", wantType: gguf.TypeQ8_0, tol: 5e-2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var (
				m     hfModel
				v     bpeVocab
				names func(string, int) string
			)
			if tc.arch == "dream" {
				m, v = writeDream(t, dir, tiny, tc.dtype, tc.tied)
				names = dreamName(tc.tied)
			} else {
				m, v = writeLLaDA(t, dir, tiny, tc.dtype)
				names = lladaName
			}
			path, res := convertTo(t, dir, tc.outType)
			if res.Arch != tc.arch || res.Type != tc.wantType {
				t.Errorf("Convert = arch %s type %s, want %s %s", res.Arch, res.Type, tc.arch, tc.wantType)
			}
			model, err := engine.Load(path, engine.LoadOptions{Threads: 2})
			if err != nil {
				t.Fatalf("engine.Load: %v", err)
			}
			defer model.Close()
			if q, _ := model.File().Tensor("blk.0.attn_q.weight"); q.Type != tc.wantType {
				t.Errorf("blk.0.attn_q.weight is %s, want %s", q.Type, tc.wantType)
			}
			if _, ok := model.File().Tensor("output.weight"); ok == tc.tied {
				t.Errorf("output.weight present = %v with tied embeddings %v", ok, tc.tied)
			}
			tokens := []int32{int32(v.id("<|endoftext|>")), 104, 101, 108, 108, 111, 32, 119, 259, 5, int32(v.id("<extra>")), 255}
			if tc.arch == "dream" {
				tokens[9] = int32(v.id("<|mask|>"))
			} else {
				tokens[9] = int32(v.id("<|mdm_mask|>"))
			}
			got, err := model.Logits(context.Background(), tokens)
			if err != nil {
				t.Fatal(err)
			}
			want := referenceLogits(m, tiny, names, tokens)
			var maxDiff, maxAbs float64
			for i := range want {
				for j, w := range want[i] {
					maxDiff = math.Max(maxDiff, math.Abs(float64(got[i*tiny.vocab+j])-w))
					maxAbs = math.Max(maxAbs, math.Abs(w))
				}
			}
			if maxAbs < 1 {
				t.Fatalf("reference logits are all below 1 (max %g): the test would not see an error", maxAbs)
			}
			if maxDiff > tc.tol*maxAbs {
				t.Errorf("logits differ from the reference by %g (largest logit %g, tolerance %g)", maxDiff, maxAbs, tc.tol*maxAbs)
			}
			t.Logf("max |dfill - reference| = %.3g of %.3g", maxDiff, maxAbs)
		})
	}
}

// TestConvertMetadata checks the keys convert_hf_to_gguf.py writes for each
// family and the vocabulary: tokens, types, merges and special ids.
func TestConvertMetadata(t *testing.T) {
	tests := []struct {
		name      string
		write     func(t *testing.T, dir string) bpeVocab
		arch      string
		pre       string
		shift     string // diffusion.shift_logits: "true", "false", "" for absent
		mask, bos string
		addBOS    bool
	}{
		{name: "dream", arch: "dream", pre: "qwen2", shift: "", mask: "<|mask|>", bos: "<|beginoftext|>", addBOS: false,
			write: func(t *testing.T, dir string) bpeVocab { _, v := writeDream(t, dir, tiny, "BF16", false); return v }},
		{name: "llada", arch: "llada", pre: "llama-bpe", shift: "false", mask: "<|mdm_mask|>", bos: "<|startoftext|>", addBOS: true,
			write: func(t *testing.T, dir string) bpeVocab { _, v := writeLLaDA(t, dir, tiny, "F32"); return v }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			v := tc.write(t, dir)
			path, _ := convertTo(t, dir, "f16")
			model, err := engine.Load(path, engine.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer model.Close()
			f := model.File()
			a := tc.arch
			for key, want := range map[string]uint64{
				a + ".block_count": uint64(tiny.layers), a + ".embedding_length": uint64(tiny.dim),
				a + ".feed_forward_length": uint64(tiny.ffn), a + ".attention.head_count": uint64(tiny.heads),
				a + ".attention.head_count_kv": uint64(tiny.kvHeads), "general.file_type": 1,
				"general.quantization_version": 2, "tokenizer.ggml.mask_token_id": uint64(v.id(tc.mask)),
				"tokenizer.ggml.bos_token_id": uint64(v.id(tc.bos)), "tokenizer.ggml.eos_token_id": uint64(v.id("<|endoftext|>")),
			} {
				if got, ok := f.Uint(key); !ok || got != want {
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
			if eps, _ := f.Float(a + ".attention.layer_norm_rms_epsilon"); math.Abs(eps-tiny.eps) > 1e-9 {
				t.Errorf("epsilon = %g, want %g", eps, tiny.eps)
			}
			if model.Config.ShiftLogits != (a == "dream") || model.Config.MaskID != int32(v.id(tc.mask)) {
				t.Errorf("engine config: shift %v mask %d", model.Config.ShiftLogits, model.Config.MaskID)
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
				{v.id(tc.mask), tokenizer.TypeControl, tc.mask},
				{v.id("<extra>"), tokenizer.TypeUserDefined, "<extra>"},
				{tiny.vocab - 1, tokenizer.TypeUnused, "[PAD271]"},
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
		edit    func(t *testing.T, dir string)
		outType string
		wantErr error
		want    string // in the message
	}{
		{name: "unknown architecture", wantErr: convert.ErrUnknownArch, want: "GPT2LMHeadModel",
			edit: func(t *testing.T, dir string) { setConfig(t, dir, "architectures", []string{"GPT2LMHeadModel"}) }},
		{name: "llada-moe", wantErr: convert.ErrUnsupported, want: "LLaDAMoEModelLM",
			edit: func(t *testing.T, dir string) { setConfig(t, dir, "architectures", []string{"LLaDAMoEModelLM"}) }},
		{name: "rnd1", wantErr: convert.ErrUnsupported, want: "RND1",
			edit: func(t *testing.T, dir string) { setConfig(t, dir, "architectures", []string{"RND1"}) }},
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
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeDream(t, dir, tiny, "F32", false)
			tc.edit(t, dir)
			var out strings.Builder
			_, err := convert.Convert(context.Background(), dir, &out, convert.Options{OutType: tc.outType})
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Convert = %v, want %v naming %q", err, tc.wantErr, tc.want)
			}
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
