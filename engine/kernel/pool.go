package kernel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// A Pool runs data-parallel loops on a fixed set of worker goroutines,
// created once by NewPool. The calling goroutine always does a share of the
// work, so a Pool of n threads starts n-1 goroutines. A nil *Pool, or one of
// one thread, runs everything inline on the caller's goroutine.
//
// Loops on one Pool run one at a time: a Run from a second goroutine waits
// for the first to finish. Steady-state Runs do not allocate.
//
// A denoising step is hundreds of loops of tens of microseconds, about what
// waking a sleeping thread takes, so workers spin for a while after each
// loop, watching for the next one, before they sleep; and a loop waits only
// for the chunks that were claimed, never for a worker that has not woken.
//
// Each goroutine owns a contiguous share of a loop's chunks and runs it from
// the front; one that runs out takes chunks from the back of the others'
// shares. The same goroutine thus runs the same part of every loop of the
// same shape, and finds that part's data (a matrix product's weight rows)
// still in its core's cache from the last step; a fully dynamic split sent
// each tile to whichever core came first and made a 32-row product on two
// threads barely faster than on one.
type Pool struct {
	threads int
	gen     atomic.Uint64   // bumped for every loop and by Close
	parked  []atomic.Bool   // per worker: asleep, or about to be, on wake
	wake    []chan struct{} // one per worker goroutine (index 1..threads-1; 0 unused)
	exited  sync.WaitGroup  // counts live worker goroutines, for Close
	stop    atomic.Bool     // set by Close

	// shares holds each goroutine's unclaimed chunks of the current loop;
	// finished counts the chunks run.
	shares   []share
	finished atomic.Int64

	// mu serializes loops and guards the fields below it. Workers read the
	// loop's fields only after claiming a chunk, which follows their writes.
	mu     sync.Mutex
	closed bool
	fn     func(lo, hi int)
	fnw    func(worker, lo, hi int)
	n      int
	grain  int
	chunks int
	// matmul is the state of the matrix products run on the Pool, made by
	// the first (matmul_state.go). A product holds mu from start to end.
	matmul *matmulState
}

// spinFor is how long a worker keeps watching for the next loop before it
// sleeps.
const spinFor = 200 * time.Microsecond

// NewPool returns a Pool of threads threads (the caller's goroutine and
// threads-1 workers). threads < 1 is taken as 1.
func NewPool(threads int) *Pool {
	threads = max(threads, 1)
	p := &Pool{
		threads: threads,
		parked:  make([]atomic.Bool, threads),
		wake:    make([]chan struct{}, threads),
		shares:  make([]share, threads),
	}
	for w := 1; w < threads; w++ {
		p.wake[w] = make(chan struct{}, 1)
		p.exited.Add(1)
		go p.worker(w)
	}
	return p
}

// Threads returns the number of goroutines that share a Run, counting the
// caller's: 1 for a nil Pool.
func (p *Pool) Threads() int {
	if p == nil {
		return 1
	}
	return p.threads
}

// Close stops the worker goroutines and waits for them to exit. Runs after
// Close execute inline. Close is idempotent; a nil Pool's Close does nothing.
func (p *Pool) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	p.stop.Store(true)
	p.gen.Add(1)
	for w := 1; w < p.threads; w++ {
		close(p.wake[w])
	}
	p.exited.Wait()
}

// Run calls fn on contiguous, disjoint chunks [lo, hi) that together cover
// [0, n), concurrently on the Pool's goroutines, and returns when all calls
// have returned. One goroutine may take several chunks, in increasing order;
// which goroutine takes which chunk varies from run to run, so fn must not
// let its result depend on that. n ≤ 0 calls nothing. fn must not call Run
// or MatMul on the same Pool: the inner call would wait for the outer.
func (p *Pool) Run(n int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if p == nil || p.threads == 1 {
		fn(0, n)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fn = fn
	p.runLocked(n, defaultGrain(n, p.threads))
	p.fn = nil
}

// RunWorkers is Run for a fn that needs to know which of the Pool's
// goroutines runs a chunk, worker 0 to Threads()-1, to give each its own
// scratch: no two calls with the same worker run at once. Each chunk is a
// single index when n ≤ 4·Threads().
func (p *Pool) RunWorkers(n int, fn func(worker, lo, hi int)) {
	if n <= 0 {
		return
	}
	if p == nil || p.threads == 1 {
		fn(0, 0, n)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.runW(n, defaultGrain(n, p.threads), fn)
}

// defaultGrain splits n into about four chunks per thread, so a thread that
// the OS delays does not hold the others up for long.
func defaultGrain(n, threads int) int {
	chunks := 4 * threads
	return max(1, (n+chunks-1)/chunks)
}

// runW is Run for callers that need to know which goroutine (0..threads-1)
// runs a chunk, to use per-goroutine scratch. The caller holds p.mu.
func (p *Pool) runW(n, grain int, fnw func(worker, lo, hi int)) {
	if n <= 0 {
		return
	}
	if p.threads == 1 || p.closed || n <= grain {
		fnw(0, 0, n)
		return
	}
	p.fnw = fnw
	p.runLocked(n, grain)
	p.fnw = nil
}

// runLocked runs the job in p.fn or p.fnw over [0, n) in chunks of grain.
func (p *Pool) runLocked(n, grain int) {
	chunks := (n + grain - 1) / grain
	if p.closed || chunks == 1 {
		p.chunk(0, 0, n)
		return
	}
	p.n, p.grain, p.chunks = n, grain, chunks
	p.finished.Store(0)
	for w := range p.shares {
		p.shares[w].set(w*chunks/p.threads, (w+1)*chunks/p.threads) // publishes the fields above
	}
	p.gen.Add(1)
	for w := 1; w < min(p.threads, chunks); w++ {
		if p.parked[w].CompareAndSwap(true, false) {
			p.wake[w] <- struct{}{}
		}
	}
	p.work(0)
	for i := 0; p.finished.Load() < int64(chunks); i++ {
		if i > 64 {
			runtime.Gosched()
		}
	}
}

// work runs worker w's share of the loop's chunks, then what it can take
// from the others' shares, until no chunk is left.
func (p *Pool) work(w int) {
	for i := range p.shares {
		o := (w + i) % len(p.shares)
		for {
			c, ok := p.shares[o].take(o == w)
			if !ok {
				break
			}
			lo := c * p.grain
			p.chunk(w, lo, min(lo+p.grain, p.n))
			p.finished.Add(1)
		}
	}
}

// A share is a range [front, back) of one goroutine's unclaimed chunks,
// packed in one word so that its owner (from the front) and others (from
// the back) claim chunks with one compare-and-swap. It fills a cache line,
// so claims on one share do not slow the others.
type share struct {
	fb atomic.Uint64 // front<<32 | back
	_  [56]byte
}

func (s *share) set(front, back int) { s.fb.Store(uint64(front)<<32 | uint64(back)) }

// take claims the front chunk, or the back one when not own, and reports
// false when the share is empty.
func (s *share) take(own bool) (int, bool) {
	for {
		v := s.fb.Load()
		front, back := v>>32, v&0xffffffff
		if front >= back {
			return 0, false
		}
		c, next := front, v+1<<32
		if !own {
			c, next = back-1, v-1
		}
		if s.fb.CompareAndSwap(v, next) {
			return int(c), true
		}
	}
}

func (p *Pool) chunk(w, lo, hi int) {
	if p.fnw != nil {
		p.fnw(w, lo, hi)
	} else {
		p.fn(lo, hi)
	}
}

// worker runs the chunks it can claim of each loop. Between loops it
// spins for spinFor, then sleeps until runLocked or Close wakes it.
func (p *Pool) worker(w int) {
	defer p.exited.Done()
	seen := p.gen.Load()
	for {
		if !p.waitLoop(w, seen) {
			return
		}
		seen = p.gen.Load()
		if p.stop.Load() {
			return
		}
		p.work(w)
	}
}

// waitLoop returns when the loop generation is no longer seen, true, or
// false when the Pool is closed while the worker sleeps.
func (p *Pool) waitLoop(w int, seen uint64) bool {
	deadline := time.Now().Add(spinFor)
	for i := 0; ; i++ {
		if p.gen.Load() != seen {
			return true
		}
		if i%64 == 63 {
			if time.Now().After(deadline) {
				break
			}
			runtime.Gosched()
		}
	}
	p.parked[w].Store(true)
	if p.gen.Load() != seen && p.parked[w].CompareAndSwap(true, false) {
		return true // a loop began before the flag was seen
	}
	_, ok := <-p.wake[w]
	return ok
}
