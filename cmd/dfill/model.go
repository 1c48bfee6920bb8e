package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/dfill/dfill/engine"
	"github.com/dfill/dfill/engine/gguf"
)

func init() {
	register("model", "inspect or make models: model info|random|forward", runModel)
}

func runModel(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: dfill model info PATH | model random [flags] --out PATH | model forward PATH --tokens 1,2,3")
		return errUsage
	}
	switch args[0] {
	case "info":
		return runModelInfo(args[1:])
	case "random":
		return runModelRandom(args[1:])
	case "forward":
		return runModelForward(ctx, args[1:])
	}
	fmt.Fprintf(os.Stderr, "dfill model: unknown subcommand %q (want info, random or forward)\n", args[0])
	return errUsage
}

// modelInfo is what `dfill model info --json` prints.
type modelInfo struct {
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
	Vocab       int               `json:"vocab"`
	Context     int               `json:"context"`
	RopeBase    float64           `json:"rope_base"`
	ShiftLogits bool              `json:"shift_logits"`
	MaskID      int32             `json:"mask_token_id"`
	Tokenizer   string            `json:"tokenizer"`
	Params      uint64            `json:"parameters"`
	TensorTypes map[string]int    `json:"tensor_types"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

func runModelInfo(args []string) error {
	fs := flag.NewFlagSet("model info", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	all := fs.Bool("metadata", false, "also print every metadata key")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: dfill model info [--json] PATH")
		return errUsage
	}
	path := fs.Arg(0)
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
	info := modelInfo{
		Path: path, FileSize: st.Size(), Arch: string(c.Arch), Name: m.Name(),
		Layers: c.Layers, Dim: c.Dim, Heads: c.Heads, KVHeads: c.KVHeads, HeadDim: c.HeadDim, FFN: c.FFN,
		Vocab: c.Vocab, Context: c.Context, RopeBase: c.RopeBase, ShiftLogits: c.ShiftLogits, MaskID: c.MaskID,
		Params: f.ParameterCount(), TensorTypes: map[string]int{},
	}
	model, _ := f.String("tokenizer.ggml.model")
	pre, _ := f.String("tokenizer.ggml.pre")
	info.Tokenizer = fmt.Sprintf("%s (pre %s), %d tokens", model, pre, m.Tokenizer.VocabSize())
	for _, t := range f.Tensors {
		info.TensorTypes[t.Type.String()]++
	}
	if *all {
		info.Metadata = map[string]string{}
		for _, kv := range f.Metadata {
			info.Metadata[kv.Key] = kv.Value.String()
		}
	}
	if *asJSON {
		return printJSON(info)
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintf(w, "file        %s (%s)\n", path, humanBytes(info.FileSize))
	fmt.Fprintf(w, "arch        %s  name %q\n", info.Arch, info.Name)
	fmt.Fprintf(w, "parameters  %s (%d)\n", humanCount(info.Params), info.Params)
	fmt.Fprintf(w, "layers      %d\n", info.Layers)
	fmt.Fprintf(w, "dim         %d  ffn %d\n", info.Dim, info.FFN)
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
	if *all {
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

func runModelRandom(args []string) error {
	fs := flag.NewFlagSet("model random", flag.ContinueOnError)
	arch := fs.String("arch", "llada", "architecture: dream or llada")
	preset := fs.String("preset", "", "named shape: "+strings.Join(engine.PresetNames(), ", "))
	var s engine.Spec
	fs.IntVar(&s.Layers, "layers", 0, "transformer blocks")
	fs.IntVar(&s.Dim, "dim", 0, "embedding width")
	fs.IntVar(&s.Heads, "heads", 0, "attention heads")
	fs.IntVar(&s.KVHeads, "kv-heads", 0, "key/value heads")
	fs.IntVar(&s.FFN, "ffn", 0, "feed-forward width")
	fs.IntVar(&s.Vocab, "vocab", 0, "vocabulary size")
	fs.IntVar(&s.Context, "ctx", 0, "context length")
	typ := fs.String("type", "f32", "weight type: f32, f16, bf16, q8_0, q4_k, q6_k")
	seed := fs.Uint64("seed", 1, "random seed")
	out := fs.String("out", "", "output GGUF `path` (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		fmt.Fprintln(os.Stderr, "dfill model random: --out is required")
		return errUsage
	}
	spec := engine.Presets["tiny"]
	if *preset != "" {
		p, ok := engine.Presets[*preset]
		if !ok {
			return fmt.Errorf("unknown preset %q (want %s)", *preset, strings.Join(engine.PresetNames(), ", "))
		}
		spec = p
	}
	// Explicit sizes override the preset's.
	for _, o := range []struct {
		dst *int
		v   int
	}{
		{&spec.Layers, s.Layers}, {&spec.Dim, s.Dim}, {&spec.Heads, s.Heads}, {&spec.KVHeads, s.KVHeads},
		{&spec.FFN, s.FFN}, {&spec.Vocab, s.Vocab}, {&spec.Context, s.Context},
	} {
		if o.v != 0 {
			*o.dst = o.v
		}
	}
	if s.Heads != 0 && s.KVHeads == 0 {
		spec.KVHeads = s.Heads
	}
	a, err := engine.ParseArch(*arch)
	if err != nil {
		return err
	}
	spec.Arch = a
	if spec.Type, err = gguf.ParseType(*typ); err != nil {
		return err
	}
	spec.Seed = *seed
	if *preset != "" {
		spec.Name = "random-" + *preset
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := engine.WriteRandom(w, spec); err != nil {
		f.Close()
		os.Remove(*out)
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func runModelForward(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("model forward", flag.ContinueOnError)
	tokens := fs.String("tokens", "", "comma-separated token ids")
	text := fs.String("text", "", "text to tokenize instead of --tokens")
	asJSON := fs.Bool("json", false, "print JSON: {tokens, vocab, logits: [[...], ...]}")
	threads := fs.Int("threads", 0, "CPU threads (0: all)")
	if err := parseFlags(fs, reorderArgs(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: dfill model forward PATH --tokens 1,2,3 [--json]")
		return errUsage
	}
	m, err := engine.Load(fs.Arg(0), engine.LoadOptions{Threads: threadCount(*threads)})
	if err != nil {
		return err
	}
	defer m.Close()
	var ids []int32
	if *text != "" {
		ids = m.Tokenizer.EncodePlain(*text)
	}
	for _, s := range strings.Split(*tokens, ",") {
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
	if *asJSON {
		rows := make([][]float32, len(ids))
		for i := range rows {
			rows[i] = logits[i*vocab : (i+1)*vocab]
		}
		return printJSON(struct {
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

// reorderArgs moves the flags of fs that follow positional arguments in
// front of them, so `dfill model forward PATH --tokens 1,2` parses as
// users type it. A flag takes the next argument as its value unless it is
// a bool flag of fs or is written -name=value.
func reorderArgs(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && !isBoolFlag(fs, a) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

// isBoolFlag reports whether arg (-name or --name) names a bool flag of fs.
func isBoolFlag(fs *flag.FlagSet, arg string) bool {
	f := fs.Lookup(strings.TrimLeft(arg, "-"))
	if f == nil {
		return strings.TrimLeft(arg, "-") == "h" || strings.TrimLeft(arg, "-") == "help"
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func threadCount(n int) int {
	if n > 0 {
		return n
	}
	return numCPU()
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
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
