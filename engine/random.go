package engine

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/dfill/dfill/engine/gguf"
	"github.com/dfill/dfill/engine/kernel"
	"github.com/dfill/dfill/engine/tokenizer"
)

// Spec describes a model shape for WriteRandom.
type Spec struct {
	Arch        Arch
	Name        string
	Layers      int
	Dim         int
	Heads       int
	KVHeads     int
	HeadDim     int // 0: Dim/Heads
	FFN         int // a dense block's FFN width (for routed experts, written as feed_forward_length only)
	Experts     int // routed experts per block (llada-moe, rnd1)
	ExpertsUsed int // experts each token is routed to
	ExpertFFN   int // one expert's FFN width
	Vocab       int
	Context     int
	RopeBase    float64
	Eps         float32
	Tied        bool      // no output.weight: the output reuses token_embd
	Type        gguf.Type // type of the 2-D weights
	Seed        uint64
}

// Presets are the named shapes of `dfill model random --preset`; those
// without an Arch take the one asked for (llada by default).
var Presets = map[string]Spec{
	"tiny":         {Layers: 2, Dim: 64, Heads: 4, KVHeads: 2, FFN: 192, Vocab: 512, Context: 2048, RopeBase: 10000, Eps: 1e-6, Tied: true},
	"qwen2.5-0.5b": {Layers: 24, Dim: 896, Heads: 14, KVHeads: 2, FFN: 4864, Vocab: 151936, Context: 32768, RopeBase: 1e6, Eps: 1e-6, Tied: true},
	"qwen2.5-1.5b": {Layers: 28, Dim: 1536, Heads: 12, KVHeads: 2, FFN: 8960, Vocab: 151936, Context: 32768, RopeBase: 1e6, Eps: 1e-6, Tied: true},
	"llada-8b":     {Layers: 32, Dim: 4096, Heads: 32, KVHeads: 32, FFN: 12288, Vocab: 126464, Context: 4096, RopeBase: 500000, Eps: 1e-5},
	// The shape of Qwen2.5-7B, Dream-Coder 7B's and DiffuCoder 7B's base.
	"qwen2.5-7b": {Layers: 28, Dim: 3584, Heads: 28, KVHeads: 4, FFN: 18944, Vocab: 152064, Context: 32768, RopeBase: 1e6, Eps: 1e-6},
	// LLaDA-MoE-7B-A1B's config.json: 64 experts of width 1024, 8 per token.
	"llada-moe-7b-a1b": {Arch: ArchLLaDAMoE, Layers: 16, Dim: 2048, Heads: 16, KVHeads: 16, FFN: 8192, Experts: 64, ExpertsUsed: 8, ExpertFFN: 1024,
		Vocab: 157184, Context: 8192, RopeBase: 50000, Eps: 1e-5},
	// RND1-30B-A3B, the shape of its Qwen3-30B-A3B base: heads of 128 over a
	// 2048-wide stream, 128 experts of width 768, 8 per token.
	"rnd1-30b-a3b": {Arch: ArchRND1, Layers: 48, Dim: 2048, Heads: 32, KVHeads: 4, HeadDim: 128, FFN: 6144, Experts: 128, ExpertsUsed: 8, ExpertFFN: 768,
		Vocab: 151936, Context: 40960, RopeBase: 1e6, Eps: 1e-6},
}

// PresetNames lists the presets in a stable order.
func PresetNames() []string {
	var names []string
	for n := range Presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// headDim is the spec's head width.
func (s Spec) headDim() int {
	if s.HeadDim > 0 {
		return s.HeadDim
	}
	if s.Heads > 0 {
		return s.Dim / s.Heads
	}
	return 0
}

func (s Spec) validate() error {
	if !s.Arch.known() {
		return fmt.Errorf("%w: %q", ErrUnsupportedArch, s.Arch)
	}
	moe := Config{Arch: s.Arch}.MoE()
	if s.Layers < 1 || s.Dim < 2 || s.Heads < 1 || s.KVHeads < 1 || s.Context < 1 || (s.FFN < 1 && !moe) {
		return fmt.Errorf("%w: layers, dim, heads, kv-heads, ffn and ctx must be positive", ErrBadOptions)
	}
	if moe && (s.Experts < 1 || s.ExpertsUsed < 1 || s.ExpertsUsed > s.Experts || s.ExpertFFN < 1) {
		return fmt.Errorf("%w: %s needs experts ≥ 1, experts-used in 1..experts and expert-ffn ≥ 1 (have %d, %d, %d)",
			ErrBadOptions, s.Arch, s.Experts, s.ExpertsUsed, s.ExpertFFN)
	}
	if !moe && (s.Experts != 0 || s.ExpertsUsed != 0 || s.ExpertFFN != 0) {
		return fmt.Errorf("%w: %s has no experts", ErrBadOptions, s.Arch)
	}
	if s.HeadDim == 0 && s.Dim%s.Heads != 0 || s.Heads%s.KVHeads != 0 || s.headDim()%2 != 0 {
		return fmt.Errorf("%w: dim %d, heads %d, kv-heads %d: dim must split into heads of even size and heads into kv groups", ErrBadOptions, s.Dim, s.Heads, s.KVHeads)
	}
	if s.Vocab < 256+len(tokenizer.DefaultSpecials()) {
		return fmt.Errorf("%w: vocab %d is smaller than the 256 bytes and %d special tokens", ErrBadOptions, s.Vocab, len(tokenizer.DefaultSpecials()))
	}
	if !s.Type.Known() {
		return fmt.Errorf("%w: %s", gguf.ErrUnknownType, s.Type)
	}
	return nil
}

// RandomVocab returns a byte-level BPE vocabulary of exactly size tokens:
// the 256 bytes, deterministic merges of common characters, and dfill's
// special tokens at the end, so that any text tokenizes.
func RandomVocab(size int) (tokenizer.Config, error) {
	cfg := tokenizer.ByteLevel(nil)
	nMerges := size - len(cfg.Tokens) - len(tokenizer.DefaultSpecials())
	if nMerges < 0 {
		return cfg, fmt.Errorf("%w: vocab %d too small", ErrBadOptions, size)
	}
	have := make(map[string]bool, size)
	for _, t := range cfg.Tokens {
		have[t] = true
	}
	// Grow from the printable ASCII tokens, so short merges come first.
	var pool []string
	for _, t := range cfg.Tokens {
		if r := []rune(t); len(r) == 1 && (r[0] == 'Ġ' || r[0] == 'Ċ' || (r[0] > ' ' && r[0] < 127)) {
			pool = append(pool, t)
		}
	}
	for i := 0; len(cfg.Merges) < nMerges; i++ {
		for j := 0; j <= i && len(cfg.Merges) < nMerges; j++ {
			for _, pair := range [][2]string{{pool[i], pool[j]}, {pool[j], pool[i]}} {
				t := pair[0] + pair[1]
				if have[t] || len(cfg.Merges) >= nMerges {
					continue
				}
				have[t] = true
				cfg.Tokens = append(cfg.Tokens, t)
				cfg.Types = append(cfg.Types, tokenizer.TypeNormal)
				cfg.Merges = append(cfg.Merges, pair[0]+" "+pair[1])
				pool = append(pool, t)
			}
		}
	}
	for _, sp := range tokenizer.DefaultSpecials() {
		cfg.Tokens = append(cfg.Tokens, sp)
		cfg.Types = append(cfg.Types, tokenizer.TypeControl)
	}
	return cfg.WithSpecialIDs(), nil
}

// randomTensor is one tensor of a random model: its name, shape, type, and
// the distribution of its values.
type randomTensor struct {
	name   string
	dims   []uint64
	typ    gguf.Type
	sigma  float64 // standard deviation of the random values
	center float64 // mean (1 for norm weights)
}

// randomTensors lists the tensors of a random model of shape s, in file
// order (tensorsOf): matrices with values of deviation 1/√cols (2/√dim for
// the embeddings and output), norm weights around 1, biases around 0.
func randomTensors(s Spec) []randomTensor {
	var ts []randomTensor
	// llama.cpp's llada-moe requires output.weight; the others fall back
	// to token_embd without it.
	tied := s.Tied && s.Arch != ArchLLaDAMoE
	for _, t := range tensorsOf(s.config(0), tied) {
		cols := int(t.dims[0])
		rt := randomTensor{name: t.name, dims: t.dims, typ: gguf.TypeF32, sigma: 0.1}
		switch {
		case len(t.dims) == 1 && strings.HasSuffix(t.name, "norm.weight"):
			rt.center = 1
		case len(t.dims) == 1: // a bias
		case strings.HasSuffix(t.name, "ffn_gate_inp.weight"): // llama.cpp never quantizes the router
			rt.sigma = 1 / math.Sqrt(float64(cols))
		case t.name == "token_embd.weight" || t.name == "output.weight":
			rt.sigma, rt.typ = 2/math.Sqrt(float64(cols)), fitType(s.Type, cols)
			if t.name == "output.weight" && s.Type == gguf.TypeQ4_K && rt.typ == gguf.TypeQ4_K {
				rt.typ = gguf.TypeQ6_K // llama.cpp keeps the output at Q6_K in Q4_K_M files
			}
		default:
			rt.sigma, rt.typ = 1/math.Sqrt(float64(cols)), fitType(s.Type, cols)
		}
		ts = append(ts, rt)
	}
	return ts
}

// config returns the hyperparameters of a model of shape s whose mask
// token is mask, with the defaults WriteRandom fills in.
func (s Spec) config(mask int32) Config {
	cfg := Config{
		Arch: s.Arch, Name: s.Name, Layers: s.Layers, Dim: s.Dim, Heads: s.Heads, KVHeads: s.KVHeads,
		HeadDim: s.headDim(), FFN: s.FFN, Experts: s.Experts, ExpertsUsed: s.ExpertsUsed, ExpertFFN: s.ExpertFFN,
		Vocab: s.Vocab, Context: s.Context, RopeBase: s.RopeBase, Eps: s.Eps,
		ShiftLogits: s.Arch.shiftsLogits(), MaskID: mask,
	}
	if cfg.RopeBase == 0 {
		cfg.RopeBase = 10000
	}
	if cfg.Eps == 0 {
		cfg.Eps = 1e-6
	}
	if cfg.Name == "" {
		cfg.Name = fmt.Sprintf("random-%s-%dx%d", s.Arch, s.Layers, s.Dim)
	}
	return cfg
}

// RandomSize returns how many bytes the tensors of a random model of shape
// s take, and the largest of them with its name: WriteRandom holds one
// tensor at a time, so a shape whose largest tensor does not fit in memory
// must be refused before writing (a 400 GB token_embd is a runtime
// out-of-memory crash, not an error). Sizes that overflow are an error.
func RandomSize(s Spec) (total, largest uint64, name string, err error) {
	if err := s.validate(); err != nil {
		return 0, 0, "", err
	}
	for _, t := range randomTensors(s) {
		n, ok := tensorBytes(t.typ, t.dims)
		if !ok || total+n < total {
			return 0, 0, "", fmt.Errorf("%w: tensor %s of shape %v is too large to count", ErrBadOptions, t.name, t.dims)
		}
		total += n
		if n > largest {
			largest, name = n, t.name
		}
	}
	return total, largest, name, nil
}

// tensorBytes returns the bytes of a tensor of type typ and shape dims
// (innermost first), and false when that overflows.
func tensorBytes(typ gguf.Type, dims []uint64) (uint64, bool) {
	rows := uint64(1)
	for _, d := range dims[1:] {
		if d != 0 && rows > math.MaxUint64/d {
			return 0, false
		}
		rows *= d
	}
	row := uint64(mustRowSize(typ, int(dims[0])))
	if row != 0 && rows > math.MaxUint64/row {
		return 0, false
	}
	return rows * row, true
}

// WriteRandom writes a GGUF model of shape s with random weights (seeded by
// s.Seed) and a working vocabulary of s.Vocab tokens. 2-D weights use
// s.Type where their rows are a whole number of its blocks, else the type
// llama.cpp's quantizer falls back to (Q4_K → Q5_0, Q6_K → Q8_0: see
// fitType); norms, biases and the experts' router are F32. The rows are
// generated on all CPUs, each run of randomRowRun rows from its own seeded
// stream, so the file is the same whatever the number of CPUs.
func WriteRandom(w io.Writer, s Spec) error {
	if err := s.validate(); err != nil {
		return err
	}
	vocab, err := RandomVocab(s.Vocab)
	if err != nil {
		return err
	}
	vocab.Pre = "qwen2"
	switch s.Arch {
	case ArchLLaDA:
		vocab.Pre = "llama-bpe" // LLaDA's LLaMA-3 split, a name llama.cpp knows
	case ArchLLaDAMoE:
		vocab.Pre = "llada-moe" // what llama.cpp's converter names LLaDA-MoE's
	}
	cfg := s.config(vocab.Mask)
	meta := append(cfg.metadata(), vocab.Metadata()...)
	meta = append(meta, gguf.KV{Key: "general.alignment", Value: gguf.Val(uint32(32))})

	ts := randomTensors(s)
	specs := make([]gguf.TensorSpec, len(ts))
	for i, t := range ts {
		specs[i] = gguf.TensorSpec{Name: t.name, Type: t.typ, Dims: t.dims}
	}
	return gguf.WriteStream(w, meta, specs, func(i int, dst []byte) error {
		return fillRandom(dst, ts[i], s.Seed, uint64(i))
	})
}

// randomRowRun is how many rows of a tensor one random stream fills.
const randomRowRun = 64

// fillRandom fills dst with the rows of random tensor t (the tensor-th of
// its model), quantized, split over the CPUs by runs of randomRowRun rows.
func fillRandom(dst []byte, t randomTensor, seed, tensor uint64) error {
	cols := int(t.dims[0])
	size := mustRowSize(t.typ, cols)
	rows := len(dst) / size
	runs := (rows + randomRowRun - 1) / randomRowRun
	return onCPUs(runs, func(next func() (int, bool)) error {
		row := make([]float32, cols)
		for run, ok := next(); ok; run, ok = next() {
			rng := rand.New(rand.NewPCG(seed^0x9e3779b97f4a7c15, tensor<<32|uint64(run)))
			for r := run * randomRowRun; r < min(rows, (run+1)*randomRowRun); r++ {
				for c := range row {
					row[c] = float32(t.center + t.sigma*rng.NormFloat64())
				}
				q, err := kernel.Quantize(t.typ, row)
				if err != nil {
					return fmt.Errorf("%s: %w", t.name, err)
				}
				copy(dst[r*size:], q)
			}
		}
		return nil
	})
}

// fitType returns the type of a 2-D weight of want with rows of cols
// elements: want where they are whole blocks of it, else llama.cpp's
// fallback for want (see fallback; Q4_K at width 896 is Q5_0), else F16.
func fitType(want gguf.Type, cols int) gguf.Type {
	if t, err := fallback("", want, cols); err == nil {
		return t
	}
	return gguf.TypeF16
}

func mustRowSize(t gguf.Type, cols int) int {
	n, err := t.RowSize(cols)
	if err != nil {
		return 1
	}
	return n
}

// ParseArch returns the Arch named s.
func ParseArch(s string) (Arch, error) {
	if a := Arch(strings.ToLower(s)); a.known() {
		return a, nil
	}
	return "", fmt.Errorf("%w: %q (want %s)", ErrUnsupportedArch, s, archList())
}
