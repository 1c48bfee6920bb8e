package engine

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dfill/dfill/engine/gguf"
)

// TestTypeFor checks the types TypeFor chooses on real model shapes
// against llama.cpp's src/llama-quant.cpp, followed by hand; each case says
// which of its rules gives the answer. umb(i, n) is its use_more_bits: i <
// n/8 || i >= 7n/8 || (i-n/8)%3 == 2.
func TestTypeFor(t *testing.T) {
	// Qwen2.5-0.5B (Dream's shape family): width 896 is no multiple of 256,
	// 4864 (ffn) is 19×256; 14 heads over 2 kv heads (GQA 7); tied output.
	qwen05 := MixModel{Arch: "dream", Layers: 24, Heads: 14, KVHeads: 2, Tied: true}
	// LLaDA-8B: the LLaMA block, 32 layers, no GQA, its own output.
	llada8 := MixModel{Arch: "llada", Layers: 32, Heads: 32, KVHeads: 32}
	// Qwen2.5-7B: width 3584 = 14×256, GQA 7, untied.
	qwen7 := MixModel{Arch: "dream", Layers: 28, Heads: 28, KVHeads: 4}
	// LLaMA-2/3 70B: 80 layers with GQA, llama.cpp's LLM_TYPE_70B.
	llama70 := MixModel{Arch: "llama", Layers: 80, Heads: 64, KVHeads: 8}
	falcon := MixModel{Arch: "falcon", Layers: 60, Heads: 64, KVHeads: 8}
	f32 := gguf.TypeF32
	tests := []struct {
		name   string
		mix    Mix
		tensor string
		dims   []uint64
		m      MixModel
		want   gguf.Type
	}{
		// Output rule: a tied token_embd is quantized as the output; 896 %
		// blck_size(Q4_K) != 0 → Q8_0.
		{"qwen0.5b q4_k_m token_embd", MixQ4_K_M, "token_embd.weight", []uint64{896, 151936}, qwen05, gguf.TypeQ8_0},
		// Default Q4_K; tensor_type_fallback: Q4_K → Q5_0 (the case).
		{"qwen0.5b q4_k_m attn_q", MixQ4_K_M, "blk.0.attn_q.weight", []uint64{896, 896}, qwen05, gguf.TypeQ5_0},
		{"qwen0.5b q4_k_m ffn_up", MixQ4_K_M, "blk.7.ffn_up.weight", []uint64{896, 4864}, qwen05, gguf.TypeQ5_0},
		// attn_v, Q4_K_M, umb(0, 24) (0 < 3) → Q6_K; fallback Q6_K → Q8_0.
		{"qwen0.5b q4_k_m attn_v 0", MixQ4_K_M, "blk.0.attn_v.weight", []uint64{896, 128}, qwen05, gguf.TypeQ8_0},
		// umb(4, 24) false ((4-3)%3 = 1) → Q4_K → Q5_0.
		{"qwen0.5b q4_k_m attn_v 4", MixQ4_K_M, "blk.4.attn_v.weight", []uint64{896, 128}, qwen05, gguf.TypeQ5_0},
		// umb(5, 24): (5-3)%3 = 2 → Q6_K → Q8_0.
		{"qwen0.5b q4_k_m attn_v 5", MixQ4_K_M, "blk.5.attn_v.weight", []uint64{896, 128}, qwen05, gguf.TypeQ8_0},
		// ffn_down rows are 4864 = 19×256: no fallback. umb(0) → Q6_K,
		// umb(4) false → Q4_K, umb(23) (23 ≥ 21) → Q6_K.
		{"qwen0.5b q4_k_m ffn_down 0", MixQ4_K_M, "blk.0.ffn_down.weight", []uint64{4864, 896}, qwen05, gguf.TypeQ6_K},
		{"qwen0.5b q4_k_m ffn_down 4", MixQ4_K_M, "blk.4.ffn_down.weight", []uint64{4864, 896}, qwen05, gguf.TypeQ4_K},
		{"qwen0.5b q4_k_m ffn_down 23", MixQ4_K_M, "blk.23.ffn_down.weight", []uint64{4864, 896}, qwen05, gguf.TypeQ6_K},
		// tensor_allows_quantization: 1-D tensors keep their type.
		{"qwen0.5b q4_k_m attn_norm", MixQ4_K_M, "blk.0.attn_norm.weight", []uint64{896}, qwen05, f32},
		{"qwen0.5b q4_k_m attn_q bias", MixQ4_K_M, "blk.0.attn_q.bias", []uint64{896}, qwen05, f32},
		// Q4_K_S: attn_v with i_attention_wv < 4 → Q5_K; fallback Q5_K → Q5_1.
		{"qwen0.5b q4_k_s attn_v 3", MixQ4_K_S, "blk.3.attn_v.weight", []uint64{896, 128}, qwen05, gguf.TypeQ5_1},
		// Q4_K_S: ffn_down with i < n/8 = 3 → Q5_K (4864 fits).
		{"qwen0.5b q4_k_s ffn_down 2", MixQ4_K_S, "blk.2.ffn_down.weight", []uint64{4864, 896}, qwen05, gguf.TypeQ5_K},
		{"qwen0.5b q4_k_s ffn_down 3", MixQ4_K_S, "blk.3.ffn_down.weight", []uint64{4864, 896}, qwen05, gguf.TypeQ4_K},
		// Q5_K → Q5_1 and Q6_K → Q8_0 by fallback.
		{"qwen0.5b q5_k_m attn_q", MixQ5_K_M, "blk.0.attn_q.weight", []uint64{896, 896}, qwen05, gguf.TypeQ5_1},
		{"qwen0.5b q6_k attn_q", MixQ6_K, "blk.0.attn_q.weight", []uint64{896, 896}, qwen05, gguf.TypeQ8_0},
		// Q2_K: attn_v with n_gqa ≥ 4 → Q4_K → Q5_0; attn_q Q2_K → Q4_0
		// (llama.cpp's current fallback; older releases used IQ4_NL).
		{"qwen0.5b q2_k attn_v", MixQ2_K, "blk.9.attn_v.weight", []uint64{896, 128}, qwen05, gguf.TypeQ5_0},
		{"qwen0.5b q2_k attn_q", MixQ2_K, "blk.9.attn_q.weight", []uint64{896, 896}, qwen05, gguf.TypeQ4_0},
		// Q3_K_M: attn_output → Q4_K → Q5_0.
		{"qwen0.5b q3_k_m attn_output", MixQ3_K_M, "blk.1.attn_output.weight", []uint64{896, 896}, qwen05, gguf.TypeQ5_0},
		// IQ4_XS → IQ4_NL by fallback; attn_v with n_gqa ≥ 4 → Q5_K → Q5_1.
		{"qwen0.5b iq4_xs attn_q", MixIQ4_XS, "blk.0.attn_q.weight", []uint64{896, 896}, qwen05, gguf.TypeIQ4_NL},
		{"qwen0.5b iq4_xs attn_v", MixIQ4_XS, "blk.8.attn_v.weight", []uint64{896, 128}, qwen05, gguf.TypeQ5_1},
		// Output rule for Q4_0: 896 % 32 == 0 and Q4_0 != Q8_0 → Q6_K, then
		// the fallback Q6_K → Q8_0.
		{"qwen0.5b q4_0 token_embd", MixQ4_0, "token_embd.weight", []uint64{896, 151936}, qwen05, gguf.TypeQ8_0},
		{"qwen0.5b q4_0 attn_q", MixQ4_0, "blk.0.attn_q.weight", []uint64{896, 896}, qwen05, gguf.TypeQ4_0},
		// Output rule: new_type == Q8_0 stays.
		{"qwen0.5b q8_0 token_embd", MixQ8_0, "token_embd.weight", []uint64{896, 151936}, qwen05, gguf.TypeQ8_0},
		// Float mixes: ggml_is_quantized(default) is false, so every
		// quantizable tensor is the default and nothing else changes.
		{"qwen0.5b f16 token_embd", MixF16, "token_embd.weight", []uint64{896, 151936}, qwen05, gguf.TypeF16},
		{"qwen0.5b f16 attn_norm", MixF16, "blk.0.attn_norm.weight", []uint64{896}, qwen05, f32},
		{"qwen0.5b bf16 ffn_down", MixBF16, "blk.0.ffn_down.weight", []uint64{4864, 896}, qwen05, gguf.TypeBF16},

		// Output rule, untied: output.weight → Q6_K; token_embd keeps Q4_K.
		{"llada8b q4_k_m output", MixQ4_K_M, "output.weight", []uint64{4096, 126464}, llada8, gguf.TypeQ6_K},
		{"llada8b q4_k_m token_embd", MixQ4_K_M, "token_embd.weight", []uint64{4096, 126464}, llada8, gguf.TypeQ4_K},
		// umb(6, 32): (6-4)%3 = 2 → Q6_K; umb(4, 32) false → Q4_K.
		{"llada8b q4_k_m attn_v 6", MixQ4_K_M, "blk.6.attn_v.weight", []uint64{4096, 4096}, llada8, gguf.TypeQ6_K},
		{"llada8b q4_k_m attn_v 4", MixQ4_K_M, "blk.4.attn_v.weight", []uint64{4096, 4096}, llada8, gguf.TypeQ4_K},
		// attn_k: rules only for 8 experts and IQ3 mixes.
		{"llada8b q4_k_m attn_k", MixQ4_K_M, "blk.0.attn_k.weight", []uint64{4096, 4096}, llada8, gguf.TypeQ4_K},
		{"llada8b q4_k_m ffn_down 31", MixQ4_K_M, "blk.31.ffn_down.weight", []uint64{12288, 4096}, llada8, gguf.TypeQ6_K},
		// Q3_K_M: attn_v i < 2 → Q5_K else Q4_K; ffn_down i < n/16 = 2 →
		// Q5_K, else (not falcon) Q4_K.
		{"llada8b q3_k_m attn_v 1", MixQ3_K_M, "blk.1.attn_v.weight", []uint64{4096, 4096}, llada8, gguf.TypeQ5_K},
		{"llada8b q3_k_m attn_v 2", MixQ3_K_M, "blk.2.attn_v.weight", []uint64{4096, 4096}, llada8, gguf.TypeQ4_K},
		{"llada8b q3_k_m ffn_down 1", MixQ3_K_M, "blk.1.ffn_down.weight", []uint64{12288, 4096}, llada8, gguf.TypeQ5_K},
		{"llada8b q3_k_m ffn_down 2", MixQ3_K_M, "blk.2.ffn_down.weight", []uint64{12288, 4096}, llada8, gguf.TypeQ4_K},
		{"llada8b q3_k_m attn_q", MixQ3_K_M, "blk.2.attn_q.weight", []uint64{4096, 4096}, llada8, gguf.TypeQ3_K},
		// Q3_K_L: attn_v, ffn_down and attn_output → Q5_K.
		{"llada8b q3_k_l attn_output", MixQ3_K_L, "blk.9.attn_output.weight", []uint64{4096, 4096}, llada8, gguf.TypeQ5_K},
		// Q2_K: attn_v with n_gqa 1 → Q3_K; ffn_down → Q3_K.
		{"llada8b q2_k attn_v", MixQ2_K, "blk.0.attn_v.weight", []uint64{4096, 4096}, llada8, gguf.TypeQ3_K},
		{"llada8b q2_k ffn_down", MixQ2_K, "blk.0.ffn_down.weight", []uint64{12288, 4096}, llada8, gguf.TypeQ3_K},
		// IQ4_NL: ffn_down with i < n/8 = 4 and no imatrix → Q5_K; attn_v
		// with n_gqa 1 keeps IQ4_NL.
		{"llada8b iq4_nl ffn_down 3", MixIQ4_NL, "blk.3.ffn_down.weight", []uint64{12288, 4096}, llada8, gguf.TypeQ5_K},
		{"llada8b iq4_nl attn_v", MixIQ4_NL, "blk.0.attn_v.weight", []uint64{4096, 4096}, llada8, gguf.TypeIQ4_NL},
		// Q5_K_S, Q6_K: no rule but the output's.
		{"llada8b q5_k_s attn_v", MixQ5_K_S, "blk.0.attn_v.weight", []uint64{4096, 4096}, llada8, gguf.TypeQ5_K},
		{"llada8b q6_k output", MixQ6_K, "output.weight", []uint64{4096, 126464}, llada8, gguf.TypeQ6_K},

		// IQ4_XS with n_gqa 7: attn_v → Q5_K, and 3584 = 14×256 fits.
		{"qwen7b iq4_xs attn_v", MixIQ4_XS, "blk.0.attn_v.weight", []uint64{3584, 512}, qwen7, gguf.TypeQ5_K},
		// umb(3, 28) false ((3-3)%3 = 0) → Q5_K; umb(5, 28) → Q6_K.
		{"qwen7b q5_k_m attn_v 3", MixQ5_K_M, "blk.3.attn_v.weight", []uint64{3584, 512}, qwen7, gguf.TypeQ5_K},
		{"qwen7b q5_k_m attn_v 5", MixQ5_K_M, "blk.5.attn_v.weight", []uint64{3584, 512}, qwen7, gguf.TypeQ6_K},

		// LLM_TYPE_70B: attn_v of Q3_K or Q4_K → Q5_K; umb(10, 80) false.
		{"llama70b q4_k_m attn_v", MixQ4_K_M, "blk.10.attn_v.weight", []uint64{8192, 1024}, llama70, gguf.TypeQ5_K},
		// Falcon: output always Q8_0; ffn_down i < n/16 → Q6_K in Q4_K_M.
		{"falcon q4_k_m output", MixQ4_K_M, "output.weight", []uint64{8192, 65024}, falcon, gguf.TypeQ8_0},
		{"falcon q4_k_m ffn_down", MixQ4_K_M, "blk.0.ffn_down.weight", []uint64{32768, 8192}, falcon, gguf.TypeQ6_K},

		// A fallback that fits no 32-block either: F16.
		{"width 100 q4_k", MixQ4_K_M, "blk.0.attn_q.weight", []uint64{100, 100}, qwen05, gguf.TypeF16},
		// A trailing dimension of 1 does not count (ggml_n_dims).
		{"[896 1] stays", MixQ4_K_M, "blk.0.ffn_gate.weight", []uint64{896, 1}, qwen05, f32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := TypeFor(tt.mix, tt.tensor, tt.dims, gguf.TypeF32, tt.m)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("TypeFor(%s, %s %v) = %s, want %s", tt.mix, tt.tensor, tt.dims, got, tt.want)
			}
		})
	}
}

func TestTypeForErrors(t *testing.T) {
	m := MixModel{Arch: "llada", Layers: 2, Heads: 4, KVHeads: 4}
	tests := []struct {
		name string
		mix  Mix
		dims []uint64
		want error
	}{
		// tensor_type_fallback defines nothing for Q8_0 or Q4_0.
		{"q8_0 width 100", MixQ8_0, []uint64{100, 64}, ErrNoFallback},
		{"q4_0 width 48", MixQ4_0, []uint64{48, 64}, ErrNoFallback},
		{"unknown mix", Mix(99), []uint64{256, 64}, ErrBadOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := TypeFor(tt.mix, "blk.0.attn_q.weight", tt.dims, gguf.TypeF32, m)
			if !errors.Is(err, tt.want) {
				t.Errorf("TypeFor = %s, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestParseMix(t *testing.T) {
	for _, name := range MixNames() {
		m, err := ParseMix(name)
		if err != nil || m.String() != name {
			t.Errorf("ParseMix(%q) = %v, %v", name, m, err)
		}
	}
	if m, err := ParseMix("q4_k_m"); err != nil || m != MixQ4_K_M || uint32(m) != 15 {
		t.Errorf(`ParseMix("q4_k_m") = %d, %v; want 15 (LLAMA_FTYPE_MOSTLY_Q4_K_M)`, uint32(m), err)
	}
	if _, err := ParseMix("q4_k_x"); !errors.Is(err, ErrBadOptions) {
		t.Errorf(`ParseMix("q4_k_x") = %v, want ErrBadOptions`, err)
	}
}

// quantizeSpec is a qwen-like random shape whose width (160) is whole
// 32-blocks but no multiple of 256, so the K mixes fall back, with GQA 5
// (≥ 4, the IQ4 and Q2_K attn_v rules) and ffn rows (512) that stay K.
func quantizeSpec(arch Arch) Spec {
	return Spec{Arch: arch, Layers: 4, Dim: 160, Heads: 5, KVHeads: 1, FFN: 512, Vocab: 320, Context: 256,
		RopeBase: 10000, Eps: 1e-6, Tied: arch == ArchDream, Type: gguf.TypeF32, Seed: 11}
}

// writeTemp writes data to a file in t's temp dir and returns its path.
func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// quantizeFile quantizes the GGUF at path to mix and returns the result's
// path and the quantizer, whose largest buffers the caller may check.
func quantizeFile(t *testing.T, path string, mix Mix) (string, *quantizer) {
	t.Helper()
	in, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	q, err := newQuantizer(in, mix)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := q.write(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	return writeTemp(t, mix.String()+".gguf", out.Bytes()), q
}

// TestQuantize quantizes a random F32 model to several mixes, loads each,
// and checks its tensor types, its metadata, the buffers it held, and that
// its logits stay within the mix's expected error of the F32 model's.
func TestQuantize(t *testing.T) {
	tokens := []int32{5, 77, 300, 12, 199, 3, 64, 250}
	// Relative RMS error of the logits against the F32 model's, through 4
	// random layers; limits ~30% above the larger of what was measured on
	// the two archs (in the comment).
	tol := map[Mix]float64{
		MixF16:    1.5e-3, // 1.1e-3
		MixBF16:   1.1e-2, // 8.2e-3
		MixQ8_0:   4e-2,   // 3.1e-2
		MixQ6_K:   4.6e-2, // 3.5e-2: mostly Q8_0, the fallback at width 160
		MixQ5_K_M: 0.21,   // 0.16: Q5_1 where 160 wide
		MixQ4_K_M: 0.24,   // 0.18: Q5_0 where 160 wide
		MixQ4_K_S: 0.24,   // 0.18
		MixQ4_0:   0.43,   // 0.33
		MixIQ4_XS: 0.41,   // 0.32
		MixQ3_K_M: 0.4,    // 0.30
		MixQ2_K:   0.48,   // 0.37: Q4_0 where 160 wide
	}
	// Types derived by hand from llama-quant.cpp for this shape (4 layers:
	// umb(i, 4) is true for i = 2, 3; width 160 falls back).
	spot := map[Mix]map[string]gguf.Type{
		MixQ4_K_M: {
			"blk.0.attn_q.weight":    gguf.TypeQ5_0, // Q4_K → Q5_0
			"blk.2.attn_v.weight":    gguf.TypeQ8_0, // umb → Q6_K → Q8_0
			"blk.1.attn_v.weight":    gguf.TypeQ5_0, // Q4_K → Q5_0
			"blk.3.ffn_down.weight":  gguf.TypeQ6_K, // umb, rows of 512
			"blk.1.ffn_down.weight":  gguf.TypeQ4_K,
			"blk.0.attn_norm.weight": gguf.TypeF32,
		},
		MixQ2_K: {
			"blk.0.attn_v.weight":   gguf.TypeQ5_0, // n_gqa 5 ≥ 4 → Q4_K → Q5_0
			"blk.0.ffn_down.weight": gguf.TypeQ3_K,
			"blk.0.ffn_up.weight":   gguf.TypeQ4_0, // Q2_K → Q4_0
		},
		MixIQ4_XS: {
			"blk.0.attn_q.weight":   gguf.TypeIQ4_NL,
			"blk.1.attn_v.weight":   gguf.TypeQ5_1, // n_gqa ≥ 4 → Q5_K → Q5_1
			"blk.1.ffn_down.weight": gguf.TypeIQ4_XS,
		},
	}
	for _, arch := range []Arch{ArchDream, ArchLLaDA} {
		s := quantizeSpec(arch)
		var src bytes.Buffer
		if err := WriteRandom(&src, s); err != nil {
			t.Fatal(err)
		}
		srcPath := writeTemp(t, "f32.gguf", src.Bytes())
		ref, err := Load(srcPath, LoadOptions{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		want, err := ref.Logits(context.Background(), tokens)
		ref.Close()
		if err != nil {
			t.Fatal(err)
		}
		w64 := make([][]float64, len(tokens))
		for i := range w64 {
			for _, v := range want[i*s.Vocab : (i+1)*s.Vocab] {
				w64[i] = append(w64[i], float64(v))
			}
		}
		m := MixModel{Arch: string(arch), Layers: s.Layers, Heads: s.Heads, KVHeads: s.KVHeads, Tied: s.Tied}
		for mix, limit := range tol {
			t.Run(string(arch)+"/"+mix.String(), func(t *testing.T) {
				path, q := quantizeFile(t, srcPath, mix)
				got, err := Load(path, LoadOptions{Threads: 1})
				if err != nil {
					t.Fatal(err)
				}
				defer got.Close()
				f := got.File()
				if v, _ := f.Uint("general.file_type"); v != uint64(mix) {
					t.Errorf("general.file_type = %d, want %d", v, uint32(mix))
				}
				if v, _ := f.Uint("general.quantization_version"); v != 2 {
					t.Errorf("general.quantization_version = %d, want 2", v)
				}
				var largest uint64
				widest := 0
				for _, ti := range f.Tensors {
					wantType, err := TypeFor(mix, ti.Name, ti.Dims, gguf.TypeF32, m)
					if err != nil {
						t.Fatal(err)
					}
					if ti.Type != wantType {
						t.Errorf("%s is %s, TypeFor says %s", ti.Name, ti.Type, wantType)
					}
					if w, ok := spot[mix][ti.Name]; ok && ti.Type != w {
						t.Errorf("%s is %s, llama.cpp makes it %s", ti.Name, ti.Type, w)
					}
					largest = max(largest, uint64(ti.Size()))
					if ti.Type != gguf.TypeF32 {
						widest = max(widest, int(ti.Dims[0]))
					}
				}
				// Memory: fill held one output tensor at a time and one
				// row of float32 per worker, never the model.
				if uint64(q.maxFill) != largest {
					t.Errorf("largest buffer filled %d bytes, want the largest tensor's %d", q.maxFill, largest)
				}
				if q.maxRow != widest {
					t.Errorf("largest float32 row %d elements, want the widest converted row's %d", q.maxRow, widest)
				}
				logits, err := got.Logits(context.Background(), tokens)
				if err != nil {
					t.Fatal(err)
				}
				e := relRMS(logits, w64)
				t.Logf("%s: relative RMS error %.2e of F32", mix, e)
				if e > limit {
					t.Errorf("%s: relative RMS error %.2e of F32, want ≤ %.1e", mix, e, limit)
				}
			})
		}
	}
}

// TestQuantizeCopiesSameType checks that a tensor already of its new type
// is copied byte for byte: Q8_0 quantized to Q8_0 again is the same file
// but for nothing.
func TestQuantizeCopiesSameType(t *testing.T) {
	var src bytes.Buffer
	if err := WriteRandom(&src, quantizeSpec(ArchLLaDA)); err != nil {
		t.Fatal(err)
	}
	once, _ := quantizeFile(t, writeTemp(t, "f32.gguf", src.Bytes()), MixQ8_0)
	twice, _ := quantizeFile(t, once, MixQ8_0)
	a, err := os.ReadFile(once)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(twice)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("Q8_0 requantized to Q8_0 differs: %d bytes, then %d", len(a), len(b))
	}
}

func TestQuantizeCancelled(t *testing.T) {
	var src bytes.Buffer
	if err := WriteRandom(&src, quantizeSpec(ArchDream)); err != nil {
		t.Fatal(err)
	}
	in, err := gguf.Parse(src.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	if _, err := Quantize(ctx, in, &out, MixQ4_K_M); !errors.Is(err, context.Canceled) {
		t.Errorf("Quantize with a cancelled ctx = %v, want context.Canceled", err)
	}
}

// TestQuantizeExperts quantizes random llada-moe and rnd1 models to Q4_K_M
// and checks the types llama.cpp gives their tensors — the router kept F32,
// the stacked experts quantized like a dense FFN (ffn_down_exps at Q6_K in
// use_more_bits layers), and, for exactly 8 experts, attn_v and attn_k at
// Q8_0 and attn_output at Q5_K — then loads each file and denoises with it.
func TestQuantizeExperts(t *testing.T) {
	for _, tc := range []struct {
		arch    Arch
		experts int
		want    map[string]gguf.Type
	}{
		{ArchLLaDAMoE, 8, map[string]gguf.Type{
			"blk.0.ffn_gate_inp.weight": gguf.TypeF32, "blk.0.attn_q_norm.weight": gguf.TypeF32,
			"blk.0.attn_v.weight": gguf.TypeQ8_0, "blk.0.attn_k.weight": gguf.TypeQ8_0, "blk.0.attn_output.weight": gguf.TypeQ5_K,
			"blk.0.attn_q.weight": gguf.TypeQ4_K, "blk.0.ffn_gate_exps.weight": gguf.TypeQ4_K, "blk.0.ffn_up_exps.weight": gguf.TypeQ4_K,
			"blk.0.ffn_down_exps.weight": gguf.TypeQ4_K, "blk.1.ffn_down_exps.weight": gguf.TypeQ6_K,
		}},
		{ArchRND1, 16, map[string]gguf.Type{
			"blk.0.ffn_gate_inp.weight": gguf.TypeF32, "blk.0.attn_k.weight": gguf.TypeQ4_K,
			"blk.0.attn_v.weight": gguf.TypeQ4_K, "blk.1.attn_v.weight": gguf.TypeQ6_K, "blk.0.attn_output.weight": gguf.TypeQ4_K,
			"blk.0.ffn_down_exps.weight": gguf.TypeQ4_K, "blk.1.ffn_down_exps.weight": gguf.TypeQ6_K,
		}},
	} {
		t.Run(string(tc.arch), func(t *testing.T) {
			s := testSpec(tc.arch, gguf.TypeF32)
			s.Experts = tc.experts
			var src bytes.Buffer
			if err := WriteRandom(&src, s); err != nil {
				t.Fatal(err)
			}
			path, _ := quantizeFile(t, writeTemp(t, "f32.gguf", src.Bytes()), MixQ4_K_M)
			m, err := Load(path, LoadOptions{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			for name, want := range tc.want {
				if ti, ok := m.File().Tensor(name); !ok || ti.Type != want {
					t.Errorf("%s: %s (present %v), want %s", name, ti.Type, ok, want)
				}
			}
			if c := tinyDenoise(t, m, Options{Lengths: []int{8}, Steps: 4}); len(c) != 1 || len(c[0].Tokens) != 8 {
				t.Errorf("denoise: %+v", c)
			}
		})
	}
}
