package engine

import (
	"fmt"

	"github.com/dfill/dfill/engine/gguf"
)

// Arch names a model architecture as general.architecture spells it.
type Arch string

// The architectures dfill runs.
const (
	ArchDream    Arch = "dream"     // Qwen2 block, q/k/v bias, NEOX RoPE, shifted logits
	ArchLLaDA    Arch = "llada"     // LLaMA block, no biases, normal RoPE, unshifted logits
	ArchLLaDAMoE Arch = "llada-moe" // LLaDA-MoE: q/k RMS norms, NEOX RoPE, routed experts, unshifted logits
	ArchRND1     Arch = "rnd1"      // RND1: the Qwen3-MoE block (q/k norms, NEOX RoPE, routed experts with renormalised weights)
)

// Archs lists the architectures dfill runs, in the order messages name them.
var Archs = []Arch{ArchDream, ArchLLaDA, ArchLLaDAMoE, ArchRND1}

// known reports whether dfill runs a.
func (a Arch) known() bool {
	for _, k := range Archs {
		if a == k {
			return true
		}
	}
	return false
}

// archList is Archs for messages: "dream, llada, llada-moe or rnd1".
func archList() string {
	s := ""
	for i, a := range Archs {
		switch {
		case i == 0:
		case i == len(Archs)-1:
			s += " or "
		default:
			s += ", "
		}
		s += string(a)
	}
	return s
}

// Config holds a model's hyperparameters, read from GGUF metadata.
type Config struct {
	Arch        Arch
	Name        string
	Layers      int
	Dim         int // embedding_length
	Heads       int
	KVHeads     int
	HeadDim     int
	FFN         int // feed_forward_length (a dense block's FFN)
	Experts     int // expert_count: routed experts per block (0: dense FFN)
	ExpertsUsed int // expert_used_count: experts each token is routed to
	ExpertFFN   int // expert_feed_forward_length: one expert's FFN width
	Vocab       int
	Context     int // context_length the model was trained with
	RopeBase    float64
	Eps         float32 // RMSNorm epsilon
	ShiftLogits bool    // the logit at position i predicts token i+1 (dream)
	MaskID      int32
}

// NeoxRoPE reports whether RoPE pairs dimension i with i+HeadDim/2 (dream,
// llada-moe, rnd1: llama.cpp's LLAMA_ROPE_TYPE_NEOX) rather than adjacent
// dimensions (llada).
func (c Config) NeoxRoPE() bool { return c.Arch != ArchLLaDA }

// HasQKVBias reports whether the attention projections carry biases.
func (c Config) HasQKVBias() bool { return c.Arch == ArchDream }

// HasQKNorm reports whether each head's query and key are RMS-normalised
// before RoPE (attn_q_norm, attn_k_norm: llada-moe, rnd1).
func (c Config) HasQKNorm() bool { return c.Arch == ArchLLaDAMoE || c.Arch == ArchRND1 }

// MoE reports whether the blocks' FFN is routed experts (ffn_gate_inp,
// ffn_{gate,up,down}_exps) rather than one dense FFN.
func (c Config) MoE() bool { return c.Arch == ArchLLaDAMoE || c.Arch == ArchRND1 }

// NormExpertWeights reports whether the chosen experts' router
// probabilities are renormalised to sum to 1 (rnd1, as llama.cpp's
// build_moe_ffn with norm_w; llada-moe weights them as they are).
func (c Config) NormExpertWeights() bool { return c.Arch == ArchRND1 }

// IdleExpertParams is how many of a model's parameters a token does not
// use: the weights of the experts it is not routed to, in every block (0
// for a dense model). A file's parameter count less this is what one token
// is computed with (LLaDA-MoE 7B-A1B's "A1B").
func (c Config) IdleExpertParams() uint64 {
	if !c.MoE() {
		return 0
	}
	return uint64(c.Layers) * uint64(c.Experts-c.ExpertsUsed) * 3 * uint64(c.Dim) * uint64(c.ExpertFFN)
}

// shiftsLogits is diffusion.shift_logits when a file does not say: llama.cpp's
// diffusion runner shifts unless told not to, and its converters write false
// for llada and llada-moe; a llada file without the key is dfill's own older
// one, which does not shift.
func (a Arch) shiftsLogits() bool { return a == ArchDream || a == ArchRND1 }

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
	if !arch.known() {
		return Config{}, fmt.Errorf("%w: %s: %q (dfill runs %s)", ErrUnsupportedArch, name, archName, archList())
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
		{"attention.head_count", &c.Heads},
		{"context_length", &c.Context},
	} {
		if err := need(k.key, k.dst); err != nil {
			return Config{}, err
		}
	}
	if err := c.readFFN(f, name, need); err != nil {
		return Config{}, err
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
	// diffusion.shift_logits has no arch prefix.
	c.ShiftLogits = arch.shiftsLogits()
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

// readFFN reads the FFN's widths: feed_forward_length for a dense block;
// for routed experts expert_count, expert_used_count and
// expert_feed_forward_length (absent: feed_forward_length ÷ experts used, as
// llama.cpp derives it).
func (c *Config) readFFN(f *gguf.File, name string, need func(string, *int) error) error {
	a := string(c.Arch)
	if !c.MoE() {
		return need("feed_forward_length", &c.FFN)
	}
	if err := need("expert_count", &c.Experts); err != nil {
		return err
	}
	if err := need("expert_used_count", &c.ExpertsUsed); err != nil {
		return err
	}
	if c.ExpertsUsed > c.Experts {
		return fmt.Errorf("%w: %s: %s.expert_used_count %d is more than expert_count %d", ErrBadModel, name, a, c.ExpertsUsed, c.Experts)
	}
	if v, ok := f.Uint(a + ".feed_forward_length"); ok && v <= 1<<24 {
		c.FFN = int(v)
	}
	if _, ok := f.Uint(a + ".expert_feed_forward_length"); ok {
		return need("expert_feed_forward_length", &c.ExpertFFN)
	}
	c.ExpertFFN = c.FFN / c.ExpertsUsed
	if c.ExpertFFN == 0 {
		return fmt.Errorf("%w: %s: missing %s.expert_feed_forward_length", ErrBadModel, name, a)
	}
	return nil
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
		{Key: a + ".attention.head_count", Value: gguf.Val(uint32(c.Heads))},
		{Key: a + ".attention.head_count_kv", Value: gguf.Val(uint32(c.KVHeads))},
		{Key: a + ".rope.freq_base", Value: gguf.Val(float32(c.RopeBase))},
		{Key: a + ".attention.layer_norm_rms_epsilon", Value: gguf.Val(c.Eps)},
		{Key: a + ".attention.causal", Value: gguf.Val(false)},
		{Key: a + ".vocab_size", Value: gguf.Val(uint32(c.Vocab))},
		{Key: "diffusion.shift_logits", Value: gguf.Val(c.ShiftLogits)},
	}
	if c.FFN > 0 {
		kv = append(kv, gguf.KV{Key: a + ".feed_forward_length", Value: gguf.Val(uint32(c.FFN))})
	}
	if c.MoE() {
		kv = append(kv, gguf.KV{Key: a + ".expert_count", Value: gguf.Val(uint32(c.Experts))},
			gguf.KV{Key: a + ".expert_used_count", Value: gguf.Val(uint32(c.ExpertsUsed))},
			gguf.KV{Key: a + ".expert_feed_forward_length", Value: gguf.Val(uint32(c.ExpertFFN))})
	}
	if c.HeadDim != c.Dim/c.Heads {
		kv = append(kv, gguf.KV{Key: a + ".attention.key_length", Value: gguf.Val(uint32(c.HeadDim))},
			gguf.KV{Key: a + ".attention.value_length", Value: gguf.Val(uint32(c.HeadDim))})
	}
	return kv
}
