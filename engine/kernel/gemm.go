package kernel

// A gemmTile computes a tile of out = x·Wᵀ: v vectors of lanes activation
// rows (x packed by packX, the row blocks xs bytes apart) times nr weight
// rows starting at w, ws bytes apart, over k columns, into c[r*ldc+l].
// Every element is one chain of fused multiply-adds over the columns,
// starting from zero when load is 0 and from c otherwise.
type gemmTile func(c, x, w *float32, xs, ws, k, load int)

// A gemmTileOut is a gemmTile that can also write its sums straight to the
// output, scattered: with out non-nil, lane l goes to out[l*stride + r] for
// the first valid lanes, where idx[l] = l*stride for l < 16.
type gemmTileOut func(c, x, w *float32, xs, ws, k, load int, out *float32, idx *int32, valid int)

// gemmKernels is a set of register-blocked micro-kernels for one
// instruction set.
type gemmKernels struct {
	name  string
	lanes int           // activation rows per vector
	nr    int           // weight rows in a full tile
	ldc   int           // row stride of a tile's c, in elements (2·lanes)
	tile  [2][]gemmTile // [v-1][nr-1]: v vectors of rows, nr weight rows
	// tileOut, when not nil, replaces tile and stores the last chunk's sums
	// in out itself.
	tileOut [2][]gemmTileOut
	// pack, when not nil, packs k columns of a whole block of lanes rows,
	// row l starting at src[idx[l]] (packTask's loop, vectorized).
	pack func(dst, src *float32, idx *[16]int32, k int)
	// tileRows, when not nil (with pack), runs the transposed product
	// (gemmSwap).
	tileRows [2][]gemmTileRows
}

// gemm is the micro-kernel set MatMul uses, installed at init on CPUs the
// assembly supports; nil means the pure-Go loop of dot products.
var gemm *gemmKernels

const (
	// gemmXBytes is about how much packed x one chunk of columns takes: it is
	// swept once per weight tile, so it should stay in L2.
	gemmXBytes = 1 << 20
	// gemmAccBytes bounds one chunk's accumulators (its tiles × all rows).
	gemmAccBytes = 256 << 10
	// gemmPackCols is the width of one unit of packX's work.
	gemmPackCols = 256
	// maxPackCols bounds the row length the vectorized pack takes: its
	// gather offsets, 15 rows of 4-byte floats, must fit in an int32.
	maxPackCols = 1 << 25
)

// gemmPackedLen is the length of x packed for g: whole blocks of g.lanes
// rows.
func gemmPackedLen(g *gemmKernels, m, cols int) int {
	return (m + g.lanes - 1) / g.lanes * g.lanes * cols
}

// gemmKC returns how many columns one pass over x takes: all of them when
// x is small, else a multiple of 256 (a whole number of blocks of every
// type) that keeps the packed chunk near gemmXBytes. The chunking changes
// where the FMA chains pause, never their order.
func gemmKC(m, cols int) int {
	kc := gemmXBytes / (4 * max(m, 1)) / 256 * 256
	if kc < 256 {
		kc = 256
	}
	return min(kc, cols)
}

// packTask packs the units [lo, hi) of x: unit u is row block u/nk, columns
// [256·(u%nk), 256·(u%nk+1)), laid out so that one vector load gives column
// k of lanes consecutive rows: xp[b*cols*lanes + k*lanes + l] =
// x[(b*lanes+l)*cols + k], zero past row m.
func (j *matmulJob) packTask(_, lo, hi int) {
	cols, lanes := j.cols, j.g.lanes
	nk := (cols + gemmPackCols - 1) / gemmPackCols
	for u := lo; u < hi; u++ {
		b, k0 := u/nk, u%nk*gemmPackCols
		k1 := min(k0+gemmPackCols, cols)
		r0 := b * lanes
		n := min(lanes, j.m-r0)
		j.packBlock(j.xp[b*cols*lanes:(b+1)*cols*lanes], j.x[r0*cols:(r0+n)*cols], n, k0, k1)
	}
}

// packBlock packs columns [k0, k1) of the n ≤ lanes rows of src (j.cols
// apart) into the lane block blk, blk[k*lanes+l] = src[l*cols+k], with
// zeros in the lanes from n on. Whole blocks take g.pack when there is one.
func (j *matmulJob) packBlock(blk, src []float32, n, k0, k1 int) {
	cols, lanes := j.cols, j.g.lanes
	if k1 <= k0 {
		return
	}
	if j.g.pack != nil && n == lanes && cols < maxPackCols {
		j.g.pack(&blk[k0*lanes], &src[k0], &j.xidx, k1-k0)
		return
	}
	for l := 0; l < lanes; l++ {
		if l >= n {
			for k := k0; k < k1; k++ {
				blk[k*lanes+l] = 0
			}
			continue
		}
		for k, v := range src[l*cols+k0 : l*cols+k1] {
			blk[(k0+k)*lanes+l] = v
		}
	}
}

// packUnits is the number of packTask units for the job.
func (j *matmulJob) packUnits() int {
	return (j.m + j.g.lanes - 1) / j.g.lanes * ((j.cols + gemmPackCols - 1) / gemmPackCols)
}

// gemmMinWork is about as many multiply-adds as waking a worker costs,
// and more: the fewest a chunk of a product's loop takes, and the most a
// product splitting the activations' rows runs on one goroutine.
const gemmMinWork = 1 << 17

// gemmGrain picks how many tiles one chunk of a Pool's work takes: about
// eight chunks per thread, each at least gemmMinWork multiply-adds, and few
// enough that the chunk's accumulators stay within gemmAccBytes.
func gemmGrain(job matmulJob, g *gemmKernels, tiles, threads int) int {
	perTile := job.nr * job.m * job.cols
	c := (tiles + 8*threads - 1) / (8 * threads)
	c = max(c, (gemmMinWork+perTile-1)/perTile, 1)
	accTile := 4 * ctileLen * gemmMBlocks(g, job.m)
	return max(1, min(c, gemmAccBytes/accTile))
}

// gemmTileWidth picks how many broadcast rows a tile takes, at most maxNR
// and at least two thirds of it, for n rows split over threads: the width
// whose tiles leave the busiest thread the fewest rows, if that is at least
// a sixteenth fewer than with the widest tile (a narrower tile does fewer
// FMAs per load). 128 weight rows on two threads take 8 tiles of 8 each
// rather than 6 and 5 tiles of 12.
func gemmTileWidth(maxNR, n, threads int) int {
	busiest := func(nr int) int { return min(n, ((n+nr-1)/nr+threads-1)/threads*nr) }
	best, bestRows := maxNR, busiest(maxNR)
	limit := bestRows - bestRows/16
	for nr := maxNR - 1; nr >= max(1, (2*maxNR+2)/3); nr-- {
		if rows := busiest(nr); rows < bestRows && rows <= limit {
			best, bestRows = nr, rows
		}
	}
	return best
}

// tileVectors is how many vectors of lanes rows the micro-kernel call for
// block b (rows 2·lanes·b on) of n rows takes: 2, or 1 for a last block of
// at most lanes rows.
func tileVectors(n, b, lanes int) int {
	if n-2*lanes*b <= lanes {
		return 1
	}
	return 2
}

// gemmMBlocks is the number of micro-kernel calls that cover m rows.
func gemmMBlocks(g *gemmKernels, m int) int { return (m + 2*g.lanes - 1) / (2 * g.lanes) }

// gemmTask computes the weight-row tiles [lo, hi) for all m rows of x. It
// goes over the columns in chunks of gemmKC, so that the chunk of packed x
// stays in L2 while every tile sweeps it; each tile's weight rows are
// decoded chunk by chunk (or used in place when float32) into a piece small
// enough for L1, and the tiles' sums wait in per-worker accumulators
// between chunks. Then the accumulators are written to out.
func (j *matmulJob) gemmTask(worker, lo, hi int) {
	j.runTiles(worker, lo, hi, 0, j.m, j.xp)
}

// rowTask runs units [lo, hi) of a product that splits the activations'
// rows (gemmRowSplit): unit u packs rows [u·rowUnit, (u+1)·rowUnit) of x
// into their place in xp and multiplies them by every tile of weight rows.
// With rowUnit 0, unit u packs all of x into the goroutine's own part of
// xp and computes tiles [u·T/rowUnits, (u+1)·T/rowUnits) of the T.
func (j *matmulJob) rowTask(worker, lo, hi int) {
	tiles := (j.rows + j.nr - 1) / j.nr
	plen := gemmPackedLen(j.g, j.m, j.cols)
	for u := lo; u < hi; u++ {
		if j.rowUnit == 0 {
			xp := j.xp[worker*plen : (worker+1)*plen]
			j.packRows(xp, 0, j.m)
			j.runTiles(worker, u*tiles/j.rowUnits, (u+1)*tiles/j.rowUnits, 0, j.m, xp)
			continue
		}
		i0 := u * j.rowUnit
		i1 := min(i0+j.rowUnit, j.m)
		j.packRows(j.xp, i0, i1)
		j.runTiles(worker, 0, tiles, i0, i1, j.xp[i0*j.cols:])
	}
}

// packRows packs rows [i0, i1) of x, i0 a multiple of the lanes, into
// their blocks of xp (packTask's layout, all columns).
func (j *matmulJob) packRows(xp []float32, i0, i1 int) {
	cols, lanes := j.cols, j.g.lanes
	for r0 := i0; r0 < i1; r0 += lanes {
		n := min(lanes, j.m-r0)
		j.packBlock(xp[r0*cols:(r0+lanes)*cols], j.x[r0*cols:(r0+n)*cols], n, 0, cols)
	}
}

// runTiles runs gemmTiles for tiles [lo, hi) and activation rows [i0,
// i1) packed in xp, at most stageTiles tiles at a time when they write
// through the staging buffers (a serial Pool runs all tiles as one chunk).
func (j *matmulJob) runTiles(worker, lo, hi, i0, i1 int, xp []float32) {
	if j.ldStage == 0 {
		j.gemmTiles(worker, lo, hi, i0, i1, xp)
		return
	}
	for t := lo; t < hi; t += j.stageTiles {
		j.gemmTiles(worker, t, min(t+j.stageTiles, hi), i0, i1, xp)
	}
}

// gemmTiles computes tiles [lo, hi) (at most j.stageTiles of them when
// staged) for activation rows [i0, i1), packed in xp from row i0 (a
// multiple of the lanes) on.
func (j *matmulJob) gemmTiles(worker, lo, hi, i0, i1 int, xp []float32) {
	g := j.g
	cols, rows, m := j.cols, j.rows, i1-i0
	lanes, ldc := g.lanes, g.ldc
	mb := gemmMBlocks(g, m)
	acc := j.state.accFor(worker, (hi-lo)*mb*ctileLen)
	kc := gemmKC(m, cols)
	var scratch []float32
	if j.wf == nil {
		scratch = j.state.scratchFor(worker, j.nr*kc)
	}
	bs, ts := 1, 4
	if j.wf == nil {
		bs, ts = j.blockSize, j.typeSize
	}
	var stage []float32
	if j.ldStage > 0 {
		stage = j.state.stageFor(worker, m*j.ldStage)
	}
	for k0 := 0; k0 < cols; k0 += kc {
		kn := min(kc, cols-k0)
		for t := lo; t < hi; t++ {
			r0 := t * j.nr
			nr := min(j.nr, rows-r0)
			var w *float32
			var ws int
			if j.wf != nil {
				w, ws = &j.wf[r0*cols+k0], 4*cols
			} else {
				buf := scratch[:nr*kn]
				off := k0 / bs * ts
				for r := 0; r < nr; r++ {
					row := j.data[(r0+r)*j.rowBytes : (r0+r+1)*j.rowBytes]
					j.dec(buf[r*kn:(r+1)*kn], row[off:off+kn/bs*ts])
				}
				w, ws = &buf[0], 4*kn
			}
			last := k0+kn == cols
			for b := 0; b < mb; b++ {
				v := tileVectors(m, b, lanes)
				c := acc[((t-lo)*mb+b)*ctileLen:]
				x := &xp[2*lanes*b*cols+k0*lanes]
				if g.tileOut[0] == nil {
					g.tile[v-1][nr-1](&c[0], x, w, 4*cols*lanes, ws, kn, k0)
					continue
				}
				var out *float32
				i := 2 * lanes * b
				switch {
				case last && stage != nil:
					out = &stage[i*j.ldStage+r0-lo*j.nr]
				case last:
					out = &j.out[(i0+i)*rows+r0]
				}
				g.tileOut[v-1][nr-1](&c[0], x, w, 4*cols*lanes, ws, kn, k0, out, &j.idx[0], min(2*lanes, m-i))
			}
		}
	}
	if stage != nil {
		c0, c1 := lo*j.nr, min(hi*j.nr, rows)
		for i := 0; i < m; i++ {
			copy(j.out[(i0+i)*rows+c0:(i0+i)*rows+c1], stage[i*j.ldStage:i*j.ldStage+c1-c0])
		}
	}
	if g.tileOut[0] != nil {
		return
	}
	for t := lo; t < hi; t++ {
		r0 := t * j.nr
		nr := min(j.nr, rows-r0)
		for b := 0; b < mb; b++ {
			c := acc[((t-lo)*mb+b)*ctileLen : ((t-lo)*mb+b+1)*ctileLen]
			i := 2 * lanes * b
			for l := 0; l < min(2*lanes, m-i); l++ {
				o := j.out[(i0+i+l)*rows+r0 : (i0+i+l)*rows+r0+nr]
				for r := range o {
					o[r] = c[r*ldc+l]
				}
			}
		}
	}
}

// gemmStaged reports whether the tiles of a product with rows weight rows
// should write through a staging buffer. A tile scatters each of its
// columns over 16 or 32 output rows, rows·4 bytes apart; when that stride is
// a multiple of 2 KiB those rows fall into one or two sets of L1, more than
// it has ways, and every scattered store misses (a 4096-row output ran at
// half the speed of a 4000-row one).
func gemmStaged(rows int) bool { return rows%512 == 0 }

// gemmStageStride is the staging buffer's row stride for tiles w columns
// wide: w rounded up to whole cache lines, an odd number of them, so that
// the 16 rows of a scatter fall into 16 different sets.
func gemmStageStride(w int) int {
	ld := (w + 15) / 16 * 16
	if ld/16%2 == 0 {
		ld += 16
	}
	return ld
}

// ctileLen is the size of the largest micro-kernel tile, nr·ldc.
const ctileLen = 12 * 32

// A gemmTileRows is a gemmTile that stores the last chunk's sums as rows:
// lane l of row r goes to out[r*ldo + l] for the first valid lanes.
type gemmTileRows func(c, x, w *float32, xs, ws, k, load int, out *float32, ldo, valid int)

// The transposed product. When the weight has no more rows than there are
// activation rows, MatMul swaps the operands' roles: the weight, decoded
// once, is packed as the lanes and the activations are broadcast from
// where they are. The tiles then store whole output rows instead of
// scattering columns, and the packing touches the smaller operand. Every
// output element is still one chain of FMAs over the columns in order
// (a·b = b·a exactly), so the result is bitwise the same either way.

// gemmSwap reports whether MatMul should run job transposed: when the
// weight has no more rows than there are activation rows, or when its rows
// are so short (a few hundred columns) that scattering the output columns
// costs as much as the products, provided there are activation rows for
// every thread and a column chunk of the packed weight fits in L2 — but
// not when the product splits the activations' rows (gemmRowSplit) and
// has fewer than gemmSwapRows of them per thread: packing the weight on
// every call then costs more than the rows (the tiny shapes' 64×64 and
// 512×64 ran 1.6 and 1.4 times as fast split at 64 rows, 1.1 at 128, and
// 0.7-0.9 at 576).
func gemmSwap(g *gemmKernels, job matmulJob, threads int) bool {
	if g.tileRows[0] == nil || job.m < 2*g.lanes || 4*gemmPackCols*job.rows > gemmXBytes || job.cols >= maxPackCols {
		return false
	}
	if gemmRowSplit(job, threads) && job.m < gemmSwapRows*threads {
		return false
	}
	return job.rows <= job.m || (job.cols <= gemmPackCols && job.m >= 4*g.lanes)
}

// gemmSwapRows is how many activation rows per thread a product that
// splits them (gemmRowSplit) needs to run transposed.
const gemmSwapRows = 128

// gemmSwapPrepacked reports whether MatMul should run job transposed when
// its weight is packed already (Prepack): then the transposed product
// costs no packing, and for a few activation rows it beats the usual one
// (scattered output columns, a decode per tile) by 1.5-2.3×, as long as
// the packed weight stays in L2 while each tile of activation rows sweeps
// it. A larger weight only pays from many rows, and only if each tile's
// sweep over a column chunk (gemmKC) stays in L2, or takes all the columns
// at once from a weight of at most gemmSwapChunkBytes: otherwise every tile
// streams the weight from memory or L3 and saves and reloads its sums
// between chunks (qwen2.5's 151936×896 output ran at 0.44 times the usual
// product's speed at 256 rows, its 4864×896 ffn_up at 0.9).
func gemmSwapPrepacked(g *gemmKernels, job matmulJob) bool {
	switch {
	case job.m < g.lanes:
		return false
	case 4*job.rows*job.cols <= gemmXBytes:
		return true
	}
	kc := gemmKC(job.rows, job.cols)
	chunk := 4 * kc * job.rows
	return job.m >= 256 && (chunk <= gemmXBytes || kc == job.cols && chunk <= gemmSwapChunkBytes)
}

// gemmSwapChunkBytes bounds a prepacked weight whose every column the
// transposed product sweeps at once for each tile of activation rows.
const gemmSwapChunkBytes = 16 << 20

// packWTask packs the weight's row blocks [lo, hi) of g.lanes rows for the
// transposed product (packWeight), with worker's decode buffer.
func (j *matmulJob) packWTask(worker, lo, hi int) {
	var scratch []float32
	if j.wf == nil {
		scratch = j.state.scratchFor(worker, j.g.lanes*j.cols)
	}
	j.packWeight(scratch, lo, hi)
}

// packWeight packs the weight's row blocks [lo, hi) of g.lanes rows into
// xp, decoding them first into scratch (g.lanes rows long) unless they are
// float32.
func (j *matmulJob) packWeight(scratch []float32, lo, hi int) {
	cols, lanes := j.cols, j.g.lanes
	for b := lo; b < hi; b++ {
		r0 := b * lanes
		n := min(lanes, j.rows-r0)
		var src []float32
		if j.wf != nil {
			src = j.wf[r0*cols : (r0+n)*cols]
		} else {
			src = scratch[:n*cols]
			j.dec(src, j.data[r0*j.rowBytes:(r0+n)*j.rowBytes])
		}
		j.packBlock(j.xp[b*cols*lanes:(b+1)*cols*lanes], src, n, 0, cols)
	}
}

// gemmSwapTask computes the transposed product for the activation-row
// tiles [lo, hi): tile t is activation rows [t·nr, t·nr+nr), broadcast in
// place, against every block of the packed weight, column chunk by column
// chunk as gemmTask goes.
func (j *matmulJob) gemmSwapTask(worker, lo, hi int) {
	g := j.g
	cols, n, m := j.cols, j.rows, j.m // n weight rows along the lanes
	lanes := g.lanes
	mb := gemmMBlocks(g, n)
	acc := j.state.accFor(worker, (hi-lo)*mb*ctileLen)
	kc := gemmKC(n, cols)
	for k0 := 0; k0 < cols; k0 += kc {
		kn := min(kc, cols-k0)
		last := k0+kn == cols
		for t := lo; t < hi; t++ {
			r0 := t * j.nr
			nr := min(j.nr, m-r0)
			w := &j.x[r0*cols+k0]
			for b := 0; b < mb; b++ {
				v := tileVectors(n, b, lanes)
				c := acc[((t-lo)*mb+b)*ctileLen:]
				xp := &j.xp[2*lanes*b*cols+k0*lanes]
				i0 := 2 * lanes * b
				var out *float32
				if last {
					out = &j.out[r0*n+i0]
				}
				g.tileRows[v-1][nr-1](&c[0], xp, w, 4*cols*lanes, 4*cols, kn, k0, out, n, min(2*lanes, n-i0))
			}
		}
	}
}
