package kernel

import (
	"sync/atomic"
	"testing"
)

func TestPoolRunCoversOnce(t *testing.T) {
	for _, threads := range []int{0, 1, 2, 3, 8} {
		p := NewPool(threads)
		for _, n := range []int{0, 1, 2, 7, 31, 1000} {
			counts := make([]int32, n)
			p.Run(n, func(lo, hi int) {
				if lo >= hi {
					t.Errorf("empty chunk [%d,%d)", lo, hi)
				}
				for i := lo; i < hi; i++ {
					atomic.AddInt32(&counts[i], 1)
				}
			})
			for i, c := range counts {
				if c != 1 {
					t.Fatalf("threads %d, n %d: index %d run %d times", threads, n, i, c)
				}
			}
		}
		p.Close()
		p.Close()
		var sum atomic.Int64
		p.Run(10, func(lo, hi int) { sum.Add(int64(hi - lo)) })
		if sum.Load() != 10 {
			t.Errorf("Run after Close covered %d of 10", sum.Load())
		}
	}
}

// TestPoolRunWorkers checks that RunWorkers covers [0, n) once, with
// worker indices below Threads() and never two calls of one worker at once.
func TestPoolRunWorkers(t *testing.T) {
	for _, threads := range []int{0, 1, 2, 3, 8} {
		p := NewPool(threads)
		for _, n := range []int{0, 1, 5, 31, 1000} {
			counts := make([]int32, n)
			busy := make([]atomic.Bool, p.Threads())
			p.RunWorkers(n, func(w, lo, hi int) {
				if w < 0 || w >= p.Threads() {
					t.Errorf("worker %d of %d", w, p.Threads())
					return
				}
				if !busy[w].CompareAndSwap(false, true) {
					t.Errorf("worker %d runs two chunks at once", w)
				}
				for i := lo; i < hi; i++ {
					atomic.AddInt32(&counts[i], 1)
				}
				busy[w].Store(false)
			})
			for i, c := range counts {
				if c != 1 {
					t.Fatalf("threads %d, n %d: index %d run %d times", threads, n, i, c)
				}
			}
		}
		p.Close()
	}
	var nilPool *Pool
	covered := 0
	nilPool.RunWorkers(3, func(w, lo, hi int) { covered += hi - lo })
	if covered != 3 {
		t.Errorf("nil Pool covered %d of 3", covered)
	}
}

func TestPoolNil(t *testing.T) {
	var p *Pool
	if p.Threads() != 1 {
		t.Errorf("nil Pool has %d threads", p.Threads())
	}
	calls := 0
	p.Run(5, func(lo, hi int) {
		calls++
		if lo != 0 || hi != 5 {
			t.Errorf("nil Pool ran [%d,%d)", lo, hi)
		}
	})
	if calls != 1 {
		t.Errorf("nil Pool made %d calls", calls)
	}
	p.Close()
}

// TestPoolUsesWorkers checks that the work really is shared: with enough
// chunks, more than one goroutine takes some.
func TestPoolUsesWorkers(t *testing.T) {
	p := NewPool(4)
	defer p.Close()
	var workers [4]atomic.Int32
	p.mu.Lock()
	defer p.mu.Unlock()
	for try := 0; try < 100; try++ {
		p.runW(4000, 1, func(w, lo, hi int) {
			workers[w].Add(1)
			for i := 0; i < 1000; i++ {
				_ = i * i
			}
		})
	}
	used := 0
	for i := range workers {
		if workers[i].Load() > 0 {
			used++
		}
	}
	if used < 2 {
		t.Errorf("only %d goroutine(s) took chunks", used)
	}
}

func TestPoolRunAllocs(t *testing.T) {
	p := NewPool(3)
	defer p.Close()
	var sink atomic.Int64
	fn := func(lo, hi int) { sink.Add(int64(hi - lo)) }
	if n := testing.AllocsPerRun(100, func() { p.Run(1000, fn) }); n != 0 {
		t.Errorf("%v allocations per Run", n)
	}
}
