package engine

import (
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"github.com/dfill/dfill/engine/gguf"
	"github.com/dfill/dfill/engine/kernel"
	"github.com/dfill/dfill/engine/tokenizer"
)

// Model is a loaded diffusion language model: its hyperparameters, its
// tokenizer and its weights, which stay in the (memory-mapped) GGUF file.
// A Model is safe for concurrent Infill calls; each call has its own state.
type Model struct {
	Config    Config
	Tokenizer *tokenizer.Tokenizer

	TokenEmbd  kernel.Matrix `gguf:"token_embd.weight" shape:"dim,vocab"`
	OutputNorm []float32     `gguf:"output_norm.weight" shape:"dim"`
	Output     kernel.Matrix `gguf:"output.weight" shape:"dim,vocab" opt:"tied"` // absent: tied to TokenEmbd
	Layers     []Layer       `gguf:"blk"`

	name       string
	file       *gguf.File
	pool       *kernel.Pool
	rope       *kernel.RoPE
	workspaces freeList[*workspace] // reused across Infill calls
	accel      Accelerator          // runs the denoising forwards when set (Accelerate)
	kvBuffers  freeList[[]float32]  // sequences' caches, reused across Infill calls
}

// Layer is one transformer block. Shapes are GGUF dims: [in, out] (and
// [in, out, experts] for the experts' weights, stacked).
type Layer struct {
	AttnNorm []float32     `gguf:"attn_norm.weight" shape:"dim"`
	Q        kernel.Matrix `gguf:"attn_q.weight" shape:"dim,qdim"`
	K        kernel.Matrix `gguf:"attn_k.weight" shape:"dim,kvdim"`
	V        kernel.Matrix `gguf:"attn_v.weight" shape:"dim,kvdim"`
	QBias    []float32     `gguf:"attn_q.bias" shape:"qdim" opt:"bias"`
	KBias    []float32     `gguf:"attn_k.bias" shape:"kvdim" opt:"bias"`
	VBias    []float32     `gguf:"attn_v.bias" shape:"kvdim" opt:"bias"`
	QNorm    []float32     `gguf:"attn_q_norm.weight" shape:"headdim" opt:"qknorm"`
	KNorm    []float32     `gguf:"attn_k_norm.weight" shape:"headdim" opt:"qknorm"`
	Out      kernel.Matrix `gguf:"attn_output.weight" shape:"qdim,dim"`
	FFNNorm  []float32     `gguf:"ffn_norm.weight" shape:"dim"`
	Gate     kernel.Matrix `gguf:"ffn_gate.weight" shape:"dim,ffn" opt:"dense"`
	Up       kernel.Matrix `gguf:"ffn_up.weight" shape:"dim,ffn" opt:"dense"`
	Down     kernel.Matrix `gguf:"ffn_down.weight" shape:"ffn,dim" opt:"dense"`
	Router   kernel.Matrix `gguf:"ffn_gate_inp.weight" shape:"dim,experts" opt:"moe"`
	GateExps kernel.Matrix `gguf:"ffn_gate_exps.weight" shape:"dim,expffn,experts" opt:"moe"`
	UpExps   kernel.Matrix `gguf:"ffn_up_exps.weight" shape:"dim,expffn,experts" opt:"moe"`
	DownExps kernel.Matrix `gguf:"ffn_down_exps.weight" shape:"expffn,dim,experts" opt:"moe"`

	experts []expert // GateExps, UpExps and DownExps cut per expert
}

// expert is one routed expert's FFN: rows of the stacked weights.
type expert struct{ gate, up, down kernel.Matrix }

// ropeTablePositions is how many positions get precomputed RoPE angles.
const ropeTablePositions = 4096

// LoadOptions tune how a model is loaded.
type LoadOptions struct {
	Threads int // CPU threads for the kernels (0: one)
}

// Load memory-maps the GGUF file at path and prepares it to run.
func Load(path string, opt LoadOptions) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	m, err := newModel(f, filepath.Base(path), opt)
	if err != nil {
		f.Close()
		return nil, err
	}
	return m, nil
}

// LoadBytes prepares a model held in memory (the embedded model). The
// weights alias data, which must stay unchanged while the model is used.
func LoadBytes(data []byte, name string, opt LoadOptions) (*Model, error) {
	f, err := gguf.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return newModel(f, name, opt)
}

func newModel(f *gguf.File, name string, opt LoadOptions) (*Model, error) {
	cfg, err := ConfigFromGGUF(f, name)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizerFromGGUF(f, name)
	if err != nil {
		return nil, err
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok || len(emb.Dims) != 2 {
		return nil, fmt.Errorf("%w: %s: missing tensor token_embd.weight", ErrBadModel, name)
	}
	cfg.Vocab = int(emb.Dims[1])
	if tok.VocabSize() != cfg.Vocab {
		return nil, fmt.Errorf("%w: %s: tokenizer has %d tokens but token_embd.weight has %d rows", ErrBadModel, name, tok.VocabSize(), cfg.Vocab)
	}
	if cfg.MaskID < 0 || int(cfg.MaskID) >= cfg.Vocab {
		return nil, fmt.Errorf("%w: %s: mask token id %d outside the vocabulary of %d", ErrBadModel, name, cfg.MaskID, cfg.Vocab)
	}
	m := &Model{Config: cfg, Tokenizer: tok, name: name, file: f}
	m.Layers = make([]Layer, cfg.Layers)
	l := loader{f: f, name: name, cfg: cfg}
	if err := l.fill(reflect.ValueOf(m).Elem(), ""); err != nil {
		return nil, err
	}
	if m.Output.Data == nil {
		m.Output = m.TokenEmbd
	}
	threads := opt.Threads
	if threads < 1 {
		threads = 1
	}
	m.pool = kernel.NewPool(threads)
	m.prepack()
	m.cutExperts()
	// Positions past the table are computed on the fly; a table for the
	// whole context of a 32k model would cost memory for nothing.
	m.rope = kernel.NewRoPE(cfg.HeadDim, cfg.RopeBase, min(cfg.Context, ropeTablePositions), cfg.NeoxRoPE())
	return m, nil
}

// prepackBudget bounds the float32 copies of a model's layer matrices that
// prepack makes: a small model (the embedded one's take 13 MB) gets them; a
// large one, whose weights are most of its memory, does not.
const prepackBudget = 64 << 20

// prepack packs the model's matrices ahead for the matrix kernels
// (kernel.Prepack) when that costs little memory: the layer matrices when
// their packed copies fit prepackBudget (a small model's span passes, a few
// dozen rows each, then run about twice as fast), and any matrix whose
// packed copy is no larger than itself, a Q8_0 weight repacked for the VNNI
// kernels, which then never read the original (mapped) bytes again.
func (m *Model) prepack() {
	size := 0
	for i := range m.Layers {
		for _, w := range m.Layers[i].matrices() {
			size += kernel.PrepackBytes(*w)
		}
	}
	for i := range m.Layers {
		for _, w := range m.Layers[i].matrices() {
			if Prepacks(*w, true, size) {
				*w = m.packed(*w)
			}
		}
	}
	if Prepacks(m.Output, false, size) {
		m.Output = m.packed(m.Output)
	}
}

// packed returns w packed ahead (kernel.Prepack) and evicts its mapped
// bytes, which the kernels no longer read, from the resident set: a
// large model's repacked weights would otherwise be held twice, the
// mapped file's pages and the copy (a 4.5 GB Q4_K_M file measured 2.15×
// its size in peak RSS). Evicting as each matrix is packed keeps the peak
// near the copy's size.
func (m *Model) packed(w kernel.Matrix) kernel.Matrix {
	if kernel.PrepackBytes(w) == 0 {
		return w
	}
	p := kernel.Prepack(w)
	m.file.Evict(w.Data)
	return p
}

// Prepacks reports whether Load packs the weight w ahead (kernel.Prepack):
// a layer matrix when the packed copies of all the model's layer matrices
// take layerBytes or fewer of prepackBudget, and any matrix whose packed
// copy is no larger than itself. `dfill bench kernels` asks it, to measure
// each product as the engine runs it.
func Prepacks(w kernel.Matrix, layer bool, layerBytes int) bool {
	return layer && layerBytes <= prepackBudget || repack(w)
}

// repack reports whether prepacking w costs no more than w's own bytes
// (and an eighth).
func repack(w kernel.Matrix) bool {
	n := kernel.PrepackBytes(w)
	return n > 0 && n <= len(w.Data)+len(w.Data)/8
}

// matrices returns the block's weight matrices (those it has).
func (l *Layer) matrices() []*kernel.Matrix {
	var ms []*kernel.Matrix
	for _, w := range []*kernel.Matrix{&l.Q, &l.K, &l.V, &l.Out, &l.Gate, &l.Up, &l.Down, &l.Router, &l.GateExps, &l.UpExps, &l.DownExps} {
		if w.Rows > 0 {
			ms = append(ms, w)
		}
	}
	return ms
}

// cutExperts cuts each block's stacked expert weights into one matrix per
// expert, after prepack, so that a packed stack stays packed per expert.
func (m *Model) cutExperts() {
	c := m.Config
	if !c.MoE() {
		return
	}
	for i := range m.Layers {
		L := &m.Layers[i]
		L.experts = make([]expert, c.Experts)
		for e := range L.experts {
			L.experts[e] = expert{
				gate: L.GateExps.Slice(e*c.ExpertFFN, (e+1)*c.ExpertFFN),
				up:   L.UpExps.Slice(e*c.ExpertFFN, (e+1)*c.ExpertFFN),
				down: L.DownExps.Slice(e*c.Dim, (e+1)*c.Dim),
			}
		}
	}
}

// Name is the model's general.name, or its file name.
func (m *Model) Name() string {
	if m.Config.Name != "" {
		return m.Config.Name
	}
	return m.name
}

// File is the GGUF file the model was loaded from.
func (m *Model) File() *gguf.File { return m.file }

// Threads is the number of CPU threads the kernels use.
func (m *Model) Threads() int { return m.pool.Threads() }

// Close stops the model's threads and unmaps its file.
func (m *Model) Close() error {
	m.pool.Close()
	return m.file.Close()
}

// loader fills tagged struct fields from a GGUF file's tensors.
type loader struct {
	f    *gguf.File
	name string
	cfg  Config
}

func (l *loader) dim(sym string) (int, error) {
	c := l.cfg
	switch sym {
	case "dim":
		return c.Dim, nil
	case "qdim":
		return c.Heads * c.HeadDim, nil
	case "kvdim":
		return c.KVHeads * c.HeadDim, nil
	case "ffn":
		return c.FFN, nil
	case "vocab":
		return c.Vocab, nil
	case "headdim":
		return c.HeadDim, nil
	case "experts":
		return c.Experts, nil
	case "expffn":
		return c.ExpertFFN, nil
	}
	return 0, fmt.Errorf("engine: unknown shape symbol %q", sym)
}

func (l *loader) fill(v reflect.Value, prefix string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		field := t.Field(i)
		tag, ok := field.Tag.Lookup("gguf")
		if !ok {
			continue
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct {
			for j := 0; j < fv.Len(); j++ {
				if err := l.fill(fv.Index(j), prefix+tag+"."+strconv.Itoa(j)+"."); err != nil {
					return err
				}
			}
			continue
		}
		name := prefix + tag
		var want []int
		for _, sym := range strings.Split(field.Tag.Get("shape"), ",") {
			n, err := l.dim(sym)
			if err != nil {
				return err
			}
			want = append(want, n)
		}
		if !l.wants(field.Tag.Get("opt")) {
			continue
		}
		info, ok := l.f.Tensor(name)
		if !ok {
			if field.Tag.Get("opt") == "tied" {
				continue
			}
			return fmt.Errorf("%w: %s: missing tensor %s", ErrBadModel, l.name, name)
		}
		if !sameShape(info.Dims, want) {
			return fmt.Errorf("%w: %s: tensor %s: shape %v but the model's hyperparameters need %v", ErrBadModel, l.name, name, info.Dims, want)
		}
		switch fv.Interface().(type) {
		case kernel.Matrix:
			rows := 1
			for _, n := range want[1:] {
				rows *= n
			}
			mat, err := kernel.NewMatrix(info.Type, rows, want[0], info.Data)
			if err != nil {
				return fmt.Errorf("%w: %s: tensor %s: %v", ErrBadModel, l.name, name, err)
			}
			fv.Set(reflect.ValueOf(mat))
		case []float32:
			vec := make([]float32, want[0])
			if err := kernel.Dequantize(info.Type, info.Data, vec); err != nil {
				return fmt.Errorf("%w: %s: tensor %s: %v", ErrBadModel, l.name, name, err)
			}
			fv.Set(reflect.ValueOf(vec))
		}
	}
	return nil
}

// wants reports whether the model's architecture has a tensor of the
// optional kind opt ("" for one every model has).
func (l *loader) wants(opt string) bool {
	switch opt {
	case "bias":
		return l.cfg.HasQKVBias()
	case "qknorm":
		return l.cfg.HasQKNorm()
	case "dense":
		return !l.cfg.MoE()
	case "moe":
		return l.cfg.MoE()
	}
	return true
}

func sameShape(dims []uint64, want []int) bool {
	if len(dims) != len(want) {
		return false
	}
	for i := range dims {
		if dims[i] != uint64(want[i]) {
			return false
		}
	}
	return true
}

// tokenizerFromGGUF builds the BPE tokenizer from the tokenizer.ggml.* keys.
func tokenizerFromGGUF(f *gguf.File, name string) (*tokenizer.Tokenizer, error) {
	cfg, err := tokenizer.FromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadModel, name, err)
	}
	tok, err := tokenizer.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadModel, name, err)
	}
	return tok, nil
}

// StepWeightBytes returns how many bytes of weights a forward pass over
// rows canvas rows reads: every block's attention and norms, its FFN (for
// routed experts, the share of experts rows are expected to reach with
// uniform routing, E·(1−(1−k/E)^rows) of E), and the output matrix, which
// the samplers read whole for the span. Divided by the memory's read
// bandwidth it is the least time a step can take on a CPU.
func (m *Model) StepWeightBytes(rows int) float64 {
	var total float64
	for i := range m.Layers {
		L := &m.Layers[i]
		for _, w := range []kernel.Matrix{L.Q, L.K, L.V, L.Out, L.Gate, L.Up, L.Down, L.Router} {
			total += float64(len(w.Data))
		}
		total += 4 * float64(len(L.AttnNorm)+len(L.FFNNorm)+len(L.QBias)+len(L.KBias)+len(L.VBias)+len(L.QNorm)+len(L.KNorm))
		if c := m.Config; c.MoE() {
			e, k := float64(c.Experts), float64(c.ExpertsUsed)
			reached := 1 - math.Pow(1-k/e, float64(rows))
			total += reached * float64(len(L.GateExps.Data)+len(L.UpExps.Data)+len(L.DownExps.Data))
		}
	}
	return total + float64(len(m.Output.Data)) + 4*float64(len(m.OutputNorm))
}
