package tokenizer

import (
	"fmt"

	"github.com/dfill/dfill/engine/gguf"
)

// FromGGUF reads the tokenizer.ggml.* keys of f (as llama.cpp writes
// them) into a tokenizer configuration. Its slices share f's metadata.
func FromGGUF(f *gguf.File) (Config, error) {
	cfg := Config{BOS: -1, EOS: -1, PAD: -1, Mask: -1, EOT: -1, Expand: -1}
	cfg.Model, _ = f.String("tokenizer.ggml.model")
	cfg.Pre, _ = f.String("tokenizer.ggml.pre")
	var ok bool
	if cfg.Tokens, ok = f.Strings("tokenizer.ggml.tokens"); !ok {
		return cfg, fmt.Errorf("missing tokenizer.ggml.tokens")
	}
	cfg.Types, _ = f.Int32s("tokenizer.ggml.token_type")
	cfg.Merges, _ = f.Strings("tokenizer.ggml.merges")
	for key, dst := range map[string]*int32{
		"tokenizer.ggml.bos_token_id":     &cfg.BOS,
		"tokenizer.ggml.eos_token_id":     &cfg.EOS,
		"tokenizer.ggml.padding_token_id": &cfg.PAD,
		"tokenizer.ggml.mask_token_id":    &cfg.Mask,
		"tokenizer.ggml.eot_token_id":     &cfg.EOT,
	} {
		if v, ok := f.Int(key); ok {
			*dst = int32(v)
		}
	}
	cfg.AddBOS, _ = f.Bool("tokenizer.ggml.add_bos_token")
	for i, t := range cfg.Tokens {
		if t == ExpandToken {
			cfg.Expand = int32(i)
		}
	}
	return cfg, nil
}

// Metadata returns cfg as the tokenizer.ggml.* keys FromGGUF reads (as
// llama.cpp writes them): what every GGUF dfill writes holds.
func (cfg Config) Metadata() []gguf.KV {
	kv := []gguf.KV{
		{Key: "tokenizer.ggml.model", Value: gguf.Val(cfg.Model)},
		{Key: "tokenizer.ggml.pre", Value: gguf.Val(cfg.Pre)},
		{Key: "tokenizer.ggml.tokens", Value: gguf.Val(cfg.Tokens)},
		{Key: "tokenizer.ggml.token_type", Value: gguf.Val(cfg.Types)},
		{Key: "tokenizer.ggml.merges", Value: gguf.Val(cfg.Merges)},
		{Key: "tokenizer.ggml.add_bos_token", Value: gguf.Val(cfg.AddBOS)},
	}
	for _, s := range []struct {
		key string
		id  int32
	}{
		{"tokenizer.ggml.bos_token_id", cfg.BOS},
		{"tokenizer.ggml.eos_token_id", cfg.EOS},
		{"tokenizer.ggml.padding_token_id", cfg.PAD},
		{"tokenizer.ggml.mask_token_id", cfg.Mask},
		{"tokenizer.ggml.eot_token_id", cfg.EOT},
	} {
		if s.id >= 0 {
			kv = append(kv, gguf.KV{Key: s.key, Value: gguf.Val(uint32(s.id))})
		}
	}
	return kv
}
