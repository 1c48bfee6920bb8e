package bench

import (
	"sync"
	"time"

	"github.com/dfill/dfill/engine/kernel"
)

// bandwidthBytes is the buffer readBandwidth streams: far larger than any
// cache.
const bandwidthBytes = 512 << 20

// readBandwidth measures how many bytes per second threads goroutines read
// from memory together: each sums its share of a 512 MiB buffer with the
// vector kernels (kernel.Dot of a slice with itself, one load per
// element); the best of three passes.
func readBandwidth(threads int) float64 {
	threads = max(1, threads)
	buf := make([]float32, bandwidthBytes/4)
	for i := range buf {
		buf[i] = float32(i & 1023)
	}
	per := len(buf) / threads
	sums := make([]float32, threads)
	best := time.Duration(1<<63 - 1)
	for range 3 {
		var wg sync.WaitGroup
		start := time.Now()
		for t := range threads {
			wg.Go(func() {
				part := buf[t*per : (t+1)*per]
				sums[t] += kernel.Dot(part, part)
			})
		}
		wg.Wait()
		best = min(best, time.Since(start))
	}
	return float64(per*threads*4) / best.Seconds()
}
