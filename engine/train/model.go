package train

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/dfill/dfill/engine"
	"github.com/dfill/dfill/engine/kernel"
)

// ErrBadOptions is returned (wrapped, with what was wrong) for a shape or
// option the trainer cannot honour.
var ErrBadOptions = errors.New("train: bad options")

// Shape is the hyperparameters of a model to train.
type Shape struct {
	Layers  int
	Dim     int // embedding width
	Heads   int // query heads
	KVHeads int // key/value heads (grouped-query attention)
	FFN     int // hidden width of the SwiGLU feed-forward
	Vocab   int
	Seq     int // longest sequence: RoPE's table and the GGUF context length
	// RopeBase is RoPE's frequency base (0: 10000).
	RopeBase float64
	// Eps is RMSNorm's epsilon (0: 1e-6).
	Eps float64
	// Tied makes the output projection the token embedding (no output.weight).
	Tied bool
}

func (s Shape) withDefaults() Shape {
	if s.RopeBase == 0 {
		s.RopeBase = 10000
	}
	if s.Eps == 0 {
		s.Eps = 1e-6
	}
	return s
}

func (s Shape) validate() error {
	switch {
	case s.Layers < 1 || s.Dim < 2 || s.Heads < 1 || s.KVHeads < 1 || s.FFN < 1 || s.Vocab < 1 || s.Seq < 1:
		return fmt.Errorf("%w: layers %d, dim %d, heads %d, kv-heads %d, ffn %d, vocab %d, seq %d must all be positive",
			ErrBadOptions, s.Layers, s.Dim, s.Heads, s.KVHeads, s.FFN, s.Vocab, s.Seq)
	case s.Dim%s.Heads != 0 || (s.Dim/s.Heads)%2 != 0:
		return fmt.Errorf("%w: dim %d does not split into %d heads of even size", ErrBadOptions, s.Dim, s.Heads)
	case s.Heads%s.KVHeads != 0:
		return fmt.Errorf("%w: heads %d is not a multiple of kv-heads %d", ErrBadOptions, s.Heads, s.KVHeads)
	case !(s.RopeBase > 0) || !(s.Eps > 0):
		return fmt.Errorf("%w: rope base %g and eps %g must be positive", ErrBadOptions, s.RopeBase, s.Eps)
	}
	return nil
}

// HeadDim is the width of one attention head.
func (s Shape) HeadDim() int { return s.Dim / s.Heads }

// EngineConfig returns the engine's description of a model of this shape
// with mask token mask, as the exported GGUF declares it.
func (s Shape) EngineConfig(name string, mask int32) engine.Config {
	s = s.withDefaults()
	return engine.Config{
		Arch: engine.ArchLLaDA, Name: name, Layers: s.Layers, Dim: s.Dim, Heads: s.Heads, KVHeads: s.KVHeads,
		HeadDim: s.HeadDim(), FFN: s.FFN, Vocab: s.Vocab, Context: s.Seq, RopeBase: s.RopeBase,
		Eps: float32(s.Eps), MaskID: mask,
	}
}

// shapeOf is EngineConfig's inverse: the shape of the model cfg describes,
// with a vocabulary of vocab tokens and the output projection tied to the
// embedding or not. The trainer trains llada models whose heads split
// their width.
func shapeOf(cfg engine.Config, vocab int, tied bool) (Shape, error) {
	if cfg.Arch != engine.ArchLLaDA || cfg.Heads < 1 || cfg.HeadDim*cfg.Heads != cfg.Dim {
		return Shape{}, fmt.Errorf("%w: a %s model of width %d in %d heads of %d: the trainer trains llada models whose heads split their width",
			ErrBadOptions, cfg.Arch, cfg.Dim, cfg.Heads, cfg.HeadDim)
	}
	s := Shape{Layers: cfg.Layers, Dim: cfg.Dim, Heads: cfg.Heads, KVHeads: cfg.KVHeads, FFN: cfg.FFN, Vocab: vocab,
		Seq: cfg.Context, RopeBase: cfg.RopeBase, Eps: float64(cfg.Eps), Tied: tied}
	return s, s.validate()
}

// Params returns the number of parameters of a model of this shape.
func (s Shape) Params() int {
	n := 0
	for _, t := range s.tensors() {
		n += t.rows * t.cols
	}
	return n
}

// tensorSpec is one tensor of a model: its place in the flat parameter
// vector, shape (rows, cols; cols 1 for a vector) and whether weight decay
// applies (matrices yes, norm gains no).
type tensorSpec struct {
	name       string // GGUF name, or "blk.N.attn_qkv" / "blk.N.ffn_gate_up" for fused ones
	off        int
	rows, cols int
	decay      bool
}

// tensors lays the model's tensors out in one flat vector. Q, K and V are
// fused into one (qDim+2·kvDim, dim) matrix and gate and up into one
// (2·ffn, dim) matrix, so that each takes one matrix product; Export splits
// them back into the engine's tensors.
func (s Shape) tensors() []tensorSpec {
	var ts []tensorSpec
	off := 0
	add := func(name string, rows, cols int, decay bool) {
		ts = append(ts, tensorSpec{name, off, rows, cols, decay})
		off += rows * cols
	}
	hd := s.HeadDim()
	qDim, kvDim := s.Heads*hd, s.KVHeads*hd
	add("token_embd.weight", s.Vocab, s.Dim, true)
	add("output_norm.weight", s.Dim, 1, false)
	if !s.Tied {
		add("output.weight", s.Vocab, s.Dim, true)
	}
	for l := 0; l < s.Layers; l++ {
		p := "blk." + strconv.Itoa(l) + "."
		add(p+"attn_norm.weight", s.Dim, 1, false)
		add(p+"attn_qkv", qDim+2*kvDim, s.Dim, true)
		add(p+"attn_output.weight", s.Dim, qDim, true)
		add(p+"ffn_norm.weight", s.Dim, 1, false)
		add(p+"ffn_gate_up", 2*s.FFN, s.Dim, true)
		add(p+"ffn_down.weight", s.Dim, s.FFN, true)
	}
	return ts
}

// Params holds a model's weights (or their gradients, or an optimizer's
// moments) in one flat vector, with a view of each tensor.
type Params[T Float] struct {
	Data    []T
	Embd    []T // (vocab, dim)
	OutNorm []T // (dim)
	Out     []T // (vocab, dim); the same slice as Embd when tied
	Layers  []LayerParams[T]
	specs   []tensorSpec
}

// LayerParams are the views of one block's tensors.
type LayerParams[T Float] struct {
	AttnNorm []T // (dim)
	QKV      []T // (qDim + 2·kvDim, dim): the rows of Q, then K, then V
	AttnOut  []T // (dim, qDim)
	FFNNorm  []T // (dim)
	GateUp   []T // (2·ffn, dim): the rows of gate, then up
	Down     []T // (dim, ffn)
}

// NewParams returns zeroed parameters of shape s.
func NewParams[T Float](s Shape) *Params[T] {
	specs := s.tensors()
	last := specs[len(specs)-1]
	p := &Params[T]{Data: make([]T, last.off+last.rows*last.cols), specs: specs}
	view := func(i int) []T {
		t := specs[i]
		return p.Data[t.off : t.off+t.rows*t.cols : t.off+t.rows*t.cols]
	}
	i := 0
	next := func() []T { i++; return view(i - 1) }
	p.Embd, p.OutNorm = next(), next()
	p.Out = p.Embd
	if !s.Tied {
		p.Out = next()
	}
	p.Layers = make([]LayerParams[T], s.Layers)
	for l := range p.Layers {
		p.Layers[l] = LayerParams[T]{AttnNorm: next(), QKV: next(), AttnOut: next(), FFNNorm: next(), GateUp: next(), Down: next()}
	}
	return p
}

// init fills p with the initial weights: norm gains 1, matrices
// N(0, 0.02²), the two projections that write to the residual stream
// scaled down by √(2·layers) as GPT-2 does, so the stream's variance does
// not grow with depth.
func (p *Params[T]) init(s Shape, rng *rand.Rand) {
	const sigma = 0.02
	resid := sigma / math.Sqrt(2*float64(s.Layers))
	for _, t := range p.specs {
		data := p.Data[t.off : t.off+t.rows*t.cols]
		if t.cols == 1 {
			for i := range data {
				data[i] = 1
			}
			continue
		}
		sd := sigma
		if strings.HasSuffix(t.name, "attn_output.weight") || strings.HasSuffix(t.name, "ffn_down.weight") {
			sd = resid
		}
		for i := range data {
			data[i] = T(sd * rng.NormFloat64())
		}
	}
}

// Model is a llada model being trained: its weights, their gradients and
// the activations of the last forward, kept for the backward.
type Model[T Float] struct {
	Shape Shape
	W, G  *Params[T] // weights and gradients

	pool *kernel.Pool
	rope rope[T]
	s    scratch[T]
	asp  attnScratchPool[T]
	a    activations[T]
}

// activations are what the forward keeps for the backward, and the
// backward's own buffers; they grow to the largest batch seen.
type activations[T Float] struct {
	batch, seq int
	tokens     []int32
	layers     []layerActs[T]
	xOut       []T   // (n, dim): the residual stream after the last block
	rows       []int // the rows whose logits were computed
	want       []int // Loss's rows with a positive weight
	xf         []T   // (m, dim): xOut's wanted rows
	hf, invf   []T   // (m, dim), (m): their final norm
	logits     []T   // (m, vocab), then its gradient
	rowLoss    []float64
	tgt        []int32
	w          []float32

	dx, dh, dqkv, datt, dact, dgu, tmp []T
}

// layerActs are one block's activations.
type layerActs[T Float] struct {
	x        []T // (n, dim): input
	h1, inv1 []T // (n, dim), (n): attention norm
	qkv      []T // (n, qDim+2·kvDim), q and k rotated
	probs    []T // (batch, heads, seq, seq)
	att      []T // (n, qDim): attention output
	xMid     []T // (n, dim): x + attention
	h2, inv2 []T // (n, dim), (n): feed-forward norm
	gu       []T // (n, 2·ffn): gate and up
	act      []T // (n, ffn): silu(gate)·up
}

// NewModel returns a model of shape s with weights initialized from seed,
// running its matrix products on pool.
func NewModel[T Float](s Shape, pool *kernel.Pool, seed uint64) (*Model[T], error) {
	s = s.withDefaults()
	if err := s.validate(); err != nil {
		return nil, err
	}
	m := &Model[T]{Shape: s, W: NewParams[T](s), G: NewParams[T](s), pool: pool,
		rope: newRope[T](s.HeadDim(), s.Seq, s.RopeBase)}
	m.W.init(s, rand.New(rand.NewPCG(seed, 0x5eed)))
	return m, nil
}

func (m *Model[T]) attn(batch, seq int) attnShape {
	return attnShape{batch: batch, seq: seq, heads: m.Shape.Heads, kvHeads: m.Shape.KVHeads, headDim: m.Shape.HeadDim()}
}

// ensure sizes the activations for batch sequences of seq tokens.
func (m *Model[T]) ensure(batch, seq int) {
	s, a := m.Shape, &m.a
	n := batch * seq
	at := m.attn(batch, seq)
	a.batch, a.seq = batch, seq
	if len(a.layers) != s.Layers {
		a.layers = make([]layerActs[T], s.Layers)
	}
	for l := range a.layers {
		la := &a.layers[l]
		la.x = grow(la.x, n*s.Dim)
		la.h1 = grow(la.h1, n*s.Dim)
		la.inv1 = grow(la.inv1, n)
		la.qkv = grow(la.qkv, n*at.stride())
		la.probs = grow(la.probs, batch*s.Heads*seq*seq)
		la.att = grow(la.att, n*at.qDim())
		la.xMid = grow(la.xMid, n*s.Dim)
		la.h2 = grow(la.h2, n*s.Dim)
		la.inv2 = grow(la.inv2, n)
		la.gu = grow(la.gu, n*2*s.FFN)
		la.act = grow(la.act, n*s.FFN)
	}
	a.xOut = grow(a.xOut, n*s.Dim)
	a.tmp = grow(a.tmp, n*s.Dim)
}

// forward runs the model over tokens, batch sequences of seq tokens each
// (row r is position r % seq of sequence r / seq; sequences attend only
// within themselves), and returns the logits (len(rows), vocab) of the rows
// in rows. The activations stay for backward.
func (m *Model[T]) forward(tokens []int32, batch, seq int, rows []int) ([]T, error) {
	s := m.Shape
	n := batch * seq
	if len(tokens) != n || seq > s.Seq {
		return nil, fmt.Errorf("%w: %d tokens for %d sequences of %d (longest %d)", ErrBadOptions, len(tokens), batch, seq, s.Seq)
	}
	for _, t := range tokens {
		if t < 0 || int(t) >= s.Vocab {
			return nil, fmt.Errorf("%w: token %d outside the vocabulary of %d", ErrBadOptions, t, s.Vocab)
		}
	}
	m.ensure(batch, seq)
	a, p, W := &m.a, m.pool, m.W
	at := m.attn(batch, seq)
	a.tokens = append(a.tokens[:0], tokens...)
	a.rows = append(a.rows[:0], rows...)

	embed(a.layers[0].x, W.Embd, tokens, s.Dim)
	for l := range a.layers {
		la, L := &a.layers[l], &W.Layers[l]
		next := a.xOut
		if l+1 < len(a.layers) {
			next = a.layers[l+1].x
		}
		rmsNorm(p, la.h1, la.inv1, la.x, L.AttnNorm, n, s.Dim, s.Eps)
		matMul(p, la.qkv, la.h1, n, L.QKV, at.stride(), s.Dim)
		m.rope.apply(p, la.qkv, n, at.stride(), 0, s.Heads, seq, false)
		m.rope.apply(p, la.qkv, n, at.stride(), at.qDim(), s.KVHeads, seq, false)
		attention(p, &m.asp, la.att, la.probs, la.qkv, at)
		matMul(p, a.tmp, la.att, n, L.AttnOut, s.Dim, at.qDim())
		add(la.xMid, la.x, a.tmp)
		rmsNorm(p, la.h2, la.inv2, la.xMid, L.FFNNorm, n, s.Dim, s.Eps)
		matMul(p, la.gu, la.h2, n, L.GateUp, 2*s.FFN, s.Dim)
		swiglu(p, la.act, la.gu, n, s.FFN)
		matMul(p, a.tmp, la.act, n, L.Down, s.Dim, s.FFN)
		add(next, la.xMid, a.tmp)
	}

	nr := len(rows)
	a.xf = grow(a.xf, nr*s.Dim)
	a.hf = grow(a.hf, nr*s.Dim)
	a.invf = grow(a.invf, nr)
	a.logits = grow(a.logits, nr*s.Vocab)
	for i, r := range rows {
		copy(a.xf[i*s.Dim:(i+1)*s.Dim], a.xOut[r*s.Dim:(r+1)*s.Dim])
	}
	rmsNorm(p, a.hf, a.invf, a.xf, W.OutNorm, nr, s.Dim, s.Eps)
	matMul(p, a.logits, a.hf, nr, W.Out, s.Vocab, s.Dim)
	return a.logits, nil
}

// add writes dst = x + y.
func add[T Float](dst, x, y []T) {
	y = y[:len(x)]
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = v + y[i]
	}
}

// backward computes the gradients of the loss whose gradient with respect
// to the logits of the last forward is in m.a.logits, overwriting m.G.
func (m *Model[T]) backward() {
	s, a, p, W, G := m.Shape, &m.a, m.pool, m.W, m.G
	batch, seq := a.batch, a.seq
	n, nr := batch*seq, len(a.rows)
	at := m.attn(batch, seq)
	clear(G.Data)
	a.dx = grow(a.dx, n*s.Dim)
	a.dh = grow(a.dh, n*s.Dim)
	a.dqkv = grow(a.dqkv, n*at.stride())
	a.datt = grow(a.datt, n*at.qDim())
	a.dact = grow(a.dact, n*s.FFN)
	a.dgu = grow(a.dgu, n*2*s.FFN)

	// Output projection and final norm, for the rows that have logits. The
	// output gradient is written first, so with tied weights it lands in the
	// still-zero embedding gradient that embedBackward adds to at the end.
	dhf := a.dh[:nr*s.Dim]
	linearBackward(p, &m.s, dhf, G.Out, a.logits, a.hf, W.Out, nr, s.Dim, s.Vocab)
	dxf := a.tmp[:nr*s.Dim]
	clear(dxf)
	rmsNormBackward(p, dxf, G.OutNorm, dhf, a.xf, W.OutNorm, a.invf, nr, s.Dim)
	clear(a.dx)
	for i, r := range a.rows {
		dst := a.dx[r*s.Dim : (r+1)*s.Dim]
		for j, g := range dxf[i*s.Dim : (i+1)*s.Dim] {
			dst[j] += g
		}
	}

	// a.dx holds the gradient of each block's output; the residual
	// connections pass it through unchanged, and each branch adds its own.
	for l := len(a.layers) - 1; l >= 0; l-- {
		la, L, GL := &a.layers[l], &W.Layers[l], &G.Layers[l]
		linearBackward(p, &m.s, a.dact, GL.Down, a.dx, la.act, L.Down, n, s.FFN, s.Dim)
		swigluBackward(p, a.dgu, a.dact, la.gu, n, s.FFN)
		linearBackward(p, &m.s, a.dh, GL.GateUp, a.dgu, la.h2, L.GateUp, n, s.Dim, 2*s.FFN)
		rmsNormBackward(p, a.dx, GL.FFNNorm, a.dh, la.xMid, L.FFNNorm, la.inv2, n, s.Dim)

		linearBackward(p, &m.s, a.datt, GL.AttnOut, a.dx, la.att, L.AttnOut, n, at.qDim(), s.Dim)
		attentionBackward(p, &m.asp, a.dqkv, a.datt, la.probs, la.qkv, at)
		m.rope.apply(p, a.dqkv, n, at.stride(), 0, s.Heads, seq, true)
		m.rope.apply(p, a.dqkv, n, at.stride(), at.qDim(), s.KVHeads, seq, true)
		linearBackward(p, &m.s, a.dh, GL.QKV, a.dqkv, la.h1, L.QKV, n, s.Dim, at.stride())
		rmsNormBackward(p, a.dx, GL.AttnNorm, a.dh, la.x, L.AttnNorm, la.inv1, n, s.Dim)
	}
	embedBackward(G.Embd, a.dx, a.tokens, s.Dim)
}

// Loss runs the model over b and returns its masked-diffusion loss,
// Σ b.Weights[i]·CE(logits_i, b.Targets[i]) over the rows with a positive
// weight. With grad it also computes the gradients into m.G.
func (m *Model[T]) Loss(b *Batch, grad bool) (float64, error) {
	a := &m.a
	rows := a.want[:0]
	a.tgt, a.w = a.tgt[:0], a.w[:0]
	for i, w := range b.Weights {
		if w > 0 {
			rows = append(rows, i)
			a.tgt = append(a.tgt, b.Targets[i])
			a.w = append(a.w, w)
		}
	}
	for _, t := range a.tgt {
		if t < 0 || int(t) >= m.Shape.Vocab {
			return 0, fmt.Errorf("%w: target %d outside the vocabulary of %d", ErrBadOptions, t, m.Shape.Vocab)
		}
	}
	a.want = rows
	tgt, w := a.tgt, a.w
	logits, err := m.forward(b.Tokens, b.Batch, b.Seq, rows)
	if err != nil {
		return 0, err
	}
	a.rowLoss = grow(a.rowLoss, len(rows))
	loss := crossEntropy(m.pool, logits, tgt, w, a.rowLoss, len(rows), m.Shape.Vocab, grad)
	if grad {
		m.backward()
	}
	return loss, nil
}

// Logits returns the logits (len(tokens), vocab) of one sequence: what the
// engine's Model.Logits computes, for cross-checking the two.
func (m *Model[T]) Logits(tokens []int32) ([]T, error) {
	rows := make([]int, len(tokens))
	for i := range rows {
		rows[i] = i
	}
	logits, err := m.forward(tokens, 1, len(tokens), rows)
	if err != nil {
		return nil, err
	}
	return append([]T(nil), logits...), nil
}
