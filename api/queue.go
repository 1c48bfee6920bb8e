package api

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"
)

// errQueueFull is returned by queue.acquire when no more requests may
// wait.
var errQueueFull = errors.New("queue full")

// queue lets up to running generations run at a time (one, or a batch the
// engine denoises together) and up to size requests wait for a slot, first
// come first served.
type queue struct {
	slot    chan struct{} // holds a token while a generation runs
	size    int
	onDepth func(float64) // told the number waiting when it changes

	// mu guards the fields below.
	mu      sync.Mutex
	waiting int
	avg     time.Duration // moving average of how long a generation holds the slot
}

func newQueue(running, size int, onDepth func(float64)) *queue {
	return &queue{slot: make(chan struct{}, running), size: size, onDepth: onDepth}
}

// acquire waits for the slot, and returns the func that releases it. It
// returns errQueueFull at once when size requests are already waiting,
// and ctx's cause when ctx is done first.
func (q *queue) acquire(ctx context.Context) (release func(), err error) {
	select {
	case q.slot <- struct{}{}:
		return q.releaser(), nil
	default:
	}
	q.mu.Lock()
	if q.waiting >= q.size {
		q.mu.Unlock()
		return nil, errQueueFull
	}
	q.waiting++
	q.onDepth(float64(q.waiting))
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		q.waiting--
		q.onDepth(float64(q.waiting))
		q.mu.Unlock()
	}()
	select {
	case q.slot <- struct{}{}:
		return q.releaser(), nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// releaser returns the func that frees the slot taken now, and records
// how long it was held.
func (q *queue) releaser() func() {
	start := time.Now()
	var once sync.Once
	return func() {
		once.Do(func() {
			held := time.Since(start)
			q.mu.Lock()
			if q.avg == 0 {
				q.avg = held
			} else {
				q.avg = (4*q.avg + held) / 5
			}
			q.mu.Unlock()
			<-q.slot
		})
	}
}

// retryAfter is the Retry-After, in whole seconds from 1 to 60, to answer
// a request that found the queue full: about the time the requests ahead
// of it take.
func (q *queue) retryAfter() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.avg.Seconds() * float64(q.waiting+1) / float64(cap(q.slot))
	return int(min(60, max(1, math.Ceil(s))))
}
