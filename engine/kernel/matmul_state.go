package kernel

import "sync"

// matmulState is what a Pool keeps for the matrix products it runs: the
// product being run, the tasks that run its parts on the Pool's
// goroutines, and buffers kept from one product to the next, so that a
// product in the steady state allocates nothing. The Pool's mu guards it:
// a product holds mu from its start to its end.
type matmulState struct {
	pool *Pool
	job  matmulJob // the float32 product being run (runMatMul)
	q8   q8Job     // the products quantizing their activations being run (runQ8)

	// The jobs' tasks, bound once: handing a method value to the Pool
	// would otherwise allocate on every product.
	dotTask, packTask, gemmTask, rowTask func(worker, lo, hi int)
	packWTask, gemmSwapTask              func(worker, lo, hi int) // the transposed product (gemmSwap)
	q8QuantTask, q8Task                  func(worker, lo, hi int)

	scratch [][]float32 // per worker: weight rows decoded to float32
	acc     [][]float32 // per worker: the micro-kernels' accumulators
	stage   [][]float32 // per worker: output tiles on their way to out (gemmStaged)
	bytes   [][]byte    // per worker: Q8_0 weight panels packed on the fly
	xpack   []float32   // the activations (or the weight) packed for the micro-kernels
	q8qs    []int8      // a Q8_0 product's quantized activations (q8Job.qs)
	q8xd    []float32   // their scales
	q8xc    []int32     // their corrections
	q8xy    []float32   // their K-quant extras (q8Job.xy, xh)
	q8xh    []int32     // (two per cell)
	q8xf    []float32   // the activations rounded to their quantized values, without VNNI (q8Job.xf)
}

// products returns p's matrix-product state, made on first use. The
// caller holds p.mu.
func (p *Pool) products() *matmulState {
	if p.matmul == nil {
		s := &matmulState{
			pool:    p,
			scratch: make([][]float32, p.threads),
			acc:     make([][]float32, p.threads),
			stage:   make([][]float32, p.threads),
			bytes:   make([][]byte, p.threads),
		}
		s.job.state, s.q8.state = s, s
		s.dotTask, s.packTask, s.gemmTask, s.rowTask = s.job.task, s.job.packTask, s.job.gemmTask, s.job.rowTask
		s.packWTask, s.gemmSwapTask = s.job.packWTask, s.job.gemmSwapTask
		s.q8QuantTask, s.q8Task = s.q8.quantTask, s.q8.task
		p.matmul = s
	}
	return p.matmul
}

// serialPools holds one-thread Pools for products with a nil Pool, so that
// they have scratch without allocating and without serializing.
var serialPools = sync.Pool{New: func() any { return NewPool(1) }}

// scratchFor returns worker w's decode buffer, at least n long.
func (s *matmulState) scratchFor(w, n int) []float32 {
	if cap(s.scratch[w]) < n {
		s.scratch[w] = make([]float32, n)
	}
	return s.scratch[w][:n]
}

// xpackFor returns the packed-operand buffer, at least n long.
func (s *matmulState) xpackFor(n int) []float32 {
	if cap(s.xpack) < n {
		s.xpack = make([]float32, n)
	}
	return s.xpack[:n]
}

// stageFor returns worker w's output staging buffer, at least n long.
func (s *matmulState) stageFor(w, n int) []float32 {
	if cap(s.stage[w]) < n {
		s.stage[w] = make([]float32, n)
	}
	return s.stage[w][:n]
}

// bytesFor returns worker w's byte buffer, at least n long.
func (s *matmulState) bytesFor(w, n int) []byte {
	if cap(s.bytes[w]) < n {
		s.bytes[w] = make([]byte, n)
	}
	return s.bytes[w][:n]
}

// accFor returns worker w's accumulator buffer, at least n long.
func (s *matmulState) accFor(w, n int) []float32 {
	if cap(s.acc[w]) < n {
		s.acc[w] = make([]float32, n)
	}
	return s.acc[w][:n]
}
