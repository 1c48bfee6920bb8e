package bench

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/dfill/dfill/cmd/dfill/internal/cli"
	"github.com/dfill/dfill/engine"
	"github.com/dfill/dfill/engine/gguf"
	"github.com/dfill/dfill/engine/kernel"
)

// kernelShape is one weight matrix of a model: rows (outputs) × cols
// (inputs), PerLayer times in each block (0: the output matrix).
type kernelShape struct {
	Name       string
	Rows, Cols int
	PerLayer   int
}

// kernelModel is a model the bench knows: its blocks and the distinct
// weight matrices of one block, and the output matrix.
type kernelModel struct {
	Layers int
	Shapes []kernelShape
}

// kernelModels are the models whose GEMM shapes the bench knows.
var kernelModels = map[string]kernelModel{
	"qwen2.5-0.5b": {24, []kernelShape{
		{"attn_q", 896, 896, 2}, {"attn_kv", 128, 896, 2}, {"ffn_up", 4864, 896, 2},
		{"ffn_down", 896, 4864, 1}, {"output", 151936, 896, 0},
	}},
	// The embedded model (cmd/dfill/model/MODEL.md).
	"dfill-go": {4, []kernelShape{
		{"attn_q", 256, 256, 4}, {"ffn_up", 704, 256, 2}, {"ffn_down", 256, 704, 1}, {"output", 4096, 256, 0},
	}},
	"tiny": {2, []kernelShape{
		{"attn_q", 64, 64, 2}, {"attn_kv", 32, 64, 2}, {"ffn_up", 192, 64, 2}, {"ffn_down", 64, 192, 1}, {"output", 512, 64, 0},
	}},
}

// layerBytes is what packing all of the model's layer matrices of type t
// ahead would take (kernel.PrepackBytes).
func (m kernelModel) layerBytes(t gguf.Type) int {
	n := 0
	for _, s := range m.Shapes {
		n += s.PerLayer * kernel.PrepackBytes(kernel.Matrix{Type: t, Rows: s.Rows, Cols: s.Cols})
	}
	return m.Layers * n
}

// prepackMode is --prepack: "auto" packs a weight ahead when the engine
// would (engine.Prepacks), "true" always, "false" never.
type prepackMode string

func (p *prepackMode) String() string { return string(*p) }

func (p *prepackMode) Set(s string) error {
	switch s {
	case "auto", "true", "false":
		*p = prepackMode(s)
		return nil
	}
	return fmt.Errorf("want auto, true or false, not %q", s)
}

// IsBoolFlag lets a bare --prepack mean true.
func (p *prepackMode) IsBoolFlag() bool { return true }

// packs reports whether the bench packs ahead the weight w, shape s of
// model.
func (p prepackMode) packs(model kernelModel, s kernelShape, w kernel.Matrix) bool {
	switch p {
	case "true":
		return true
	case "false":
		return false
	}
	return engine.Prepacks(w, s.PerLayer > 0, model.layerBytes(w.Type))
}

// kernelCell is one measurement: a shape, a batch of M activation rows and
// a weight type.
type kernelCell struct {
	Model      string  `json:"model"`
	Shape      string  `json:"shape"`
	M          int     `json:"m"`
	Rows       int     `json:"rows"`
	Cols       int     `json:"cols"`
	Type       string  `json:"type"`
	Packed     bool    `json:"packed"`      // the weight was packed ahead (--prepack)
	GFLOPs     float64 `json:"gflops"`      // median over the repeats
	Spread     float64 `json:"spread"`      // (max−min)/median over the repeats
	PeakGFLOPs float64 `json:"peak_gflops"` // median peak of the product's instruction measured around each repeat (the higher of before and after)
	PeakOf     string  `json:"peak_of"`     // that instruction: "fma", or "vnni" (int8 VPDPBUSD, a Q8_0 product on avx512-vnni)
	PctPeak    float64 `json:"pct_peak"`    // median of GFLOPs/peak over the repeats, in %
	BLASGFLOPs float64 `json:"blas_gflops"` // OpenBLAS sgemm on the same shape (0: not built with -tags blas)
	XBLAS      float64 `json:"x_blas"`      // median of GFLOPs/BLASGFLOPs over the repeats
	BLASSpread float64 `json:"blas_spread"` // (max−min)/median of the BLAS repeats
}

// kernelReport is what `dfill bench kernels` prints.
type kernelReport struct {
	Variant       string       `json:"variant"`
	Threads       int          `json:"threads"`
	PeakGFLOPs    float64      `json:"peak_gflops"` // FMA peak on all threads at once
	PeakPerThread float64      `json:"peak_gflops_per_thread"`
	PeakSpread    float64      `json:"peak_spread"`
	VNNIPeak      float64      `json:"vnni_peak_gops,omitempty"`   // int8 VPDPBUSD peak on all threads (GOP/s)
	BF16Peak      float64      `json:"bf16_peak_gflops,omitempty"` // VDPBF16PS peak on all threads (no kernel uses it: engine/kernel/_asm/bf16.go)
	BLAS          string       `json:"blas"`
	Prepack       string       `json:"prepack"` // --prepack: auto (as the engine does), true or false
	Cells         []kernelCell `json:"cells"`
}

// kernelsFlags are the flags of `dfill bench kernels`.
type kernelsFlags struct {
	shared  cli.Shared
	models  string
	m       string
	types   string
	shapes  string
	minTime time.Duration
	repeats int
	prepack prepackMode
	variant string
	asJSON  bool
}

func kernelsCommand() *cli.Command {
	f := &kernelsFlags{prepack: "auto"}
	return &cli.Command{
		Name:    "kernels",
		Summary: "GFLOP/s of the matrix kernels next to the FMA (and VNNI) peak, and OpenBLAS with -tags blas",
		Shared:  &f.shared,
		Flags:   f.register,
		Run:     f.run,
	}
}

func (f *kernelsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.models, "models", "qwen2.5-0.5b,tiny", "models whose GEMM shapes to measure: "+strings.Join(slices.Sorted(maps.Keys(kernelModels)), ", "))
	fs.StringVar(&f.m, "m", "16,32,64,256,576", "numbers of activation rows (tokens) M")
	fs.StringVar(&f.types, "types", "f32,f16,bf16,q8_0,q4_k", "weight types")
	fs.StringVar(&f.shapes, "shapes", "", "only these shapes (comma-separated names; default all)")
	fs.DurationVar(&f.minTime, "min-time", 100*time.Millisecond, "minimum time of one repeat of a cell")
	fs.IntVar(&f.repeats, "repeats", 3, "repeats per cell; the median is reported, the spread says how noisy")
	fs.Var(&f.prepack, "prepack", "pack the weights ahead (kernel.Prepack): auto, as the engine does (a model's layer matrices when their float32 copies fit 64 MB, and every Q8_0 weight on avx512-vnni); true; or false")
	fs.StringVar(&f.variant, "variant", "", "kernel set to measure: one of "+strings.Join(kernel.Variants(), ", ")+" (default: the fastest)")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON")
}

// run measures every shape of the --models for every M and type.
func (f *kernelsFlags) run(ctx context.Context, _ []string) error {
	mList, typeList, only, err := f.parse()
	if err != nil {
		return err
	}
	threads := max(f.shared.Threads, 1)
	repeats := max(f.repeats, 1)
	if f.variant != "" {
		restore, err := kernel.SetVariant(f.variant)
		if err != nil {
			return fmt.Errorf("--variant: %w", err)
		}
		defer restore()
	}

	rep := kernelReport{Variant: kernel.Variant(), Threads: threads, BLAS: blasName(), Prepack: string(f.prepack)}
	var p1, pn []float64
	for range repeats {
		p1 = append(p1, peakSample(kernel.FMAPeak, 1, f.minTime))
		pn = append(pn, peakSample(kernel.FMAPeak, threads, f.minTime))
	}
	rep.PeakPerThread, _ = medianSpread(p1)
	rep.PeakGFLOPs, rep.PeakSpread = medianSpread(pn)
	rep.VNNIPeak = peakSample(kernel.VNNIPeak, threads, f.minTime)
	rep.BF16Peak = peakSample(kernel.BF16Peak, threads, f.minTime)
	setBLASThreads(threads)

	pool := kernel.NewPool(threads)
	defer pool.Close()
	for _, model := range strings.Split(f.models, ",") {
		model = strings.TrimSpace(model)
		km, ok := kernelModels[model]
		if !ok {
			return fmt.Errorf("--models: unknown model %q", model)
		}
		for _, s := range km.Shapes {
			if only != nil && !only[s.Name] {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			cells, err := benchShape(pool, model, s, mList, typeList, f.minTime, repeats, threads, f.prepack)
			if err != nil {
				return err
			}
			rep.Cells = append(rep.Cells, cells...)
		}
	}
	if f.asJSON {
		return cli.PrintJSON(rep)
	}
	printKernelReport(rep)
	return nil
}

// parse reads --m, --types and --shapes (only is nil for all shapes).
func (f *kernelsFlags) parse() (mList []int, types []gguf.Type, only map[string]bool, err error) {
	if mList, err = parseInts(f.m); err != nil {
		return nil, nil, nil, fmt.Errorf("--m: %w", err)
	}
	for _, name := range strings.Split(f.types, ",") {
		t, err := parseKernelType(strings.TrimSpace(name))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--types: %w", err)
		}
		types = append(types, t)
	}
	if f.shapes != "" {
		only = map[string]bool{}
		for _, s := range strings.Split(f.shapes, ",") {
			only[strings.TrimSpace(s)] = true
		}
	}
	return mList, types, only, nil
}

func parseKernelType(name string) (gguf.Type, error) {
	for _, t := range []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16, gguf.TypeQ8_0, gguf.TypeQ4_K, gguf.TypeQ6_K} {
		if strings.EqualFold(t.String(), name) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown weight type %q (f32, f16, bf16, q8_0, q4_k, q6_k)", name)
}

// medianSpread returns the median of xs and (max−min)/median.
func medianSpread(xs []float64) (median, spread float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	median = s[len(s)/2]
	if median > 0 {
		spread = (s[len(s)-1] - s[0]) / median
	}
	return median, spread
}

// benchShape measures one weight shape for every M and type. Each repeat
// times, back to back, the FMA peak, MatMul and OpenBLAS sgemm on the same
// shape (when built with it), so that the ratios compare runs that shared
// the machine's load; the medians of the ratios are reported.
func benchShape(pool *kernel.Pool, model string, s kernelShape, mList []int, types []gguf.Type, minTime time.Duration, repeats, threads int, prepack prepackMode) ([]kernelCell, error) {
	maxM := slices.Max(mList)
	r := rand.New(rand.NewPCG(1, uint64(s.Rows)))
	x := make([]float32, maxM*s.Cols)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	out := make([]float32, maxM*s.Rows)
	var cells []kernelCell
	var f32 []float32 // the weight as float32, for OpenBLAS
	for _, typ := range types {
		if s.Cols%typ.BlockSize() != 0 {
			continue // e.g. a K-quant row of 896: not a whole number of super-blocks
		}
		w, err := benchWeight(typ, s.Rows, s.Cols, r)
		if err != nil {
			return nil, err
		}
		if blasAvailable() && f32 == nil {
			f32 = make([]float32, s.Rows*s.Cols)
			if err := kernel.Dequantize(w.Type, w.Data, f32); err != nil {
				return nil, fmt.Errorf("%s %s: %w", s.Name, typ, err)
			}
		}
		packed := prepack.packs(kernelModels[model], s, w)
		if packed {
			w = kernel.Prepack(w)
		}
		// On avx512-vnni a Q8_0 product runs VPDPBUSD, not FMAs: compare
		// it with that instruction's peak.
		peak, peakOf := kernel.FMAPeak, "fma"
		if typ == gguf.TypeQ8_0 && kernel.VNNIPeak(1) > 0 {
			peak, peakOf = kernel.VNNIPeak, "vnni"
		}
		for _, m := range mList {
			flops := 2 * float64(m) * float64(s.Rows) * float64(s.Cols)
			ours := func() { kernel.MatMul(pool, out, x, m, w) }
			blas := func() { blasSgemm(out, x, f32, m, s.Rows, s.Cols) }
			ours()
			if blasAvailable() {
				blas()
			}
			var g, b, pk, rPeak, rBLAS []float64
			for range repeats {
				// The peak is timed before and after the product and the
				// higher taken: another tenant of the machine slows one
				// sample now and then, and a ratio to it alone would
				// exceed 100%.
				p := peakSample(peak, threads, minTime/8)
				gi := flops * timeRate(minTime, ours) / 1e9
				p = max(p, peakSample(peak, threads, minTime/8))
				g, pk = append(g, gi), append(pk, p)
				if p > 0 {
					rPeak = append(rPeak, gi/p)
				}
				if blasAvailable() {
					bi := flops * timeRate(minTime, blas) / 1e9
					b, rBLAS = append(b, bi), append(rBLAS, gi/bi)
				}
			}
			c := kernelCell{Model: model, Shape: s.Name, M: m, Rows: s.Rows, Cols: s.Cols, Type: typ.String(), Packed: packed, PeakOf: peakOf}
			c.GFLOPs, c.Spread = medianSpread(g)
			c.PeakGFLOPs, _ = medianSpread(pk)
			rp, _ := medianSpread(rPeak)
			c.PctPeak = 100 * rp
			c.BLASGFLOPs, c.BLASSpread = medianSpread(b)
			c.XBLAS, _ = medianSpread(rBLAS)
			cells = append(cells, c)
		}
	}
	return cells, nil
}

// peakSample times peak (kernel.FMAPeak or VNNIPeak) on threads goroutines
// at once for about d and returns G operations/s; 0 without the
// instruction.
func peakSample(peak func(int) float64, threads int, d time.Duration) float64 {
	const iters = 1 << 18
	perCall := peak(iters)
	if perCall == 0 {
		return 0
	}
	calls := 0
	start := time.Now()
	for calls == 0 || time.Since(start) < d {
		var wg sync.WaitGroup
		for range threads {
			wg.Go(func() {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				peak(iters)
			})
		}
		wg.Wait()
		calls += threads
	}
	return perCall * float64(calls) / time.Since(start).Seconds() / 1e9
}

// timeRate runs fn for at least d and returns calls per second.
func timeRate(d time.Duration, fn func()) float64 {
	n := 0
	start := time.Now()
	for n == 0 || time.Since(start) < d {
		fn()
		n++
	}
	return float64(n) / time.Since(start).Seconds()
}

// benchWeight returns a rows×cols weight of typ with Gaussian-like values:
// 64 distinct random rows quantized once and repeated, so that a 151936-row
// output matrix takes seconds, not minutes, to build.
func benchWeight(typ gguf.Type, rows, cols int, r *rand.Rand) (kernel.Matrix, error) {
	const distinct = 64
	n := min(rows, distinct)
	src := make([]float32, n*cols)
	for i := range src {
		src[i] = float32(r.NormFloat64()) / float32(math.Sqrt(float64(cols)))
	}
	q, err := kernel.Quantize(typ, src)
	if err != nil {
		return kernel.Matrix{}, fmt.Errorf("bench weight %d×%d %s: %w", rows, cols, typ, err)
	}
	rowBytes := len(q) / n
	data := make([]byte, rows*rowBytes)
	for i := 0; i < rows; i += n {
		copy(data[i*rowBytes:], q)
	}
	return kernel.NewMatrix(typ, rows, cols, data)
}

func printKernelReport(rep kernelReport) {
	packed := "; weights packed ahead as the engine packs them"
	switch rep.Prepack {
	case "true":
		packed = "; every weight packed ahead"
	case "false":
		packed = "; no weight packed ahead"
	}
	vnni := ""
	if rep.VNNIPeak > 0 {
		vnni = fmt.Sprintf("; VNNI int8 peak %.0f GOP/s", rep.VNNIPeak)
	}
	if rep.BF16Peak > 0 {
		vnni += fmt.Sprintf("; VDPBF16PS peak %.0f GFLOP/s (unused)", rep.BF16Peak)
	}
	fmt.Printf("kernels: %s, %d threads; FMA peak %.1f GFLOP/s (%.1f per thread, spread %.0f%%)%s; BLAS: %s%s\n",
		rep.Variant, rep.Threads, rep.PeakGFLOPs, rep.PeakPerThread, 100*rep.PeakSpread, vnni, rep.BLAS, packed)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\tshape\trows×cols\tM\ttype\tpacked\tGFLOP/s\t±\tpeak\tof\t% peak\tBLAS GFLOP/s\t±\t× BLAS\t")
	for _, c := range rep.Cells {
		blas, bs, x := "-", "-", "-"
		if c.BLASGFLOPs > 0 {
			blas, bs, x = fmt.Sprintf("%.1f", c.BLASGFLOPs), fmt.Sprintf("%.0f%%", 100*c.BLASSpread), fmt.Sprintf("%.2f", c.XBLAS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d×%d\t%d\t%s\t%s\t%.1f\t%.0f%%\t%.0f\t%s\t%.0f\t%s\t%s\t%s\t\n",
			c.Model, c.Shape, c.Rows, c.Cols, c.M, c.Type, yesNo(c.Packed), c.GFLOPs, 100*c.Spread, c.PeakGFLOPs, c.PeakOf, c.PctPeak, blas, bs, x)
	}
	tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
