package api

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/dfill/dfill/engine"
)

// batcher is the Model of an engine model that denoises the requests
// generating at the same time together (engine.DenoiseBatch): one forward
// per step over all their spans, so they share the passes over the
// weights. A request that comes while a batch runs joins the next one;
// each request's context and steps stay its own.
type batcher struct {
	engineModel
	max int // requests per batch

	// mu guards the fields below.
	mu      sync.Mutex
	pending []*batchCall
	running bool // a goroutine runs batches
}

// batchCall is one request waiting in a batcher.
type batchCall struct {
	ctx    context.Context
	prompt engine.Prompt
	opt    engine.Options
	onStep func(engine.Step)

	cands []engine.Candidate
	err   error
	done  chan struct{}
}

// FromEngineBatched returns m as the server's Model, denoising up to max
// concurrent requests together (max 1: one at a time, as FromEngine). The
// server lets that many generate at once (Options.Batch).
func FromEngineBatched(m *engine.Model, max int) Model {
	if max <= 1 {
		return FromEngine(m)
	}
	return &batcher{engineModel: engineModel{m}, max: max}
}

// Infill queues the request for the next batch and waits for its answer.
func (b *batcher) Infill(ctx context.Context, p engine.Prompt, opt engine.Options, onStep func(engine.Step)) ([]engine.Candidate, error) {
	c := &batchCall{ctx: ctx, prompt: p, opt: opt, onStep: onStep, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	if !b.running {
		b.running = true
		go b.run()
	}
	b.mu.Unlock()
	<-c.done
	return c.cands, c.err
}

// run denoises batches of the pending requests until none is left.
func (b *batcher) run() {
	for {
		b.mu.Lock()
		n := min(len(b.pending), b.max)
		if n == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		batch := b.pending[:n:n]
		b.pending = slices.Clone(b.pending[n:])
		b.mu.Unlock()
		b.denoise(batch)
	}
}

// denoise runs one batch and answers each of its requests. A panic in the
// engine fails the batch's requests instead of the server.
func (b *batcher) denoise(batch []*batchCall) {
	defer func() {
		p := recover()
		for _, c := range batch {
			if p != nil {
				c.cands, c.err = nil, fmt.Errorf("the engine panicked: %v", p)
			}
			close(c.done)
		}
	}()
	tok := b.Tokenizer
	jobs := make([]engine.Job, len(batch))
	for i, c := range batch {
		jobs[i] = engine.Job{Ctx: c.ctx, Prefix: tok.EncodePlain(c.prompt.Prefix), Suffix: tok.EncodePlain(c.prompt.Suffix), Options: c.opt}
	}
	cands, errs, err := b.DenoiseBatch(context.Background(), jobs, func(j int, s engine.Step) {
		if f := batch[j].onStep; f != nil {
			f(s)
		}
	})
	for i, c := range batch {
		if err != nil {
			c.err = err
			continue
		}
		c.cands, c.err = cands[i], errs[i]
	}
}
