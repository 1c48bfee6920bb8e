package kernel

// A gemmTile computes a tile of out = x·Wᵀ: v vectors of lanes activation
// rows (x packed by packX) times nr weight rows starting at w, ws bytes
// apart, over k columns, into c[r*ldc+l]. Every element is one chain of
// fused multiply-adds over k = 0..k-1 starting from zero.
type gemmTile func(c, x, w *float32, ws, k int)

// gemmKernels is a set of register-blocked micro-kernels for one
// instruction set.
type gemmKernels struct {
	name  string
	lanes int           // activation rows per vector
	nr    int           // weight rows in a full tile
	ldc   int           // row stride of a tile's c, in elements (2·lanes)
	tile  [2][]gemmTile // [v-1][nr-1]: v vectors of rows, nr weight rows
}

// ctileLen is the size of the largest micro-kernel tile, nr·ldc.
const ctileLen = 12 * 32

// gemm is the micro-kernel set MatMul uses, installed at init on CPUs the
// assembly supports; nil means the pure-Go loop of dot products.
var gemm *gemmKernels

// gemmPackedLen is the length of x packed for g: whole blocks of g.lanes
// rows.
func gemmPackedLen(g *gemmKernels, m, cols int) int {
	return (m + g.lanes - 1) / g.lanes * g.lanes * cols
}

// packX lays out the m rows of x (m×cols) in blocks of lanes rows, k-major,
// so that one vector load gives column k of lanes consecutive rows:
// xp[b*cols*lanes + k*lanes + l] = x[(b*lanes+l)*cols + k], zero past row m.
func packX(xp, x []float32, m, cols, lanes int) []float32 {
	for b := 0; b*lanes < m; b++ {
		blk := xp[b*cols*lanes : (b+1)*cols*lanes]
		for l := 0; l < lanes; l++ {
			i := b*lanes + l
			if i >= m {
				for k := 0; k < cols; k++ {
					blk[k*lanes+l] = 0
				}
				continue
			}
			row := x[i*cols : (i+1)*cols]
			for k, v := range row {
				blk[k*lanes+l] = v
			}
		}
	}
	return xp
}

// gemmGrain picks how many tiles one chunk of a Pool's work takes: about
// eight chunks per thread, each at least minWork multiply-adds.
func gemmGrain(job matmulJob, g *gemmKernels, tiles, threads int) int {
	const minWork = 1 << 16
	perTile := g.nr * job.m * job.cols
	c := (tiles + 8*threads - 1) / (8 * threads)
	return max(c, (minWork+perTile-1)/perTile, 1)
}

// gemmTask computes the weight-row tiles [lo, hi) for all m rows of x: each
// tile's weight rows are decoded once (or used in place when float32), then
// swept over the packed activations two vectors of rows at a time.
func (j *matmulJob) gemmTask(worker, lo, hi int) {
	g := j.g
	cols, rows, m := j.cols, j.rows, j.m
	var scratch []float32
	if j.wf == nil {
		scratch = j.pool.scratchFor(worker, g.nr*cols)
	}
	c := j.pool.ctile[worker*ctileLen : (worker+1)*ctileLen] // one tile's output, c[r*g.ldc+l]
	ldc, lanes := g.ldc, g.lanes
	for t := lo; t < hi; t++ {
		r0 := t * g.nr
		nr := min(g.nr, rows-r0)
		var w []float32
		if j.wf != nil {
			w = j.wf[r0*cols : (r0+nr)*cols]
		} else {
			w = scratch[:nr*cols]
			j.dec(w, j.data[r0*j.rowBytes:(r0+nr)*j.rowBytes])
		}
		for i0 := 0; i0 < m; i0 += 2 * lanes {
			v := 2
			if m-i0 <= lanes {
				v = 1
			}
			g.tile[v-1][nr-1](&c[0], &j.xp[i0*cols], &w[0], 4*cols, cols)
			for l := 0; l < min(v*lanes, m-i0); l++ {
				o := j.out[(i0+l)*rows+r0 : (i0+l)*rows+r0+nr]
				for r := range o {
					o[r] = c[r*ldc+l]
				}
			}
		}
	}
}
