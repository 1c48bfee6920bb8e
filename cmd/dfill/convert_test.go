package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/dfill/dfill/engine"
	"github.com/dfill/dfill/engine/tokenizer"
)

// writeTinyDream writes a one-layer Dream checkpoint to dir as Hugging
// Face lays one out unsharded: config.json, tokenizer.json,
// tokenizer_config.json and model.safetensors. (engine/convert's tests
// cover the families, sharding and the logits; this one the command.)
func writeTinyDream(t *testing.T, dir string, arch string) {
	t.Helper()
	const dim, ffn, layers, vocab = 32, 64, 1, 260
	writeJSONFile(t, filepath.Join(dir, "config.json"), map[string]any{
		"architectures": []string{arch}, "hidden_size": dim, "intermediate_size": ffn, "num_attention_heads": 2,
		"num_key_value_heads": 1, "num_hidden_layers": layers, "max_position_embeddings": 512, "rope_theta": 10000.0,
		"rms_norm_eps": 1e-6, "vocab_size": vocab, "tie_word_embeddings": true, "mask_token_id": 257, "model_type": "Dream",
	})
	vocabMap := map[string]int{}
	for b := 0; b < 256; b++ {
		vocabMap[tokenizer.EncodeBytes(string([]byte{byte(b)}))] = b
	}
	writeJSONFile(t, filepath.Join(dir, "tokenizer.json"), map[string]any{
		"added_tokens": []any{
			map[string]any{"id": 256, "content": "<|endoftext|>", "special": true},
			map[string]any{"id": 257, "content": "<|mask|>", "special": true},
		},
		"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
		"model":         map[string]any{"type": "BPE", "vocab": vocabMap, "merges": []string{}},
	})
	writeJSONFile(t, filepath.Join(dir, "tokenizer_config.json"), map[string]any{"eos_token": "<|endoftext|>", "mask_token": "<|mask|>"})

	type tensor struct {
		name  string
		shape []int
	}
	tensors := []tensor{{"model.embed_tokens.weight", []int{vocab, dim}}, {"model.norm.weight", []int{dim}}}
	for _, n := range []struct {
		leaf  string
		shape []int
	}{
		{"input_layernorm.weight", []int{dim}}, {"post_attention_layernorm.weight", []int{dim}},
		{"self_attn.q_proj.weight", []int{dim, dim}}, {"self_attn.q_proj.bias", []int{dim}},
		{"self_attn.k_proj.weight", []int{dim / 2, dim}}, {"self_attn.k_proj.bias", []int{dim / 2}},
		{"self_attn.v_proj.weight", []int{dim / 2, dim}}, {"self_attn.v_proj.bias", []int{dim / 2}},
		{"self_attn.o_proj.weight", []int{dim, dim}},
		{"mlp.gate_proj.weight", []int{ffn, dim}}, {"mlp.up_proj.weight", []int{ffn, dim}}, {"mlp.down_proj.weight", []int{dim, ffn}},
	} {
		tensors = append(tensors, tensor{"model.layers.0." + n.leaf, n.shape})
	}
	header := map[string]any{}
	var data []byte
	for i, x := range tensors {
		start := len(data)
		n := 1
		for _, d := range x.shape {
			n *= d
		}
		for j := 0; j < n; j++ {
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(float32(math.Sin(float64(i*7919+j)))/4))
		}
		header[x.name] = map[string]any{"dtype": "F32", "shape": x.shape, "data_offsets": []int{start, len(data)}}
	}
	hdr, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	file := append(binary.LittleEndian.AppendUint64(nil, uint64(len(hdr))), hdr...)
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), append(file, data...), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestModelConvert runs `dfill model convert` as a user types it: a
// checkpoint converts to a GGUF that loads, and a failure exits non-zero,
// says why on stderr and leaves no file behind.
func TestModelConvert(t *testing.T) {
	tests := []struct {
		name    string
		arch    string
		args    []string // after DIR
		code    int
		stderr  string // in stderr
		outType string // of blk.0.attn_q.weight, when converted
	}{
		{name: "auto", arch: "DreamModel", code: 0, outType: "F16"},
		{name: "q8_0", arch: "DreamModel", args: []string{"--outtype", "q8_0"}, code: 0, outType: "Q8_0"},
		{name: "unknown architecture", arch: "MistralForCausalLM", code: 1, stderr: "MistralForCausalLM"},
		{name: "bad outtype", arch: "DreamModel", args: []string{"--outtype", "q3"}, code: 2, stderr: "q3"},
		{name: "no --out", arch: "DreamModel", args: []string{"--no-out"}, code: 2, stderr: "--out is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, outDir := t.TempDir(), t.TempDir()
			writeTinyDream(t, dir, tc.arch)
			out := filepath.Join(outDir, "m.gguf")
			args := []string{"model", "convert", dir, "--out", out}
			if len(tc.args) > 0 && tc.args[0] == "--no-out" {
				args = args[:3]
			} else {
				args = append(args, tc.args...)
			}
			if !runWrites(t, args, outDir, tc.code, tc.stderr) {
				return
			}
			m, err := engine.Load(out, engine.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.Config.Arch != engine.ArchDream || m.Config.MaskID != 257 || m.Name() != filepath.Base(dir) {
				t.Errorf("loaded %s mask %d name %q", m.Config.Arch, m.Config.MaskID, m.Name())
			}
			if q, _ := m.File().Tensor("blk.0.attn_q.weight"); q.Type.String() != tc.outType {
				t.Errorf("blk.0.attn_q.weight is %s, want %s", q.Type, tc.outType)
			}
			if _, err := m.Logits(context.Background(), []int32{104, 105, 257}); err != nil {
				t.Errorf("Logits: %v", err)
			}
		})
	}
}
