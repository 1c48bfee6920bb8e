package engine

import (
	"fmt"

	"github.com/dfill/dfill/engine/gguf"
)

// Arch names a model architecture as general.architecture spells it.
type Arch string

// The architectures dfill runs.
const (
	ArchDream Arch = "dream" // Qwen2 block, q/k/v bias, NEOX RoPE, shifted logits
	ArchLLaDA Arch = "llada" // LLaMA block, no biases, normal RoPE, unshifted logits
)

// Config holds a model's hyperparameters, read from GGUF metadata.
type Config struct {
	Arch        Arch
	Name        string
	Layers      int
	Dim         int // embedding_length
	Heads       int
	KVHeads     int
	HeadDim     int
	FFN         int // feed_forward_length
	Vocab       int
	Context     int // context_length the model was trained with
	RopeBase    float64
	Eps         float32 // RMSNorm epsilon
	ShiftLogits bool    // the logit at position i predicts token i+1 (dream)
	MaskID      int32
}

// NeoxRoPE reports whether RoPE pairs dimension i with i+HeadDim/2 (dream)
// rather than adjacent dimensions (llada).
func (c Config) NeoxRoPE() bool { return c.Arch == ArchDream }

// HasQKVBias reports whether the attention projections carry biases.
func (c Config) HasQKVBias() bool { return c.Arch == ArchDream }

// ConfigFromGGUF reads a model's hyperparameters from f's metadata, as
// llama.cpp's diffusion support and Metadata write them: the one reader of
// them, for Load and for the trainer's files. name names the file in
// errors. Vocab is left 0: Load takes it from token_embd.weight.
func ConfigFromGGUF(f *gguf.File, name string) (Config, error) {
	archName, ok := f.String("general.architecture")
	if !ok {
		return Config{}, fmt.Errorf("%w: %s: no general.architecture", ErrBadModel, name)
	}
	arch := Arch(archName)
	if arch != ArchDream && arch != ArchLLaDA {
		return Config{}, fmt.Errorf("%w: %s: %q (dfill runs dream and llada)", ErrUnsupportedArch, name, archName)
	}
	c := Config{Arch: arch}
	c.Name, _ = f.String("general.name")

	need := func(key string, dst *int) error {
		v, ok := f.Uint(string(arch) + "." + key)
		if !ok {
			return fmt.Errorf("%w: %s: missing %s.%s", ErrBadModel, name, arch, key)
		}
		if v == 0 || v > 1<<24 {
			return fmt.Errorf("%w: %s: %s.%s = %d is out of range", ErrBadModel, name, arch, key, v)
		}
		*dst = int(v)
		return nil
	}
	for _, k := range []struct {
		key string
		dst *int
	}{
		{"block_count", &c.Layers},
		{"embedding_length", &c.Dim},
		{"feed_forward_length", &c.FFN},
		{"attention.head_count", &c.Heads},
		{"context_length", &c.Context},
	} {
		if err := need(k.key, k.dst); err != nil {
			return Config{}, err
		}
	}
	c.KVHeads = c.Heads
	if v, ok := f.Uint(string(arch) + ".attention.head_count_kv"); ok {
		c.KVHeads = int(v)
	}
	if c.KVHeads <= 0 || c.Heads%c.KVHeads != 0 {
		return Config{}, fmt.Errorf("%w: %s: head_count %d is not a multiple of head_count_kv %d", ErrBadModel, name, c.Heads, c.KVHeads)
	}
	if c.Dim%c.Heads != 0 {
		return Config{}, fmt.Errorf("%w: %s: embedding_length %d is not a multiple of head_count %d", ErrBadModel, name, c.Dim, c.Heads)
	}
	c.HeadDim = c.Dim / c.Heads
	if v, ok := f.Uint(string(arch) + ".attention.key_length"); ok && v > 0 {
		c.HeadDim = int(v)
	}
	if c.HeadDim%2 != 0 {
		return Config{}, fmt.Errorf("%w: %s: head dimension %d is odd; RoPE needs it even", ErrBadModel, name, c.HeadDim)
	}
	c.RopeBase = 10000
	if v, ok := f.Float(string(arch) + ".rope.freq_base"); ok && v > 0 {
		c.RopeBase = v
	}
	c.Eps = 1e-6
	if v, ok := f.Float(string(arch) + ".attention.layer_norm_rms_epsilon"); ok && v > 0 {
		c.Eps = float32(v)
	}
	// diffusion.shift_logits has no arch prefix; absent means true for dream.
	c.ShiftLogits = arch == ArchDream
	if v, ok := f.Bool("diffusion.shift_logits"); ok {
		c.ShiftLogits = v
	}
	if causal, ok := f.Bool(string(arch) + ".attention.causal"); ok && causal {
		return Config{}, fmt.Errorf("%w: %s: %s.attention.causal is true; diffusion models attend both ways", ErrBadModel, name, arch)
	}
	mask, ok := f.Int("tokenizer.ggml.mask_token_id")
	if !ok {
		return Config{}, fmt.Errorf("%w: %s: missing tokenizer.ggml.mask_token_id", ErrBadModel, name)
	}
	c.MaskID = int32(mask)
	return c, nil
}

// metadata returns the GGUF keys that describe c, as ConfigFromGGUF reads them.
func (c Config) metadata() []gguf.KV {
	a := string(c.Arch)
	kv := []gguf.KV{
		{Key: "general.architecture", Value: gguf.Val(a)},
		{Key: "general.name", Value: gguf.Val(c.Name)},
		{Key: a + ".block_count", Value: gguf.Val(uint32(c.Layers))},
		{Key: a + ".context_length", Value: gguf.Val(uint32(c.Context))},
		{Key: a + ".embedding_length", Value: gguf.Val(uint32(c.Dim))},
		{Key: a + ".feed_forward_length", Value: gguf.Val(uint32(c.FFN))},
		{Key: a + ".attention.head_count", Value: gguf.Val(uint32(c.Heads))},
		{Key: a + ".attention.head_count_kv", Value: gguf.Val(uint32(c.KVHeads))},
		{Key: a + ".rope.freq_base", Value: gguf.Val(float32(c.RopeBase))},
		{Key: a + ".attention.layer_norm_rms_epsilon", Value: gguf.Val(c.Eps)},
		{Key: a + ".attention.causal", Value: gguf.Val(false)},
		{Key: a + ".vocab_size", Value: gguf.Val(uint32(c.Vocab))},
		{Key: "diffusion.shift_logits", Value: gguf.Val(c.ShiftLogits)},
	}
	if c.HeadDim != c.Dim/c.Heads {
		kv = append(kv, gguf.KV{Key: a + ".attention.key_length", Value: gguf.Val(uint32(c.HeadDim))},
			gguf.KV{Key: a + ".attention.value_length", Value: gguf.Val(uint32(c.HeadDim))})
	}
	return kv
}
