package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/dfill/dfill/cmd/dfill/internal/bench"
	"github.com/dfill/dfill/cmd/dfill/internal/cli"
	"github.com/dfill/dfill/engine"
	"github.com/dfill/dfill/engine/gguf"
)

func modelCommand() *cli.Command {
	return &cli.Command{
		Name:    "model",
		Summary: "inspect, get or make models: model info|random|forward|calibrate|pull|list|rm|catalog|convert|quantize",
		Commands: []*cli.Command{
			modelInfoCommand(),
			modelRandomCommand(),
			modelForwardCommand(),
			bench.CalibrateCommand(benchModels),
			modelPullCommand(),
			modelListCommand(),
			modelRmCommand(),
			modelCatalogCommand(),
			modelConvertCommand(),
			modelQuantizeCommand(),
		},
	}
}

// modelInfoOutput is what `dfill model info --json` prints.
type modelInfoOutput struct {
	Path        string            `json:"path"`
	FileSize    int64             `json:"file_size"`
	Arch        string            `json:"arch"`
	Name        string            `json:"name"`
	Layers      int               `json:"layers"`
	Dim         int               `json:"dim"`
	Heads       int               `json:"heads"`
	KVHeads     int               `json:"kv_heads"`
	HeadDim     int               `json:"head_dim"`
	FFN         int               `json:"ffn"`
	Experts     int               `json:"experts,omitempty"`      // routed experts per block
	ExpertsUsed int               `json:"experts_used,omitempty"` // per token
	ExpertFFN   int               `json:"expert_ffn,omitempty"`
	Vocab       int               `json:"vocab"`
	Context     int               `json:"context"`
	RopeBase    float64           `json:"rope_base"`
	ShiftLogits bool              `json:"shift_logits"`
	MaskID      int32             `json:"mask_token_id"`
	Tokenizer   string            `json:"tokenizer"`
	Params      uint64            `json:"parameters"`
	Active      uint64            `json:"active_parameters"` // per token: all but the idle experts'
	TensorTypes map[string]int    `json:"tensor_types"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

func modelInfoCommand() *cli.Command {
	var asJSON, all bool
	return &cli.Command{
		Name:    "info",
		Args:    "PATH",
		NArgs:   1,
		Summary: "arch, sizes, tokenizer, tensor types, parameter count of a GGUF",
		Flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print JSON")
			fs.BoolVar(&all, "metadata", false, "also print every metadata key")
		},
		Run: func(_ context.Context, args []string) error { return modelInfo(args[0], asJSON, all) },
	}
}

// modelInfo prints what the GGUF at path holds, with every metadata key
// when all is set.
func modelInfo(path string, asJSON, all bool) error {
	m, err := engine.Load(path, engine.LoadOptions{Threads: 1})
	if err != nil {
		return err
	}
	defer m.Close()
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	f, c := m.File(), m.Config
	info := modelInfoOutput{
		Path: path, FileSize: st.Size(), Arch: string(c.Arch), Name: m.Name(),
		Layers: c.Layers, Dim: c.Dim, Heads: c.Heads, KVHeads: c.KVHeads, HeadDim: c.HeadDim, FFN: c.FFN,
		Vocab: c.Vocab, Context: c.Context, RopeBase: c.RopeBase, ShiftLogits: c.ShiftLogits, MaskID: c.MaskID,
		Experts: c.Experts, ExpertsUsed: c.ExpertsUsed, ExpertFFN: c.ExpertFFN,
		Params: f.ParameterCount(), TensorTypes: map[string]int{},
	}
	info.Active = info.Params - min(info.Params, c.IdleExpertParams())
	model, _ := f.String("tokenizer.ggml.model")
	pre, _ := f.String("tokenizer.ggml.pre")
	info.Tokenizer = fmt.Sprintf("%s (pre %s), %d tokens", model, pre, m.Tokenizer.VocabSize())
	for _, t := range f.Tensors {
		info.TensorTypes[t.Type.String()]++
	}
	if all {
		info.Metadata = map[string]string{}
		for _, kv := range f.Metadata {
			info.Metadata[kv.Key] = kv.Value.String()
		}
	}
	if asJSON {
		return cli.PrintJSON(info)
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintf(w, "file        %s (%s)\n", path, humanBytes(info.FileSize))
	fmt.Fprintf(w, "arch        %s  name %q\n", info.Arch, info.Name)
	fmt.Fprintf(w, "parameters  %s (%d)", humanCount(info.Params), info.Params)
	if info.Active != info.Params {
		fmt.Fprintf(w, ", %s active per token", humanCount(info.Active))
	}
	fmt.Fprintf(w, "\nlayers      %d\n", info.Layers)
	if info.Experts > 0 {
		fmt.Fprintf(w, "dim         %d  experts %d (%d per token) of ffn %d\n", info.Dim, info.Experts, info.ExpertsUsed, info.ExpertFFN)
	} else {
		fmt.Fprintf(w, "dim         %d  ffn %d\n", info.Dim, info.FFN)
	}
	fmt.Fprintf(w, "heads       %d  kv heads %d  head dim %d\n", info.Heads, info.KVHeads, info.HeadDim)
	fmt.Fprintf(w, "context     %d  rope base %g\n", info.Context, info.RopeBase)
	fmt.Fprintf(w, "vocab       %d  mask id %d  shift logits %v\n", info.Vocab, info.MaskID, info.ShiftLogits)
	fmt.Fprintf(w, "tokenizer   %s\n", info.Tokenizer)
	var types []string
	for t, n := range info.TensorTypes {
		types = append(types, fmt.Sprintf("%s×%d", t, n))
	}
	sort.Strings(types)
	fmt.Fprintf(w, "tensors     %d: %s\n", len(f.Tensors), strings.Join(types, " "))
	if all {
		keys := make([]string, 0, len(info.Metadata))
		for k := range info.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %s = %s\n", k, info.Metadata[k])
		}
	}
	return nil
}

// randomFlags are the flags of `dfill model random`.
type randomFlags struct {
	arch   string
	preset string
	sizes  engine.Spec // the sizes given; 0 keeps the preset's
	typ    string
	seed   uint64
	out    string
}

func modelRandomCommand() *cli.Command {
	f := &randomFlags{}
	return &cli.Command{
		Name:    "random",
		Summary: "write a random-weight GGUF of an arch and shape (--out PATH)",
		Flags:   f.register,
		Run:     func(ctx context.Context, _ []string) error { return f.run(ctx) },
	}
}

func (f *randomFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.arch, "arch", "", "architecture: dream, llada, llada-moe or rnd1 (default: the preset's, else llada)")
	fs.StringVar(&f.preset, "preset", "", "named shape: "+strings.Join(engine.PresetNames(), ", "))
	fs.IntVar(&f.sizes.Layers, "layers", 0, "transformer blocks")
	fs.IntVar(&f.sizes.Dim, "dim", 0, "embedding width")
	fs.IntVar(&f.sizes.Heads, "heads", 0, "attention heads")
	fs.IntVar(&f.sizes.KVHeads, "kv-heads", 0, "key/value heads")
	fs.IntVar(&f.sizes.HeadDim, "head-dim", 0, "width of one head (0: dim/heads)")
	fs.IntVar(&f.sizes.FFN, "ffn", 0, "feed-forward width")
	fs.IntVar(&f.sizes.Experts, "experts", 0, "routed experts per block (llada-moe, rnd1)")
	fs.IntVar(&f.sizes.ExpertsUsed, "experts-used", 0, "experts each token is routed to")
	fs.IntVar(&f.sizes.ExpertFFN, "expert-ffn", 0, "one expert's feed-forward width")
	fs.IntVar(&f.sizes.Vocab, "vocab", 0, "vocabulary size")
	fs.IntVar(&f.sizes.Context, "ctx", 0, "context length")
	fs.StringVar(&f.typ, "type", "f32", "weight type: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl, iq4_xs")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed")
	fs.StringVar(&f.out, "out", "", "output GGUF `path` (required)")
}

// run writes the random model to --out; ctx (Ctrl-C) stops it at the next
// write, leaving no file.
func (f *randomFlags) run(ctx context.Context) error {
	if f.out == "" {
		return cli.Usagef("--out is required")
	}
	spec, err := f.spec()
	if err != nil {
		return err
	}
	total, largest, name, err := engine.RandomSize(spec)
	if err != nil {
		return err
	}
	if mem, ok := physicalMemory(); ok && largest > mem/2 {
		return fmt.Errorf("the shape needs %s for tensor %s alone (%s in all), more than half of this machine's %s of memory",
			humanBytes(int64(largest)), name, humanBytes(int64(total)), humanBytes(int64(mem)))
	}
	return writeFileAtomic(f.out, func(w io.Writer) error { return engine.WriteRandom(ctxWriter{ctx, w}, spec) })
}

// ctxWriter is w that fails once ctx is done, so that a long write stops
// when the command is interrupted.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// writeFileAtomic writes path through write, into a temporary file beside
// it renamed to path only when complete: a failed or interrupted write
// (a full disk, an error, a kill) never leaves a partial file at path.
func writeFileAtomic(path string, write func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err := write(w); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}

// physicalMemory returns the machine's memory in bytes, from
// /proc/meminfo; false where that is not known.
func physicalMemory() (uint64, bool) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// spec returns the model the flags describe: the preset (tiny by default)
// with the sizes given instead of its own.
func (f *randomFlags) spec() (engine.Spec, error) {
	spec := engine.Presets["tiny"]
	if f.preset != "" {
		p, ok := engine.Presets[f.preset]
		if !ok {
			return spec, fmt.Errorf("unknown preset %q (want %s)", f.preset, strings.Join(engine.PresetNames(), ", "))
		}
		spec = p
	}
	s := f.sizes
	for _, o := range []struct {
		dst *int
		v   int
	}{
		{&spec.Layers, s.Layers}, {&spec.Dim, s.Dim}, {&spec.Heads, s.Heads}, {&spec.KVHeads, s.KVHeads},
		{&spec.HeadDim, s.HeadDim}, {&spec.FFN, s.FFN}, {&spec.Experts, s.Experts}, {&spec.ExpertsUsed, s.ExpertsUsed},
		{&spec.ExpertFFN, s.ExpertFFN}, {&spec.Vocab, s.Vocab}, {&spec.Context, s.Context},
	} {
		if o.v != 0 {
			*o.dst = o.v
		}
	}
	if s.Heads != 0 && s.KVHeads == 0 {
		spec.KVHeads = s.Heads
	}
	switch {
	case f.arch != "":
		a, err := engine.ParseArch(f.arch)
		if err != nil {
			return spec, err
		}
		spec.Arch = a
	case spec.Arch == "":
		spec.Arch = engine.ArchLLaDA
	}
	var err error
	if spec.Type, err = gguf.ParseType(f.typ); err != nil {
		return spec, err
	}
	spec.Seed = f.seed
	if f.preset != "" {
		spec.Name = "random-" + f.preset
	}
	return spec, nil
}

// forwardFlags are the flags of `dfill model forward`.
type forwardFlags struct {
	tokens  string
	text    string
	asJSON  bool
	threads int
}

func modelForwardCommand() *cli.Command {
	f := &forwardFlags{}
	return &cli.Command{
		Name:    "forward",
		Args:    "PATH",
		NArgs:   1,
		Summary: "the logits of one bidirectional forward over --tokens or --text, every position",
		Flags:   f.register,
		Run:     func(ctx context.Context, args []string) error { return f.run(ctx, args[0]) },
	}
}

func (f *forwardFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.tokens, "tokens", "", "comma-separated token ids")
	fs.StringVar(&f.text, "text", "", "text to tokenize instead of --tokens")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON: {tokens, vocab, logits: [[...], ...]}")
	fs.IntVar(&f.threads, "threads", 0, "CPU threads (0: all)")
}

// run prints the logits of the model at path over the tokens.
func (f *forwardFlags) run(ctx context.Context, path string) error {
	m, err := engine.Load(path, engine.LoadOptions{Threads: threadCount(f.threads)})
	if err != nil {
		return err
	}
	defer m.Close()
	var ids []int32
	if f.text != "" {
		ids = m.Tokenizer.EncodePlain(f.text)
	}
	for _, s := range strings.Split(f.tokens, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return fmt.Errorf("--tokens: %q is not a token id", s)
		}
		ids = append(ids, int32(n))
	}
	if len(ids) == 0 {
		return fmt.Errorf("no tokens: give --tokens or --text")
	}
	logits, err := m.Logits(ctx, ids)
	if err != nil {
		return err
	}
	vocab := m.Config.Vocab
	if f.asJSON {
		rows := make([][]float32, len(ids))
		for i := range rows {
			rows[i] = logits[i*vocab : (i+1)*vocab]
		}
		return cli.PrintJSON(struct {
			Tokens []int32     `json:"tokens"`
			Vocab  int         `json:"vocab"`
			Logits [][]float32 `json:"logits"`
		}{ids, vocab, rows})
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	for i, id := range ids {
		row := logits[i*vocab : (i+1)*vocab]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		fmt.Fprintf(w, "pos %d token %d %q: argmax %d %q (%.4f); first logits", i, id, m.Tokenizer.Decode([]int32{id}), best, m.Tokenizer.Decode([]int32{int32(best)}), row[best])
		for _, v := range row[:min(8, vocab)] {
			fmt.Fprintf(w, " %.5f", v)
		}
		fmt.Fprintln(w)
	}
	return nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func humanCount(n uint64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return strconv.FormatUint(n, 10)
}
