package lsp

import (
	"os"
	"slices"
	"sync"
	"time"
)

// ownWindow is how many recent requests the own-time percentiles cover.
const ownWindow = 4096

// stats aggregates the timings of answered completion requests for
// dfill/stats (and dfill bench lsp).
type stats struct {
	// mu guards the fields below.
	mu        sync.Mutex
	count     int
	cancelled int
	cacheHits int
	total     time.Duration
	model     time.Duration
	own       []time.Duration // ring of the last ownWindow own times
	next      int
	lastTook  time.Duration
}

func (st *stats) init() { st.own = make([]time.Duration, 0, ownWindow) }

// add records one answered request that took took, model of it in the
// generator or waiting for another request's generation.
func (st *stats) add(took, model time.Duration, cached bool) {
	own := max(took-model, 0)
	st.mu.Lock()
	st.count++
	st.total += took
	st.model += model
	if cached {
		st.cacheHits++
	}
	if len(st.own) < ownWindow {
		st.own = append(st.own, own)
	} else {
		st.own[st.next] = own
		st.next = (st.next + 1) % ownWindow
	}
	st.mu.Unlock()
}

// last records the time of the last answered request.
func (st *stats) last(took time.Duration) {
	st.mu.Lock()
	st.lastTook = took
	st.mu.Unlock()
}

// cancel records a cancelled or superseded request.
func (st *stats) cancel() {
	st.mu.Lock()
	st.cancelled++
	st.mu.Unlock()
}

// snapshot returns the aggregates.
func (st *stats) snapshot() Stats {
	st.mu.Lock()
	own := slices.Clone(st.own)
	out := Stats{
		Count:     st.count,
		Cancelled: st.cancelled,
		CacheHits: st.cacheHits,
		TotalMs:   ms(st.total),
		ModelMs:   ms(st.model),
		LastMs:    ms(st.lastTook),
		PID:       os.Getpid(),
	}
	st.mu.Unlock()
	slices.Sort(own)
	if n := len(own); n > 0 {
		out.OwnP50Ms = ms(own[(n-1)*50/100])
		out.OwnP95Ms = ms(own[(n-1)*95/100])
		out.OwnMaxMs = ms(own[n-1])
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// statsSnapshot answers dfill/stats.
func (s *Server) statsSnapshot() *Stats {
	out := s.stats.snapshot()
	s.genMu.RLock()
	out.Model = s.modelName
	if s.modelErr != nil {
		out.ModelError = s.modelErr.Error()
	}
	s.genMu.RUnlock()
	return &out
}
