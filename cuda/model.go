//go:build cuda || cudaemu

package cuda

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/dfill/dfill/engine"
	"github.com/dfill/dfill/engine/gguf"
)

// Model is a dfill model (architecture dream or llada) on a GPU: its
// weights, uploaded from a GGUF file's tensors, and the bidirectional
// forward pass over canvases, engine/forward.go's computation: RMSNorm,
// q/k/v projections (with biases for dream), RoPE (NEOX order for dream,
// adjacent pairs for llada), grouped-query attention over every position
// of the canvas, the output projection and the SwiGLU FFN with residual
// adds, the final RMSNorm and the output matrix (token_embd when
// output.weight is absent). Activations, the cache and the logits are
// float32.
//
// A Model's methods may be called from any goroutine; they take turns on
// its Device. Close releases its memory.
type Model struct {
	// Config is the model's hyperparameters as engine.ConfigFromGGUF
	// reads them, Vocab set from token_embd.weight.
	Config engine.Config

	dev     *Device
	name    string
	embd    matrix
	output  matrix // embd's buffer when tied
	tied    bool
	outNorm buffer
	layers  []layer
	rope    ropeShape
	cos     buffer // (ropePositions, HeadDim/2)
	sin     buffer
	ropeN   int // positions in the tables
	ws      workspace
	gemm    gemmOptions // the product kernels' choice (tests force the plain ones)
	closed  bool        // guarded by dev.mu
}

// layer is one transformer block's weights on the GPU. Shapes are (rows,
// cols) of the products: q (Heads·HeadDim, Dim), k and v (KVHeads·HeadDim,
// Dim), out (Dim, Heads·HeadDim), gate and up (FFN, Dim), down (Dim, FFN).
type layer struct {
	attnNorm, ffnNorm   buffer
	q, k, v, out        matrix
	qBias, kBias, vBias buffer // dream only
	gate, up, down      matrix
}

// workspace holds one forward's activations on the GPU, grown as needed.
type workspace struct {
	x, h     buffer // (rows, Dim): the residual stream and the normed input
	q, k, v  buffer // (rows, Heads·HeadDim), (rows, KVHeads·HeadDim) ×2
	att      buffer // (rows, Heads·HeadDim)
	gate, up buffer // (rows, FFN)
	final    buffer // (wanted, Dim): the normed final state of the wanted rows
	logits   buffer // (logitRows, Vocab)
	stats    buffer // (logitRows, statsFields) doubles
	tokens   buffer // (rows) int32
	idx      buffer // (wanted) int32: each wanted row's row in x
	partial  buffer // split-K partial sums
}

// maxRopePositions bounds the RoPE tables: a canvas may not be longer.
const maxRopePositions = 1 << 17

// logitBytes bounds the logits held at once.
const logitBytes = 256 << 20

// Load uploads the model in f to the GPU: its hyperparameters from the
// metadata (engine.ConfigFromGGUF), its weights from the tensors as the
// file stores them. name names f in errors. f may be closed afterwards.
func Load(d *Device, f *gguf.File, name string) (*Model, error) {
	cfg, err := engine.ConfigFromGGUF(f, name)
	if err != nil {
		return nil, err
	}
	if cfg.Arch != engine.ArchDream && cfg.Arch != engine.ArchLLaDA {
		return nil, fmt.Errorf("%w: %s: architecture %s (the GPU runs dream and llada)", ErrUnsupported, name, cfg.Arch)
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok || len(emb.Dims) != 2 {
		return nil, fmt.Errorf("%w: %s: missing tensor token_embd.weight", ErrBadInput, name)
	}
	cfg.Vocab = int(emb.Dims[1])
	if cfg.MaskID < 0 || int(cfg.MaskID) >= cfg.Vocab {
		return nil, fmt.Errorf("%w: %s: mask token id %d outside the vocabulary of %d", ErrBadInput, name, cfg.MaskID, cfg.Vocab)
	}
	if cfg.HeadDim > maxHeadDim || cfg.HeadDim%2 != 0 {
		return nil, fmt.Errorf("%w: %s: heads of %d dimensions (the GPU's attention takes even widths up to %d)",
			ErrUnsupported, name, cfg.HeadDim, maxHeadDim)
	}
	m := &Model{Config: cfg, dev: d, name: name,
		rope:  ropeShape{heads: cfg.Heads, kvHeads: cfg.KVHeads, headDim: cfg.HeadDim, neox: cfg.NeoxRoPE()},
		ropeN: min(cfg.Context, maxRopePositions)}
	err = d.do(func() error {
		if err := m.upload(f); err != nil {
			m.release()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// upload puts the weights and the RoPE tables on the GPU. Context held.
func (m *Model) upload(f *gguf.File) error {
	c, d, file := m.Config, m.dev, m.name
	qDim, kvDim := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	var err error
	if m.embd, err = d.tensorMatrix(f, file, "token_embd.weight", c.Vocab, c.Dim); err != nil {
		return err
	}
	if _, ok := f.Tensor("output.weight"); ok {
		if m.output, err = d.tensorMatrix(f, file, "output.weight", c.Vocab, c.Dim); err != nil {
			return err
		}
	} else {
		m.output, m.tied = m.embd, true
	}
	if m.outNorm, err = d.tensorVector(f, file, "output_norm.weight", c.Dim); err != nil {
		return err
	}
	m.layers = make([]layer, c.Layers)
	for i := range m.layers {
		L, p := &m.layers[i], fmt.Sprintf("blk.%d.", i)
		for _, v := range []struct {
			dst  *buffer
			name string
			n    int
		}{{&L.attnNorm, "attn_norm.weight", c.Dim}, {&L.ffnNorm, "ffn_norm.weight", c.Dim}} {
			if *v.dst, err = d.tensorVector(f, file, p+v.name, v.n); err != nil {
				return err
			}
		}
		for _, w := range []struct {
			dst        *matrix
			name       string
			rows, cols int
		}{
			{&L.q, "attn_q.weight", qDim, c.Dim}, {&L.k, "attn_k.weight", kvDim, c.Dim},
			{&L.v, "attn_v.weight", kvDim, c.Dim}, {&L.out, "attn_output.weight", c.Dim, qDim},
			{&L.gate, "ffn_gate.weight", c.FFN, c.Dim}, {&L.up, "ffn_up.weight", c.FFN, c.Dim},
			{&L.down, "ffn_down.weight", c.Dim, c.FFN},
		} {
			if *w.dst, err = d.tensorMatrix(f, file, p+w.name, w.rows, w.cols); err != nil {
				return err
			}
		}
		if c.HasQKVBias() {
			for _, v := range []struct {
				dst  *buffer
				name string
				n    int
			}{{&L.qBias, "attn_q.bias", qDim}, {&L.kBias, "attn_k.bias", kvDim}, {&L.vBias, "attn_v.bias", kvDim}} {
				if *v.dst, err = d.tensorVector(f, file, p+v.name, v.n); err != nil {
					return err
				}
			}
		}
	}
	cos, sin := ropeTables(c.HeadDim, c.RopeBase, m.ropeN)
	if m.cos, err = d.floats(cos); err != nil {
		return err
	}
	m.sin, err = d.floats(sin)
	return err
}

// ropeTables returns cos θ and sin θ, (positions, headDim/2), for θ_i =
// pos·base^(−2i/headDim), computed in float64 and rounded once, as
// engine/kernel.NewRoPE computes its tables.
func ropeTables(headDim int, base float64, positions int) (cos, sin []float32) {
	half := headDim / 2
	cos, sin = make([]float32, positions*half), make([]float32, positions*half)
	for pos := 0; pos < positions; pos++ {
		for i := 0; i < half; i++ {
			s, c := math.Sincos(float64(pos) * math.Pow(base, -2*float64(i)/float64(headDim)))
			cos[pos*half+i], sin[pos*half+i] = float32(c), float32(s)
		}
	}
	return cos, sin
}

// release frees everything m holds. Context held.
func (m *Model) release() error {
	d := m.dev
	var errs []error
	free := func(b *buffer) { errs = append(errs, d.free(b)) }
	if err := synchronize(); err != nil {
		errs = append(errs, err)
	}
	free(&m.embd.buf)
	if !m.tied {
		free(&m.output.buf)
	}
	m.output.buf = buffer{}
	free(&m.outNorm)
	for i := range m.layers {
		L := &m.layers[i]
		for _, b := range []*buffer{&L.attnNorm, &L.ffnNorm, &L.qBias, &L.kBias, &L.vBias,
			&L.q.buf, &L.k.buf, &L.v.buf, &L.out.buf, &L.gate.buf, &L.up.buf, &L.down.buf} {
			free(b)
		}
	}
	free(&m.cos)
	free(&m.sin)
	w := &m.ws
	for _, b := range []*buffer{&w.x, &w.h, &w.q, &w.k, &w.v, &w.att, &w.gate, &w.up, &w.final,
		&w.logits, &w.stats, &w.tokens, &w.idx, &w.partial} {
		free(b)
	}
	return errors.Join(errs...)
}

// Close releases the model's weights and workspace. Its canvases hold
// their own memory until their Close.
func (m *Model) Close() error {
	err := m.dev.do(func() error {
		if m.closed {
			return nil
		}
		m.closed = true
		return m.release()
	})
	if errors.Is(err, ErrClosed) {
		return nil // the device went first, and its context with everything in it
	}
	return err
}

// Canvas is one canvas (prefix, span, suffix) on the GPU: its tokens, and
// the keys and values of every position at every layer, the cache a pass
// over part of the canvas reads for the positions it does not run
// (Fast-dLLM's dual cache). A Canvas is for one goroutine at a time;
// Close releases it.
type Canvas struct {
	m      *Model
	tokens []int32
	kv     buffer // (Layers, 2, KVHeads, len(tokens), HeadDim) float32
	filled bool   // a whole pass has stored every position; guarded by the device
}

// NewCanvas returns a canvas holding a copy of tokens, 1 to the model's
// context length of them, each a token id of the vocabulary.
func (m *Model) NewCanvas(tokens []int32) (*Canvas, error) {
	if len(tokens) == 0 || len(tokens) > m.ropeN {
		return nil, fmt.Errorf("%w: a canvas of %d tokens (want 1..%d)", ErrBadInput, len(tokens), m.ropeN)
	}
	if err := m.checkTokens(tokens); err != nil {
		return nil, err
	}
	c := &Canvas{m: m, tokens: append([]int32(nil), tokens...)}
	cfg := m.Config
	n := int64(cfg.Layers) * 2 * int64(cfg.KVHeads) * int64(len(tokens)) * int64(cfg.HeadDim) * 4
	err := m.dev.do(func() error {
		if m.closed {
			return ErrClosed
		}
		var err error
		c.kv, err = m.dev.alloc(n)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (m *Model) checkTokens(tokens []int32) error {
	for i, t := range tokens {
		if t < 0 || int(t) >= m.Config.Vocab {
			return fmt.Errorf("%w: token %d at position %d is outside the vocabulary of %d", ErrBadInput, t, i, m.Config.Vocab)
		}
	}
	return nil
}

// Len is the number of positions of the canvas.
func (c *Canvas) Len() int { return len(c.tokens) }

// Tokens returns a copy of the canvas's tokens.
func (c *Canvas) Tokens() []int32 { return append([]int32(nil), c.tokens...) }

// SetToken puts token tok at position pos, for the next pass to read; the
// cache keeps the keys and values of the token that was there until a
// pass runs that position again.
func (c *Canvas) SetToken(pos int, tok int32) error {
	if pos < 0 || pos >= len(c.tokens) {
		return fmt.Errorf("%w: position %d of a canvas of %d", ErrBadInput, pos, len(c.tokens))
	}
	if err := c.m.checkTokens([]int32{tok}); err != nil {
		return err
	}
	c.tokens[pos] = tok
	return nil
}

// Close releases the canvas's cache.
func (c *Canvas) Close() error {
	err := c.m.dev.do(func() error { return c.m.dev.free(&c.kv) })
	if errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}

// kvAt returns the layer's key and value cache, (KVHeads, T, HeadDim) each.
func (c *Canvas) kvAt(l int) (k, v devPtr) {
	cfg := c.m.Config
	per := int64(cfg.KVHeads) * int64(len(c.tokens)) * int64(cfg.HeadDim) * 4
	return c.kv.at(2 * int64(l) * per), c.kv.at((2*int64(l) + 1) * per)
}

// Pass asks Step to run rows [Lo, Hi) of a canvas through the model and to
// score the logits rows of the positions in Want, each in [Lo, Hi). The
// first pass over a canvas must run all of it (Lo 0, Hi its length): it
// stores the keys and values that a later pass over part of the canvas
// reads for the positions it does not run. Positions are logits rows: for
// a model whose logits are shifted (Config.ShiftLogits, dream) the row
// predicting canvas position p is p−1, as the engine's samplers read it.
type Pass struct {
	Canvas *Canvas
	Lo, Hi int
	Want   []int
}

// Choice is what a greedy denoising step reads of one logits row (the
// engine's type: the token, the scores its samplers rank positions by). The
// mask token is never chosen; the lowest id wins among equals.
type Choice = engine.Choice

// Step runs the passes as one forward (their rows share each read of the
// weights; each attends over its own canvas) and returns, pass by pass, a
// Choice for each of its Want rows. Only the Choices leave the GPU. ctx is
// checked between layers.
func (m *Model) Step(ctx context.Context, passes []Pass) ([][]Choice, error) {
	if err := m.checkPasses(passes); err != nil {
		return nil, err
	}
	var out [][]Choice
	err := m.dev.do(func() error {
		wanted, err := m.forward(ctx, passes)
		if err != nil {
			return err
		}
		choices, err := m.choose(wanted)
		if err != nil {
			return err
		}
		for _, p := range passes {
			out = append(out, choices[:len(p.Want):len(p.Want)])
			choices = choices[len(p.Want):]
		}
		return nil
	})
	return out, err
}

// Logits runs one bidirectional forward over tokens and returns the logits
// of every position, a (len(tokens), Vocab) matrix, as
// engine.Model.Logits does.
func (m *Model) Logits(ctx context.Context, tokens []int32) ([]float32, error) {
	if len(tokens) > m.Config.Context {
		return nil, fmt.Errorf("%w: %d tokens (want 1..%d)", ErrBadInput, len(tokens), m.Config.Context)
	}
	c, err := m.NewCanvas(tokens)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	want := make([]int, len(tokens))
	for i := range want {
		want[i] = i
	}
	vocab := m.Config.Vocab
	out := make([]float32, len(tokens)*vocab)
	err = m.dev.do(func() error {
		wanted, err := m.forward(ctx, []Pass{{Canvas: c, Lo: 0, Hi: len(tokens), Want: want}})
		if err != nil {
			return err
		}
		return m.logitChunks(wanted, func(lo, hi int) error {
			return download(out[lo*vocab:hi*vocab], m.ws.logits, 0)
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkPasses checks the passes against their canvases.
func (m *Model) checkPasses(passes []Pass) error {
	if len(passes) == 0 {
		return fmt.Errorf("%w: no passes", ErrBadInput)
	}
	seen := map[*Canvas]bool{}
	for i, p := range passes {
		c := p.Canvas
		switch {
		case c == nil || c.m != m:
			return fmt.Errorf("%w: pass %d: a canvas of another model", ErrBadInput, i)
		case seen[c]:
			return fmt.Errorf("%w: pass %d: the canvas of an earlier pass", ErrBadInput, i)
		case p.Lo < 0 || p.Hi > len(c.tokens) || p.Lo >= p.Hi:
			return fmt.Errorf("%w: pass %d: rows [%d, %d) of a canvas of %d", ErrBadInput, i, p.Lo, p.Hi, len(c.tokens))
		case (p.Lo > 0 || p.Hi < len(c.tokens)) && !c.filled:
			return fmt.Errorf("%w: pass %d: rows [%d, %d) of a canvas no whole pass has run", ErrBadInput, i, p.Lo, p.Hi)
		}
		seen[c] = true
		for _, w := range p.Want {
			if w < p.Lo || w >= p.Hi {
				return fmt.Errorf("%w: pass %d: wanted row %d outside its rows [%d, %d)", ErrBadInput, i, w, p.Lo, p.Hi)
			}
		}
	}
	return nil
}

// forward runs the passes' rows through the model and leaves the normed
// final hidden state of their wanted rows, pass by pass, in ws.final
// (wanted, Dim); it returns how many. Context held.
func (m *Model) forward(ctx context.Context, passes []Pass) (int, error) {
	if m.closed {
		return 0, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	c, d, ws := m.Config, m.dev, &m.ws
	qDim, kvDim := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	var tokens, idx []int32
	for _, p := range passes {
		base := len(tokens)
		tokens = append(tokens, p.Canvas.tokens[p.Lo:p.Hi]...)
		for _, w := range p.Want {
			idx = append(idx, int32(base+w-p.Lo))
		}
	}
	rows, wanted := int64(len(tokens)), int64(len(idx))
	for _, g := range []struct {
		b *buffer
		n int64
	}{
		{&ws.x, rows * int64(c.Dim) * 4}, {&ws.h, rows * int64(c.Dim) * 4},
		{&ws.q, rows * int64(qDim) * 4}, {&ws.k, rows * int64(kvDim) * 4}, {&ws.v, rows * int64(kvDim) * 4},
		{&ws.att, rows * int64(qDim) * 4}, {&ws.gate, rows * int64(c.FFN) * 4}, {&ws.up, rows * int64(c.FFN) * 4},
		{&ws.final, max(wanted, 1) * int64(c.Dim) * 4}, {&ws.tokens, rows * 4}, {&ws.idx, max(wanted, 1) * 4},
	} {
		if err := d.grow(g.b, g.n); err != nil {
			return 0, err
		}
	}
	if err := upload(ws.tokens, 0, tokens); err != nil {
		return 0, err
	}
	if err := upload(ws.idx, 0, idx); err != nil {
		return 0, err
	}

	n := int(rows)
	if err := d.embed(ws.x.ptr, &m.embd, ws.tokens.ptr, n); err != nil {
		return 0, err
	}
	for l := range m.layers {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := m.layer(l, passes, n); err != nil {
			return 0, fmt.Errorf("cuda: %s: layer %d: %w", m.name, l, err)
		}
	}
	if err := d.rmsNorm(ws.final.ptr, ws.x.ptr, m.outNorm.ptr, ws.idx.ptr, int(wanted), c.Dim, c.Eps); err != nil {
		return 0, err
	}
	for _, p := range passes {
		if p.Lo == 0 && p.Hi == len(p.Canvas.tokens) {
			p.Canvas.filled = true
		}
	}
	return int(wanted), nil
}

// layer runs block l over the rows in ws.x, in place. Context held.
func (m *Model) layer(l int, passes []Pass, rows int) error {
	c, d, ws, L := m.Config, m.dev, &m.ws, &m.layers[l]
	qDim, kvDim := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	mm := func(out, x devPtr, w *matrix, bias buffer, acc bool) error {
		return d.matmul(out, x, rows, w, bias.ptr, acc, &ws.partial, m.gemm)
	}
	if err := d.rmsNorm(ws.h.ptr, ws.x.ptr, L.attnNorm.ptr, 0, rows, c.Dim, c.Eps); err != nil {
		return err
	}
	if err := mm(ws.q.ptr, ws.h.ptr, &L.q, L.qBias, false); err != nil {
		return err
	}
	if err := mm(ws.k.ptr, ws.h.ptr, &L.k, L.kBias, false); err != nil {
		return err
	}
	if err := mm(ws.v.ptr, ws.h.ptr, &L.v, L.vBias, false); err != nil {
		return err
	}
	scale := float32(1 / math.Sqrt(float64(c.HeadDim)))
	base := int64(0)
	for _, p := range passes {
		n, T := p.Hi-p.Lo, len(p.Canvas.tokens)
		kc, vc := p.Canvas.kvAt(l)
		q, k, v := ws.q.at(base*int64(qDim)*4), ws.k.at(base*int64(kvDim)*4), ws.v.at(base*int64(kvDim)*4)
		if err := d.ropeStore(q, k, v, kc, vc, m.cos.ptr, m.sin.ptr, n, p.Lo, T, m.rope); err != nil {
			return err
		}
		if err := d.attention(ws.att.at(base*int64(qDim)*4), q, kc, vc, n, T, m.rope, scale); err != nil {
			return err
		}
		base += int64(n)
	}
	if err := mm(ws.x.ptr, ws.att.ptr, &L.out, buffer{}, true); err != nil {
		return err
	}
	if err := d.rmsNorm(ws.h.ptr, ws.x.ptr, L.ffnNorm.ptr, 0, rows, c.Dim, c.Eps); err != nil {
		return err
	}
	if err := mm(ws.gate.ptr, ws.h.ptr, &L.gate, buffer{}, false); err != nil {
		return err
	}
	if err := mm(ws.up.ptr, ws.h.ptr, &L.up, buffer{}, false); err != nil {
		return err
	}
	if err := d.swiGLU(ws.gate.ptr, ws.gate.ptr, ws.up.ptr, int64(rows)*int64(c.FFN)); err != nil {
		return err
	}
	return mm(ws.x.ptr, ws.gate.ptr, &L.down, buffer{}, true)
}

// logitChunks computes the logits of the wanted rows in ws.final a chunk
// of rows at a time into ws.logits, calling fn(lo, hi) after each. Context
// held.
func (m *Model) logitChunks(wanted int, fn func(lo, hi int) error) error {
	vocab := m.Config.Vocab
	chunk := max(1, min(256, logitBytes/(4*vocab)))
	if err := m.dev.grow(&m.ws.logits, int64(min(chunk, max(wanted, 1)))*int64(vocab)*4); err != nil {
		return err
	}
	for lo := 0; lo < wanted; lo += chunk {
		hi := min(lo+chunk, wanted)
		x := m.ws.final.at(int64(lo) * int64(m.Config.Dim) * 4)
		if err := m.dev.matmul(m.ws.logits.ptr, x, hi-lo, &m.output, 0, false, &m.ws.partial, m.gemm); err != nil {
			return err
		}
		if err := fn(lo, hi); err != nil {
			return err
		}
	}
	return nil
}

// choose scores the wanted rows' logits on the GPU and returns their
// Choices. Context held.
func (m *Model) choose(wanted int) ([]Choice, error) {
	out := make([]Choice, 0, wanted)
	vocab := m.Config.Vocab
	stats := make([]float64, 0, wanted*statsFields)
	err := m.logitChunks(wanted, func(lo, hi int) error {
		if err := m.dev.grow(&m.ws.stats, int64(hi-lo)*statsFields*8); err != nil {
			return err
		}
		if err := m.dev.rowStats(m.ws.stats.ptr, m.ws.logits.ptr, hi-lo, vocab, m.Config.MaskID); err != nil {
			return err
		}
		part := make([]float64, (hi-lo)*statsFields)
		if err := download(part, m.ws.stats, 0); err != nil {
			return err
		}
		stats = append(stats, part...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for r := 0; r < wanted; r++ {
		ch, err := choiceOf(stats[r*statsFields : (r+1)*statsFields])
		if err != nil {
			return nil, fmt.Errorf("cuda: %s: wanted row %d: %w", m.name, r, err)
		}
		out = append(out, ch)
	}
	return out, nil
}

// choiceOf turns one row of row_stats' output into a Choice.
func choiceOf(s []float64) (Choice, error) {
	best, second, bestV, secondV, sum, ent := s[0], s[1], s[2], s[3], s[4], s[5]
	if best < 0 || !(sum >= 1) {
		return Choice{}, errors.New("logits with no finite value outside the mask token")
	}
	ch := Choice{Token: int32(best), Prob: 1 / sum, Second: int32(second),
		NegEntropy: ent/sum - math.Log(sum)}
	if second >= 0 {
		ch.SecondProb = math.Exp(secondV-bestV) / sum
	}
	return ch, nil
}
