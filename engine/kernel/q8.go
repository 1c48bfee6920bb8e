package kernel

import (
	"encoding/binary"
	"math"
	"runtime"
	"sync"
	"unsafe"

	"github.com/dfill/dfill/engine/gguf"
)

// Q8_0 products. MatMul multiplies a Q8_0 weight as llama.cpp does: the
// activations are quantized too, to blocks of 32 int8 with one float32
// scale (quantQ8RowGeneric), and each block's products are summed exactly
// as integers:
//
//	out[i][r] = Σ_b float32(Σ_k qx[i][32b+k]·qw[r][32b+k]) · float32(dx[i][b]·dw[r][b])
//
// the blocks taken in order, each added with one fused multiply-add, from 0.
// The AVX-512 VNNI kernels compute exactly this (the tests check them
// bitwise against a pure-Go loop of this formula). The other kernel sets,
// the pure-Go ones included, multiply the dequantized activations (qx·dx)
// by the decoded weight with their float32 kernels: the same product up to
// float32 rounding, at their float32 speed (the integer loop in Go is
// several times slower). The K-quant products quantize the activations the
// same way, and take the same two routes (kq8.go).

const (
	q8Lanes      = 16                // weight rows per VNNI panel
	q8PanelBlock = 8*64 + 4*q8Lanes  // bytes of one block of a panel: weights, then scales
	q8TileRows   = 7                 // activation rows per VNNI tile (_asm's maxQ8Rows)
	q8TileCols   = 2 * q8Lanes       // weight rows per VNNI tile: two panels
	q8ChunkBytes = 256 << 10         // activation bytes one unit of q8Task takes
	rneMagic     = float32(0x1.8p23) // x+rneMagic−rneMagic rounds x to an integer, half to even
	q8Offset     = 128               // added to a weight byte to make it unsigned (VPDPBUSD)
	q8MinWork    = 1 << 17           // multiply-adds below which a unit is not split further
	q8SerialWork = 1 << 18           // multiply-adds below which a row-split product runs on one goroutine
	q8QuantGrain = 1 << 13           // activations below which quantizing runs on one thread
	q8MaxAbs     = float32(127)      // largest quantized magnitude
	q8Align      = 64                // bytes: a cache line, where each chunk's quantized activations start

	// q8RowsSplitBytes: a Q8_0 product splits the activations' rows among
	// goroutines when its packed weight is no larger (q8SplitRows).
	q8RowsSplitBytes = 512 << 10
)

// A q8Tile is a VNNI micro-kernel (_asm's q8Tile): nr activation rows times
// one or two panels of 16 weight rows, over nb blocks.
type q8Tile func(out *float32, ldo int, w *byte, ws int, x *int8, xd *float32, xc *int32, m, nb, valid int, pf *byte)

// q8Tiles holds the VNNI micro-kernels, [panels-1][rows-1], or nil when the
// kernel set in use has none.
var q8Tiles *[2][q8TileRows]q8Tile

// quantQ8Row quantizes one row of activations (quantQ8RowGeneric); an
// assembly version replaces it at init.
var quantQ8Row = quantQ8RowGeneric

// quantQ8RowGeneric quantizes the len(x)/32 blocks of one activation row
// into the block-major layout of m rows: block b goes to qs[32·m·b:][:32],
// its scale to d[m·b] and −128 times the sum of its values to corr[m·b]
// (what VPDPBUSD's unsigned weight bytes add). A block's scale is amax/127,
// and each value is x·(1/scale) rounded half to even.
func quantQ8RowGeneric(qs []int8, d []float32, corr []int32, x []float32, m int) {
	for b := 0; b < len(x)/qk8_0; b++ {
		blk := x[b*qk8_0 : (b+1)*qk8_0]
		var amax float32
		for _, v := range blk {
			amax = max(amax, math.Float32frombits(math.Float32bits(v)&^(1<<31)))
		}
		db := amax / q8MaxAbs
		id := q8Inverse(db)
		q := qs[b*qk8_0*m : b*qk8_0*m+qk8_0]
		var sum int32
		for k, v := range blk {
			t := float32(v * id)
			r := int32(float32(t+rneMagic) - rneMagic)
			q[k] = int8(r)
			sum += r
		}
		d[b*m], corr[b*m] = db, -q8Offset*sum
	}
}

// q8Inverse returns 1/d, what quantizing a block of scale d multiplies its
// values by, or 0 where d is 0 or so small (the block's values all below
// about 2⁻¹²¹) that 1/d overflows float32: such a block quantizes to
// zeros, on every platform. (quantQ8RowZ gives it zeros one block at a
// time, but −128 four blocks at a time, where its packing saturates the
// conversion of an infinity.)
func q8Inverse(d float32) float32 {
	if id := 1 / d; d != 0 && id <= math.MaxFloat32 {
		return id
	}
	return 0
}

// roundQ8Row rounds one row of activations to their quantized values
// (roundQ8RowGeneric); an assembly version replaces it at init.
var roundQ8Row = roundQ8RowGeneric

// roundQ8RowGeneric writes to dst the len(x)/32 blocks of one activation
// row quantized as quantQ8RowGeneric quantizes them and dequantized again,
// each value q·scale in float32 (q, an integer in float32, times the scale
// is exact or rounded once, as float32(int8(q))·scale is): the activations
// a kernel set without VNNI multiplies, in one pass, with no integers.
func roundQ8RowGeneric(dst, x []float32) {
	for b := 0; b < len(x)/qk8_0; b++ {
		blk, out := (*[qk8_0]float32)(x[b*qk8_0:]), (*[qk8_0]float32)(dst[b*qk8_0:])
		// amax as the largest magnitude's bits: they order as the
		// magnitudes do (a NaN's above +Inf), and an integer max is a
		// conditional move where float32's max also orders zeros and NaNs.
		const mag = 1<<31 - 1
		var m0, m1, m2, m3 uint32
		for k := 0; k < qk8_0; k += 4 {
			m0 = max(m0, math.Float32bits(blk[k])&mag)
			m1 = max(m1, math.Float32bits(blk[k+1])&mag)
			m2 = max(m2, math.Float32bits(blk[k+2])&mag)
			m3 = max(m3, math.Float32bits(blk[k+3])&mag)
		}
		db := math.Float32frombits(max(m0, m1, m2, m3)) / q8MaxAbs
		id := q8Inverse(db)
		for k, v := range blk {
			t := float32(v * id)
			out[k] = float32(float32(t+rneMagic)-rneMagic) * db
		}
	}
}

// q8Job holds the arguments of products that quantize their activations
// (Q8_0 and K-quant weights) and those activations, quantized, while a
// Pool runs them.
//
// With the VNNI kernels the activation rows are split in chunks of
// q8Job.chunk rows, and each chunk is quantized into a region of its own,
// starting on a cache line: block-major for its rows (quantQ8RowGeneric's
// layout with m the chunk's length). A product either splits the weight's rows among goroutines
// (each multiplies all the activations by some panels, after a loop in
// which each goroutine quantizes some blocks of every row) or, for a small
// weight, the activations' rows (each quantizes a chunk and multiplies it
// by every panel, in one loop): data quantized on one core and read on the
// other crosses between the cores' caches line by line, and for a weight
// of a few panels that costs more than the product. Either way two
// goroutines write to one line of activations only where their parts meet.
type q8Job struct {
	state     *matmulState // the Pool's buffers
	x         []float32
	m         int
	cols      int
	nb        int // blocks per row
	prods     [maxShared]Product
	firstPair [maxShared + 1]int // pairs of the products before each: product k has pairs [firstPair[k], firstPair[k+1])
	qs        []int8             // the activations, by chunk, block-major
	xd        []float32          // their scales
	xc        []int32            // their corrections
	xy        []float32          // on VNNI, when a product is Q4_K or Q5_K: xd·Σqx per block (kqExtras)
	xh        []int32            // on VNNI, when a product is Q6_K: −32·Σqx per half block, two per cell
	xf        []float32          // without VNNI: the activations quantized and dequantized (roundQ8Row), row-major
	tiles     *[2][q8TileRows]q8Tile
	kq        *kqKernels // the K-quant kernels, when a product is one
	pairs     int        // tiles of weight rows (q8TileCols for Q8_0, kqLanes for a K-quant), over all the products
	chunk     int        // activation rows per chunk
	qsStride  int        // elements from one chunk's region of qs to the next
	sStride   int        // the same in xd and xc
	byRows    bool       // a unit of task is a chunk, quantized and multiplied by every pair
	parts     int        // units of quantTask per chunk, each some blocks of its rows
}

// runQ8 computes MatMul for the products, weights of x's cols columns
// whose products quantize the activations (QuantizesActivations: Q8_0 and
// the K-quants; at most maxShared of them), on p, or on a one-thread Pool
// when p is nil.
func runQ8(p *Pool, x []float32, m int, prods []Product) {
	if p == nil {
		p = serialPools.Get().(*Pool)
		defer serialPools.Put(p)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.products().runQ8(x, m, prods)
}

// runQ8 runs the products on the Pool, whose lock the caller holds: the
// activations are quantized once for all of them, then multiplied by each
// weight with the VNNI kernels or, on a kernel set without them,
// dequantized and multiplied by the decoded weights with the float32
// kernels.
func (s *matmulState) runQ8(x []float32, m int, prods []Product) {
	j := &s.q8
	cols := prods[0].W.Cols
	*j = q8Job{state: s, x: x, m: m, cols: cols, nb: cols / qk8_0}
	copy(j.prods[:], prods)
	if q8Tiles != nil {
		s.runVNNI(len(prods))
	} else {
		s.runDequantized(prods)
	}
	*j = q8Job{state: s} // drop references to the caller's buffers
}

// runDequantized runs the job's products without VNNI kernels: the
// activations, one chunk of all m rows, quantized and dequantized again
// into xf (roundQ8Row: qx·dx), then multiplied by each decoded weight with
// the float32 kernels (run). Each product is then the VNNI kernels' up to
// float32 rounding.
func (s *matmulState) runDequantized(prods []Product) {
	j := &s.q8
	j.chunk = j.m
	s.q8xf = growSlice(s.q8xf, j.m*j.cols)
	j.xf = s.q8xf
	j.quantizeAll(1)
	for _, pr := range prods {
		w := pr.W
		s.run(matmulJob{out: pr.Out, x: j.xf, m: j.m, cols: j.cols, rows: w.Rows,
			data: w.Data, rowBytes: w.RowBytes(), dec: decoderFor(w.Type),
			blockSize: w.Type.BlockSize(), typeSize: w.Type.TypeSize(), packed: w.packed})
	}
}

// runVNNI runs the job's n products with the VNNI kernels, split by the
// weights' rows or the activations' (q8SplitRows).
func (s *matmulState) runVNNI(n int) {
	p, j := s.pool, &s.q8
	j.tiles, j.kq = q8Tiles, kqTiles
	packed, allPacked := 0, true
	tileRows, chunkBytes := q8TileRows, q8ChunkBytes
	var mins, halves bool // some product needs xy, xh
	for k, pr := range j.prods[:n] {
		width := q8TileCols
		if lay := kqLayoutOf(pr.W.Type); lay != nil {
			width, tileRows, chunkBytes = kqLanes, kqTileRows, kqChunkBytes
			mins, halves = mins || !lay.sub16, halves || lay.sub16
		}
		j.firstPair[k+1] = j.firstPair[k] + (pr.W.Rows+width-1)/width
		if pr.W.packed == nil {
			allPacked = false
		} else {
			packed += len(pr.W.packed.q8)
		}
	}
	j.pairs = j.firstPair[n]
	m, cols := j.m, j.cols
	switch {
	case q8SplitRows(p.threads, allPacked, packed):
		j.byRows = true
		j.chunk = (m + p.threads - 1) / p.threads
		if m*j.pairs*q8TileCols*cols < q8SerialWork {
			j.chunk = m // one goroutine: waking another costs more
		}
	default:
		j.chunk = min(m, max(tileRows, chunkBytes/cols/tileRows*tileRows))
	}
	chunks := (m + j.chunk - 1) / j.chunk
	j.allocate(chunks, mins, halves)
	if j.byRows {
		p.runW(chunks, 1, s.q8Task) // each unit quantizes its chunk too
		return
	}
	j.quantizeAll(chunks)
	units := j.pairs * chunks
	perUnit := q8TileCols * j.chunk * cols
	grain := max((units+8*p.threads-1)/(8*p.threads), (q8MinWork+perUnit-1)/perUnit, 1)
	p.runW(units, grain, s.q8Task)
}

// allocate points the job at the Pool's buffers for chunks chunks of
// quantized activations (of j.chunk rows), each region on a cache line,
// with the K-quant kernels' xy (mins) and xh (halves) when asked.
func (j *q8Job) allocate(chunks int, mins, halves bool) {
	s := j.state
	j.qsStride = roundUp(j.chunk*j.cols, q8Align)
	j.sStride = roundUp(j.chunk*j.nb, q8Align/4)
	s.q8qs = growAligned(s.q8qs, chunks*j.qsStride)
	s.q8xd = growAligned(s.q8xd, chunks*j.sStride)
	s.q8xc = growAligned(s.q8xc, chunks*j.sStride)
	j.qs, j.xd, j.xc = s.q8qs, s.q8xd, s.q8xc
	if mins {
		s.q8xy = growAligned(s.q8xy, chunks*j.sStride)
		j.xy = s.q8xy
	}
	if halves {
		s.q8xh = growAligned(s.q8xh, 2*chunks*j.sStride)
		j.xh = s.q8xh
	}
}

// q8SplitRows reports whether a Q8_0 product on a Pool of threads
// goroutines splits the activations' rows (q8Job) rather than the
// weights': when every weight is packed ahead (a goroutine would otherwise
// pack all of them) and their packed bytes are few enough to sit in every
// core's L2 cache. Then every goroutine reads all the weights, but only
// the activations it quantized.
func q8SplitRows(threads int, allPacked bool, packedBytes int) bool {
	if q8ForceSplit != "" {
		return q8ForceSplit == "rows"
	}
	return threads > 1 && allPacked && packedBytes <= q8RowsSplitBytes
}

// q8ForceSplit, when not "", forces q8SplitRows' answer: "rows" or "cols"
// (for tests).
var q8ForceSplit string

// roundUp returns n rounded up to a multiple of k.
func roundUp(n, k int) int { return (n + k - 1) / k * k }

// growSlice returns s resliced to n, reallocated when too short.
func growSlice[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// growAligned is growSlice for a slice that starts on a q8Align boundary.
func growAligned[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	var zero T
	size := int(unsafe.Sizeof(zero))
	buf := make([]T, n+q8Align/size)
	off := (q8Align - int(uintptr(unsafe.Pointer(&buf[0])))%q8Align) % q8Align / size
	return buf[off : off+n]
}

// region returns where chunk c's quantized activations are, and its number
// of rows.
func (j *q8Job) region(c int) (qs []int8, xd []float32, xc []int32, rows int) {
	return j.qs[c*j.qsStride:], j.xd[c*j.sStride:], j.xc[c*j.sStride:], min(j.chunk, j.m-c*j.chunk)
}

// extras returns where chunk c's xy and xh are (nil where the job has
// none).
func (j *q8Job) extras(c int) (xy []float32, xh []int32) {
	if j.xy != nil {
		xy = j.xy[c*j.sStride:]
	}
	if j.xh != nil {
		xh = j.xh[2*c*j.sStride:]
	}
	return xy, xh
}

// quantizeAll quantizes the job's activations in a loop of its own on the
// Pool: units of some blocks of every row of a chunk when there are enough
// activations to share, else one per chunk.
func (j *q8Job) quantizeAll(chunks int) {
	j.parts = 1
	if j.m*j.cols >= q8QuantGrain {
		j.parts = min(2*j.state.pool.threads, j.nb)
	}
	j.state.pool.runW(chunks*j.parts, 1, j.state.q8QuantTask)
}

// quantTask runs units [lo, hi) of the quantizing loop: unit u quantizes
// part u%parts of the blocks of every row of chunk u/parts.
func (j *q8Job) quantTask(_, lo, hi int) {
	for u := lo; u < hi; u++ {
		p := u % j.parts
		j.quantize(u/j.parts, p*j.nb/j.parts, (p+1)*j.nb/j.parts)
	}
}

// quantize quantizes blocks [b0, b1) of every row of chunk c, with the
// K-quants' extras when the job has them, or, when the job has xf, rounds
// them to their quantized values there (roundQ8Row).
func (j *q8Job) quantize(c, b0, b1 int) {
	if j.xf != nil {
		for i := c * j.chunk; i < min((c+1)*j.chunk, j.m); i++ {
			row := i*j.cols + b0*qk8_0
			roundQ8Row(j.xf[row:], j.x[row:i*j.cols+b1*qk8_0])
		}
		return
	}
	qs, xd, xc, n := j.region(c)
	qs, xd, xc = qs[b0*n*qk8_0:], xd[b0*n:], xc[b0*n:]
	xy, xh := j.extras(c)
	if xy != nil {
		xy = xy[b0*n:]
	}
	if xh != nil {
		xh = xh[2*b0*n:]
	}
	for r := range n {
		i := c*j.chunk + r
		x := j.x[i*j.cols+b0*qk8_0 : i*j.cols+b1*qk8_0]
		quantQ8Row(qs[r*qk8_0:], xd[r:], xc[r:], x, n)
		if xy != nil || xh != nil {
			var y []float32
			var h []int32
			if xy != nil {
				y = xy[r:]
			}
			if xh != nil {
				h = xh[2*r:]
			}
			kqExtras(y, h, qs[r*qk8_0:], xd[r:], xc[r:], n, b1-b0)
		}
	}
}

// task runs units [lo, hi) with the VNNI kernels. With byRows unit u is
// chunk u, quantized and multiplied by every pair of panels; otherwise it
// is pair u%pairs for chunk u/pairs (quantized by an earlier loop), and the
// units of one chunk are consecutive, so its activations stay in L2 while
// the weight streams by.
func (j *q8Job) task(worker, lo, hi int) {
	for u := lo; u < hi; u++ {
		if !j.byRows {
			j.pair(worker, u%j.pairs, u/j.pairs)
			continue
		}
		j.quantize(u, 0, j.nb)
		for t := range j.pairs {
			j.pair(worker, t, u)
		}
	}
}

// pair multiplies chunk c of the activations by pair t of the products'
// panels (counted over all of them), in tiles of up to q8TileRows rows.
func (j *q8Job) pair(worker, t, c int) {
	wi := 0 // the product whose pair it is
	for t >= j.firstPair[wi+1] {
		wi++
	}
	pr := &j.prods[wi]
	t -= j.firstPair[wi]
	if pr.W.Type != gguf.TypeQ8_0 {
		j.kqPanel(worker, pr, t, c)
		return
	}
	nb, rows := j.nb, pr.W.Rows
	ws := nb * q8PanelBlock
	qs, xd, xc, n := j.region(c)
	i0 := c * j.chunk
	r0 := t * q8TileCols
	valid := min(q8TileCols, rows-r0)
	v := (valid + q8Lanes - 1) / q8Lanes
	var w []byte
	var next *byte // the next pair of this weight, prefetched by the first tile
	if pr.W.packed != nil {
		w = pr.W.packed.q8[2*t*ws:]
		if r0+q8TileCols < rows {
			next = &w[2*ws]
		}
	} else {
		w = j.state.bytesFor(worker, v*ws)
		for p := 0; p < v; p++ {
			packQ8Panel(w[p*ws:(p+1)*ws], pr.W, 2*t+p)
		}
	}
	// Tiles of as equal a height as q8TileRows allows: a 1-row tile loads
	// the weight for 2 multiply-adds per byte instead of 14.
	tiles := (n + q8TileRows - 1) / q8TileRows
	for k, r := 0, 0; r < n; k++ {
		nr := n / tiles
		if k < n%tiles {
			nr++
		}
		j.tiles[v-1][nr-1](&pr.Out[(i0+r)*rows+r0], rows, &w[0], ws, &qs[r*qk8_0], &xd[r], &xc[r], n, nb, valid, next)
		r += nr
		next = nil
	}
}

// packQ8Panel packs panel p of the Q8_0 weight w (rows 16p..16p+15) for the
// VNNI kernels into dst (nb·q8PanelBlock bytes): block b at b·q8PanelBlock
// holds byte k of group g of lane l at 64g+4l+k, column 32b+4g+k of row
// 16p+l plus 128, then the lanes' scales as float32. Rows past the matrix
// get zero weights (byte 128) and zero scales.
func packQ8Panel(dst []byte, w Matrix, p int) {
	const offset = 0x80808080 // +128 in each byte (a sign flip)
	rb := w.RowBytes()
	for b := 0; b < w.Cols/qk8_0; b++ {
		blk := dst[b*q8PanelBlock : (b+1)*q8PanelBlock]
		for l := 0; l < q8Lanes; l++ {
			r := p*q8Lanes + l
			var d float32
			if r < w.Rows {
				src := w.Data[r*rb+b*q8_0Bytes : r*rb+(b+1)*q8_0Bytes]
				d = f16Table[binary.LittleEndian.Uint16(src)]
				for g := 0; g < 8; g++ {
					binary.LittleEndian.PutUint32(blk[64*g+4*l:], binary.LittleEndian.Uint32(src[2+4*g:])^offset)
				}
			} else {
				for g := 0; g < 8; g++ {
					binary.LittleEndian.PutUint32(blk[64*g+4*l:], offset)
				}
			}
			binary.LittleEndian.PutUint32(blk[8*64+4*l:], math.Float32bits(d))
		}
	}
}

// prepackVNNI packs every panel of the Q8_0 or K-quant weight w for the
// VNNI kernels (packQ8Panel, packKQPanel), on all the CPUs (a model's
// weights are packed once, at load).
func prepackVNNI(w Matrix) []byte {
	panels := (w.Rows + q8Lanes - 1) / q8Lanes
	ws := vnniPanelBytes(w.Type, w.Cols)
	pack := packQ8Panel
	if kqLayoutOf(w.Type) != nil {
		pack = packKQPanel
	}
	dst := make([]byte, panels*ws)
	threads := min(runtime.GOMAXPROCS(0), max(1, panels*ws>>20)) // a goroutine per MiB at least
	var wg sync.WaitGroup
	for t := range threads {
		wg.Go(func() {
			for p := t * panels / threads; p < (t+1)*panels/threads; p++ {
				pack(dst[p*ws:(p+1)*ws], w, p)
			}
		})
	}
	wg.Wait()
	return dst
}
