package kernel

import (
	"fmt"
	"unsafe"

	"github.com/dfill/dfill/engine/gguf"
)

// A Matrix is a weight matrix as a GGUF file stores it: Rows rows of Cols
// elements of Type, row-major, each row a whole number of Type's blocks (a
// GGUF tensor with dims [Cols, Rows]). Data may be a view into a mapped file.
type Matrix struct {
	Type       gguf.Type
	Rows, Cols int
	Data       []byte

	packed *packedWeight // set by Prepack
}

// packedWeight is a Matrix packed ahead for the kernel set in use: decoded
// and packed as the transposed product reads it (packWTask's layout, lanes
// rows a block), or, a Q8_0 or K-quant weight for the VNNI kernels, in
// panels of 16 rows (packQ8Panel, packKQPanel).
type packedWeight struct {
	lanes int
	data  []float32
	q8    []byte // the VNNI panels, vnniPanelBytes each
}

// Prepack returns w with its rows also decoded to float32 and packed the
// way MatMul's transposed product reads them, so that MatMul skips that
// step on every call and may take the transposed product for fewer
// activation rows. It costs four bytes per element on top of Data. A Q8_0,
// Q4_K, Q5_K or Q6_K weight is instead packed for the VNNI kernels, when
// they are in use: 1.01 to 1.06 times its own bytes. Without kernels that
// read a packed weight, w is returned as it is. PrepackBytes tells the
// cost ahead.
func Prepack(w Matrix) Matrix {
	if vnniType(w.Type) && w.Rows > 0 {
		w.packed = &packedWeight{q8: prepackVNNI(w)}
		return w
	}
	g := gemm
	dec := decoderFor(w.Type)
	if g == nil || g.tileRows[0] == nil || dec == nil || w.Rows == 0 || w.Cols == 0 || w.Cols >= maxPackCols {
		return w
	}
	job := matmulJob{g: g, cols: w.Cols, rows: w.Rows, data: w.Data, rowBytes: w.RowBytes(), dec: dec}
	if w.Type == gguf.TypeF32 {
		job.wf = viewF32(w.Data[:w.Rows*w.RowBytes()])
	}
	job.setOffsets()
	job.xp = make([]float32, gemmPackedLen(g, w.Rows, w.Cols))
	var scratch []float32
	if job.wf == nil {
		scratch = make([]float32, g.lanes*w.Cols)
	}
	job.packWeight(scratch, 0, (w.Rows+g.lanes-1)/g.lanes)
	w.packed = &packedWeight{lanes: g.lanes, data: job.xp}
	return w
}

// PrepackBytes returns how many bytes Prepack(w) would allocate.
func PrepackBytes(w Matrix) int {
	switch {
	case vnniType(w.Type):
		return (w.Rows + q8Lanes - 1) / q8Lanes * vnniPanelBytes(w.Type, w.Cols)
	case gemm == nil || gemm.tileRows[0] == nil || decoderFor(w.Type) == nil || w.Cols >= maxPackCols:
		return 0
	}
	return 4 * gemmPackedLen(gemm, w.Rows, w.Cols)
}

// Slice returns rows [lo, hi) of m, keeping what Prepack packed when lo is
// a whole number of its blocks of rows.
func (m Matrix) Slice(lo, hi int) Matrix {
	if lo < 0 || hi < lo || hi > m.Rows {
		panic(fmt.Sprintf("kernel: Matrix.Slice(%d, %d) of %d rows", lo, hi, m.Rows))
	}
	rb := m.RowBytes()
	s := Matrix{Type: m.Type, Rows: hi - lo, Cols: m.Cols, Data: m.Data[lo*rb : hi*rb]}
	switch pw := m.packed; {
	case pw == nil || lo == hi:
	case pw.q8 != nil && lo%q8Lanes == 0:
		ws := vnniPanelBytes(m.Type, m.Cols)
		s.packed = &packedWeight{q8: pw.q8[lo/q8Lanes*ws : (hi+q8Lanes-1)/q8Lanes*ws]}
	case pw.data != nil && lo%pw.lanes == 0:
		n := (hi - lo + pw.lanes - 1) / pw.lanes * pw.lanes * m.Cols
		s.packed = &packedWeight{lanes: pw.lanes, data: pw.data[lo*m.Cols:][:n]}
	}
	return s
}

// NewMatrix returns the Matrix of rows×cols elements of type t held in data,
// or an error if t is unknown, cols is not a whole number of t's blocks, or
// data is not exactly the bytes such a matrix takes.
func NewMatrix(t gguf.Type, rows, cols int, data []byte) (Matrix, error) {
	if rows < 0 || cols < 0 {
		return Matrix{}, fmt.Errorf("kernel: matrix %d×%d: %w: negative dimension", rows, cols, ErrSize)
	}
	rowSize, err := t.RowSize(cols)
	if err != nil {
		return Matrix{}, fmt.Errorf("kernel: matrix %d×%d %s: %w", rows, cols, t, err)
	}
	if cols > 0 && rows > len(data)/rowSize || rows*rowSize != len(data) {
		return Matrix{}, fmt.Errorf("kernel: matrix %d×%d %s: %w: needs %d bytes, got %d",
			rows, cols, t, ErrSize, rows*rowSize, len(data))
	}
	return Matrix{Type: t, Rows: rows, Cols: cols, Data: data}, nil
}

// RowBytes is the number of bytes one row of m takes.
func (m Matrix) RowBytes() int {
	return m.Cols / m.Type.BlockSize() * m.Type.TypeSize()
}

// MatMul computes out = x·Wᵀ for the m activation rows in x (m×w.Cols,
// row-major) and the weight w: out[i*w.Rows+r] = Σ_c x[i*w.Cols+c]·W[r][c],
// writing only out[:m*w.Rows]. The work is split over p's goroutines by
// weight rows; each output element is one Dot of an activation row and the
// decoded weight row, so the result is bitwise the same for any number of
// threads. A quantized or half-precision weight row is decoded once into
// per-goroutine scratch and used for all m activation rows. A Q8_0, Q4_K,
// Q5_K or Q6_K weight multiplies the activations quantized to blocks of 32
// int8 (QuantizesActivations; q8.go, kq8.go), with every kernel set.
//
// MatMul panics if out or x is too short or w is not a valid Matrix (a
// programming error: NewMatrix validates untrusted sizes).
func MatMul(p *Pool, out, x []float32, m int, w Matrix) {
	dec := checkMatMul(out, x, m, w)
	if m == 0 || w.Rows == 0 {
		return
	}
	if w.Cols == 0 {
		clear(out[:m*w.Rows]) // sums of no terms
		return
	}
	if QuantizesActivations(w.Type) {
		runQ8(p, x, m, []Product{{out, w}})
		return
	}
	var wf []float32
	if w.Type == gguf.TypeF32 {
		wf = viewF32(w.Data[:w.Rows*w.RowBytes()])
	}
	runMatMul(p, matmulJob{out: out, x: x, m: m, cols: w.Cols, rows: w.Rows,
		data: w.Data, rowBytes: w.RowBytes(), wf: wf, dec: dec,
		blockSize: w.Type.BlockSize(), typeSize: w.Type.TypeSize(), packed: w.packed})
}

// A Product is one of MatMulShared's products: MatMul's out and weight.
type Product struct {
	Out []float32
	W   Matrix
}

// maxShared is the most products MatMulShared runs in one loop.
const maxShared = 4

// checkMatMul panics unless out, x, m and w are MatMul's arguments, and
// returns w's row decoder.
func checkMatMul(out, x []float32, m int, w Matrix) rowDecoder {
	if m < 0 || len(out) < m*w.Rows || len(x) < m*w.Cols {
		panic(fmt.Sprintf("kernel: MatMul: m=%d, weight %d×%d: out has %d elements, x %d", m, w.Rows, w.Cols, len(out), len(x)))
	}
	dec := decoderFor(w.Type)
	if dec == nil || w.Cols%w.Type.BlockSize() != 0 || len(w.Data) < w.Rows*w.RowBytes() {
		panic(fmt.Sprintf("kernel: MatMul: invalid %s weight %d×%d with %d bytes", w.Type, w.Rows, w.Cols, len(w.Data)))
	}
	return dec
}

// MatMulShared computes MatMul(p, pr.Out, x, m, pr.W) for each of prods,
// bitwise the same, for weights that multiply the same activations, such
// as a block's query, key and value projections. Q8_0 and K-quant weights
// of one width (QuantizesActivations) share one quantization of the
// activations, and on the VNNI kernels multiply in one loop of the Pool:
// one quantization and one hand-off to the workers instead of one per
// weight. Other weights run one MatMul each.
func MatMulShared(p *Pool, x []float32, m int, prods ...Product) {
	for len(prods) > 0 {
		n := 1
		if QuantizesActivations(prods[0].W.Type) {
			for n < min(len(prods), maxShared) && QuantizesActivations(prods[n].W.Type) && prods[n].W.Cols == prods[0].W.Cols {
				n++
			}
		}
		if n > 1 && m > 0 && prods[0].W.Cols > 0 {
			for _, pr := range prods[:n] {
				checkMatMul(pr.Out, x, m, pr.W)
			}
			runQ8(p, x, m, prods[:n])
		} else {
			for _, pr := range prods[:n] {
				MatMul(p, pr.Out, x, m, pr.W)
			}
		}
		prods = prods[n:]
	}
}

// MatMulF32 is MatMul for a float32 weight w of rows×cols elements.
func MatMulF32(p *Pool, out, x []float32, m int, w []float32, rows, cols int) {
	if m < 0 || rows < 0 || cols < 0 || len(out) < m*rows || len(x) < m*cols || len(w) < rows*cols {
		panic(fmt.Sprintf("kernel: MatMulF32: m=%d, weight %d×%d: out has %d elements, x %d, w %d", m, rows, cols, len(out), len(x), len(w)))
	}
	if m == 0 || rows == 0 {
		return
	}
	runMatMul(p, matmulJob{out: out, x: x, m: m, cols: cols, rows: rows, wf: w})
}

// runMatMul runs job on p, or on a one-thread Pool when p is nil.
func runMatMul(p *Pool, job matmulJob) {
	if p == nil {
		p = serialPools.Get().(*Pool)
		defer serialPools.Put(p)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.products().run(job)
}

// run runs job on the Pool, whose lock the caller holds: with the
// micro-kernels, as the transposed product or the usual one, tiled; else
// as dot products of whole rows.
func (s *matmulState) run(job matmulJob) {
	threads := s.pool.threads
	s.job = job
	s.job.state = s
	if g := gemm; g != nil && job.cols > 0 {
		s.job.g = g
		s.job.setOffsets()
		prepacked := job.packed != nil && job.packed.lanes == g.lanes
		if gemmSwap(g, job, threads) || prepacked && gemmSwapPrepacked(g, job) {
			s.runTransposed(g, job, prepacked)
		} else {
			s.runTiled(g, job)
		}
	} else {
		s.pool.runW(job.rows, matmulGrain(job, threads), s.dotTask)
	}
	s.job = matmulJob{state: s} // drop references to the caller's buffers
}

// runTransposed runs s.job as the transposed product (gemmSwap): the
// weight packed as the lanes (packed now, or ahead by Prepack), tiles of
// activation rows broadcast against it.
func (s *matmulState) runTransposed(g *gemmKernels, job matmulJob, prepacked bool) {
	p, j := s.pool, &s.job
	if prepacked {
		j.xp = job.packed.data
	} else {
		j.xp = s.xpackFor(gemmPackedLen(g, job.rows, job.cols))
		blocks := (job.rows + g.lanes - 1) / g.lanes
		p.runW(blocks, max(1, (blocks+2*p.threads-1)/(2*p.threads)), s.packWTask)
	}
	j.nr = gemmTileWidth(g.nr, job.m, p.threads)
	tiles := (job.m + j.nr - 1) / j.nr
	p.runW(tiles, gemmGrain(matmulJob{m: job.rows, cols: job.cols, nr: j.nr}, g, tiles, p.threads), s.gemmSwapTask)
}

// runTiled runs s.job as the usual product: the activations packed as the
// lanes, tiles of weight rows broadcast against them, written to out
// directly or through the staging buffers (gemmStaged).
func (s *matmulState) runTiled(g *gemmKernels, job matmulJob) {
	p, j := s.pool, &s.job
	if gemmRowSplit(job, p.threads) {
		s.runRowSplit(g, job)
		return
	}
	j.xp = s.xpackFor(gemmPackedLen(g, job.m, job.cols))
	// Packing is a copy: split it only when it is big enough to pay for
	// waking the workers.
	units := j.packUnits()
	grain := max(4, (units+2*p.threads-1)/(2*p.threads))
	if job.m*job.cols < 1<<14 {
		grain = units
	}
	p.runW(units, grain, s.packTask)
	j.nr = gemmTileWidth(g.nr, job.rows, p.threads)
	tiles := (job.rows + j.nr - 1) / j.nr
	grain = gemmGrain(*j, g, tiles, p.threads)
	j.setStaging(g, grain)
	p.runW(tiles, grain, s.gemmTask)
}

// runRowSplit runs s.job as the usual product with the activations' rows
// split among the goroutines (gemmRowSplit): in units of two vectors of
// rows, or one when there are not two for each goroutine, each packed by
// the goroutine that multiplies it by the whole weight. With fewer rows
// than that, each goroutine packs all of them, in a part of the buffer of
// its own, and multiplies them by its share of the weight's tiles. A
// product of gemmMinWork multiply-adds or fewer runs on one goroutine.
func (s *matmulState) runRowSplit(g *gemmKernels, job matmulJob) {
	p, j := s.pool, &s.job
	plen := gemmPackedLen(g, job.m, job.cols)
	j.nr = gemmTileWidth(g.nr, job.rows, 1)
	serial := job.m*job.rows*job.cols <= gemmMinWork // waking a worker costs more
	switch {
	case job.m >= 2*g.lanes*p.threads:
		j.rowUnit = 2 * g.lanes
	case job.m >= g.lanes*p.threads:
		j.rowUnit = g.lanes
	case serial:
		j.rowUnits = 1
	default:
		j.nr = gemmTileWidth(g.nr, job.rows, p.threads)
		j.rowUnits = p.threads
		plen *= p.threads
	}
	if j.rowUnit > 0 {
		j.rowUnits = (job.m + j.rowUnit - 1) / j.rowUnit
	}
	grain := 1
	if serial {
		grain = j.rowUnits
	}
	j.xp = s.xpackFor(plen)
	j.setStaging(g, (job.rows+j.nr-1)/j.nr)
	p.runW(j.rowUnits, grain, s.rowTask)
}

// setOffsets sets where the first 16 rows of the job's output and input
// start (idx, xidx), for the micro-kernels' scattered stores and gathers.
func (j *matmulJob) setOffsets() {
	for l := range j.idx {
		j.idx[l] = int32(l * j.rows)
		j.xidx[l] = int32(l * j.cols)
	}
}

// setStaging sets j to write through the staging buffers, at most tiles
// tiles at a time, when the output's rows call for it (gemmStaged).
func (j *matmulJob) setStaging(g *gemmKernels, tiles int) {
	if g.tileOut[0] == nil || !gemmStaged(j.rows) {
		return
	}
	j.ldStage, j.stageTiles = gemmStageStride(tiles*j.nr), tiles
	for l := range j.idx {
		j.idx[l] = int32(l * j.ldStage)
	}
}

// gemmRowSplit reports whether the usual product on threads goroutines
// should split the activations' rows among them rather than the weight's
// (runRowSplit): when the weight, as float32, fits every core's L2 cache,
// as each goroutine reads all of it. Then each goroutine packs the rows it
// multiplies. With the weight split, each reads activations that another
// core packed, and that core writes them again in the next product: the
// lines cross between the caches one by one, both times. (attn_kv, 128×896,
// took as long on two threads as on one for 16 to 64 rows; split by rows
// it runs 1.5-1.7 times as fast.)
func gemmRowSplit(job matmulJob, threads int) bool {
	return threads > 1 && 4*job.rows*job.cols <= gemmRowSplitBytes
}

// gemmRowSplitBytes bounds the float32 weight of a product that splits the
// activations' rows (gemmRowSplit).
const gemmRowSplitBytes = 1 << 20

// matmulGrain picks how many weight rows one chunk takes: about eight chunks
// per thread so the threads finish together, but not so few rows that waking
// a goroutine costs more than the chunk.
func matmulGrain(job matmulJob, threads int) int {
	const minWork = 1 << 15 // multiply-adds per chunk
	perRow := (job.m + 1) * job.cols
	g := (job.rows + 8*threads - 1) / (8 * threads)
	return max(g, (minWork+perRow-1)/perRow, 1)
}

// matmulJob holds MatMul's arguments while a Pool runs it.
type matmulJob struct {
	state      *matmulState // the Pool's buffers
	out, x     []float32
	m          int
	rows, cols int
	data       []byte
	rowBytes   int
	blockSize  int       // elements per block of the weight's type
	typeSize   int       // bytes per block
	wf         []float32 // the weight as float32 when it can be used in place
	dec        rowDecoder
	g          *gemmKernels // the micro-kernels, when gemmTask runs the job
	nr         int          // broadcast rows per tile (gemmTileWidth)
	xp         []float32    // x packed for g (packX)
	// ldStage, when not 0, is the row stride of the per-worker staging
	// buffers the tiles write to before their rows are copied to out
	// (gemmStageStride).
	ldStage    int
	stageTiles int           // the most tiles staged at once
	rowUnit    int           // activation rows per unit of rowTask (gemmRowSplit), or 0
	rowUnits   int           // units of rowTask
	packed     *packedWeight // the weight packed ahead (Prepack), or nil
	idx        [16]int32     // l·rows for l < 16 (l·ldStage when staged): where output rows start
	xidx       [16]int32     // l·cols for l < 16: where input rows start
}

// tileBytes is about how much decoded weight one goroutine keeps at a time:
// the tile is reused for every activation row, so it should stay in L1/L2.
const tileBytes = 32 << 10

// task computes output columns [lo, hi) (weight rows) for all m rows of x.
func (j *matmulJob) task(worker, lo, hi int) {
	cols, rows := j.cols, j.rows
	tile := max(1, min(hi-lo, tileBytes/(4*max(cols, 1))))
	var scratch []float32
	if j.wf == nil {
		scratch = j.state.scratchFor(worker, tile*cols)
	}
	for r0 := lo; r0 < hi; r0 += tile {
		r1 := min(r0+tile, hi)
		var wt []float32 // rows r0..r1 of the weight, decoded
		if j.wf != nil {
			wt = j.wf[r0*cols : r1*cols]
		} else {
			wt = scratch[:(r1-r0)*cols]
			j.dec(wt, j.data[r0*j.rowBytes:r1*j.rowBytes])
		}
		for i := 0; i < j.m; i++ {
			xi := j.x[i*cols : (i+1)*cols]
			o := j.out[i*rows+r0 : i*rows+r1]
			for r := range o {
				o[r] = dotF32(xi, wt[r*cols:(r+1)*cols])
			}
		}
	}
}

// littleEndian reports whether this machine stores a float32 as GGUF does,
// so F32 weights can be used in place.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// viewF32 returns b as float32s without copying when it is aligned and the
// machine is little-endian, or nil, in which case MatMul decodes F32 rows
// like any other type.
func viewF32(b []byte) []float32 {
	if len(b) == 0 || !littleEndian || uintptr(unsafe.Pointer(&b[0]))%4 != 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}

// Variants returns the kernel sets this machine can run, fastest first:
// "avx512-vnni", "avx512", "avx2" (each where the CPU has it) and
// "generic", the pure-Go kernels every other set is tested against.
func Variants() []string { return kernelVariants() }

// SetVariant installs the kernel set name (one of Variants) for every
// caller in the process, and returns a func that restores the fastest.
// It is for measurements and tests, which compare kernel sets; it must not
// run while a product does.
func SetVariant(name string) (restore func(), err error) {
	for _, v := range kernelVariants() {
		if v == name {
			return useVariant(name), nil
		}
	}
	return nil, fmt.Errorf("kernel: no kernel set %q on this machine (it has %v)", name, kernelVariants())
}
