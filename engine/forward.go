package engine

import (
	"context"
	"fmt"
	"math"

	"github.com/dfill/dfill/engine/kernel"
)

// sequence is one canvas (prefix, span, suffix) with the keys and values
// of every position at every layer: the dual cache. A full pass writes all
// of them; a span pass rewrites only the rows it runs and reads the rest.
// Keys are stored head-major and values transposed, so that attention is
// two matrix products per kv head: scores = Q·Kᵀ and out = P·(Vᵀ)ᵀ.
type sequence struct {
	tokens []int32
	k      [][]float32 // [layer] (KVHeads, T, HeadDim)
	vt     [][]float32 // [layer] (KVHeads, HeadDim, T)
	kv     []float32   // the buffer k and vt are cut from
}

// newSequence returns a sequence for the canvas tokens, its cache cut from
// a kept buffer when one is big enough. The cache is not cleared: a full
// pass writes every position of every layer before any is read.
func (m *Model) newSequence(tokens []int32) *sequence {
	cfg := m.Config
	per := len(tokens) * cfg.KVHeads * cfg.HeadDim
	need := 2 * cfg.Layers * per
	kv, ok := m.kvBuffers.get()
	if !ok || cap(kv) < need {
		kv = make([]float32, need)
	}
	kv = kv[:need]
	s := &sequence{tokens: tokens, k: make([][]float32, cfg.Layers), vt: make([][]float32, cfg.Layers), kv: kv}
	for l := range s.k {
		s.k[l] = kv[2*l*per : (2*l+1)*per : (2*l+1)*per]
		s.vt[l] = kv[(2*l+1)*per : (2*l+2)*per : (2*l+2)*per]
	}
	return s
}

// pass asks forward to run rows [lo, hi) of seq and to return the final
// hidden state of the positions in want (each in [lo, hi)).
type pass struct {
	seq    *sequence
	lo, hi int
	want   []int
}

// workspace holds the activations of one forward; it grows as needed and is
// reused across the steps of one Infill.
type workspace struct {
	x, h, q, k, v, att, gate, up []float32
	attnTasks                    []attnTask
	attnScratch                  []*attnScratch // one per pool thread
	pos                          []int          // canvas position of each row
	seq                          []int          // pass index of each row
	logits, final                []float32
	moe                          moeWork // routed experts' scratch (llada-moe, rnd1)
}

// ffnChunk is how many rows the FFN runs at once: enough that a transposed
// product (kernel.MatMul) decodes and packs the weight for many rows (64
// rows took a third longer on the embedded model's 256-token canvas), few
// enough that a long canvas does not hold (rows, ffn) activations twice.
const ffnChunk = 256

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// forward runs each pass's rows through the model, attending over the whole
// canvas of its sequence, and returns the normalised final hidden state of
// the wanted positions, pass by pass, as a (len(wanted), dim) matrix; the
// caller turns it into logits (see logits) a few rows at a time, since the
// output matrix is the largest.
func (m *Model) forward(ctx context.Context, ws *workspace, passes []pass) ([]float32, error) {
	c := m.Config
	qDim, kvDim := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim

	rows := 0
	for _, p := range passes {
		rows += p.hi - p.lo
	}
	ws.x = grow(ws.x, rows*c.Dim)
	ws.h = grow(ws.h, rows*c.Dim)
	ws.q = grow(ws.q, rows*qDim)
	ws.k = grow(ws.k, rows*kvDim)
	ws.v = grow(ws.v, rows*kvDim)
	ws.att = grow(ws.att, rows*qDim)
	if !c.MoE() {
		ws.gate = grow(ws.gate, min(rows, ffnChunk)*c.FFN)
		ws.up = grow(ws.up, min(rows, ffnChunk)*c.FFN)
	}
	ws.pos, ws.seq = ws.pos[:0], ws.seq[:0]
	for i, p := range passes {
		for pos := p.lo; pos < p.hi; pos++ {
			ws.pos = append(ws.pos, pos)
			ws.seq = append(ws.seq, i)
		}
	}

	// x is (rows, dim): the embeddings of the rows' tokens.
	for r, pos := range ws.pos {
		tok := passes[ws.seq[r]].seq.tokens[pos]
		if err := embed(m.TokenEmbd, tok, ws.x[r*c.Dim:(r+1)*c.Dim]); err != nil {
			return nil, err
		}
	}

	for l := range m.Layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m.layer(ws, l, passes, rows)
	}

	want := 0
	for _, p := range passes {
		want += len(p.want)
	}
	ws.final = grow(ws.final, want*c.Dim)
	w, base := 0, 0
	for _, p := range passes {
		for _, pos := range p.want {
			r := base + pos - p.lo
			kernel.RMSNorm(ws.final[w*c.Dim:(w+1)*c.Dim], ws.x[r*c.Dim:(r+1)*c.Dim], m.OutputNorm, c.Eps)
			w++
		}
		base += p.hi - p.lo
	}
	return ws.final, nil
}

// logitChunk is how many rows of logits are held at once when whole rows
// are needed (sampling, Logits): 8 rows of a 151936-token vocabulary are
// 4.6 MiB.
const logitChunk = 8

// vocabChunk is how many rows of the output matrix the greedy sampler
// multiplies at once: every wanted position sees each chunk, so the largest
// matrix is read once per step, not once per few positions.
const vocabChunk = 8192

// logits computes the logits of rows [lo, hi) of final (rows, dim) into
// ws.logits and returns them, a (hi-lo, vocab) matrix.
func (m *Model) logits(ws *workspace, final []float32, lo, hi int) []float32 {
	c := m.Config
	ws.logits = grow(ws.logits, (hi-lo)*c.Vocab)
	kernel.MatMul(m.pool, ws.logits, final[lo*c.Dim:hi*c.Dim], hi-lo, m.Output)
	return ws.logits
}

// scanLogits computes the logits of every row of final (rows, dim) one
// vocabulary chunk at a time and folds each chunk into stats[i], the
// softmax statistics of row i.
func (m *Model) scanLogits(ws *workspace, final []float32, stats []rowStats) {
	c := m.Config
	rows := len(stats)
	for i := range stats {
		stats[i].reset()
	}
	for v0 := 0; v0 < c.Vocab; v0 += vocabChunk {
		n := min(vocabChunk, c.Vocab-v0)
		part := m.Output.Slice(v0, v0+n)
		ws.logits = grow(ws.logits, rows*n)
		kernel.MatMul(m.pool, ws.logits, final[:rows*c.Dim], rows, part)
		logits := ws.logits
		m.pool.Run(rows, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				stats[i].add(logits[i*n:(i+1)*n], v0, c.MaskID)
			}
		})
	}
}

// rowStats are the softmax statistics of one logits row, accumulated over
// chunks of the vocabulary with a running maximum (the online softmax).
type rowStats struct {
	best, second   int     // the two largest logits' token ids (-1: none yet)
	bestV, secondV float32 // and their values
	max            float64 // the running maximum
	sum            float64 // Σ exp(v − max)
	ent            float64 // Σ exp(v − max)·(v − max), for the entropy
}

func (s *rowStats) reset() { *s = rowStats{best: -1, second: -1} }

// add folds the logits of tokens base, base+1, … into s, skipping mask.
func (s *rowStats) add(chunk []float32, base int, mask int32) {
	for j, v := range chunk {
		id := base + j
		if int32(id) == mask {
			continue
		}
		switch {
		case s.best < 0 || v > s.bestV:
			s.second, s.secondV = s.best, s.bestV
			s.best, s.bestV = id, v
		case s.second < 0 || v > s.secondV:
			s.second, s.secondV = id, v
		}
	}
	// Rescale to the new maximum, then add this chunk's terms.
	if m := float64(s.bestV); s.sum == 0 || m > s.max {
		if s.sum > 0 {
			f := math.Exp(s.max - m)
			s.ent = f * (s.ent + s.sum*(s.max-m))
			s.sum *= f
		}
		s.max = m
	}
	// The exponentials run vectorized on the chunk around the mask token.
	parts := [2][]float32{chunk}
	if k := int(mask) - base; k >= 0 && k < len(chunk) {
		parts = [2][]float32{chunk[:k], chunk[k+1:]}
	}
	for _, part := range parts {
		sum, ent := kernel.ExpStats(part, float32(s.max))
		s.sum += sum
		s.ent += ent
	}
}

// probability of the best token, the margin to the second, and −entropy.
func (s *rowStats) confidence() float64 { return 1 / s.sum }

func (s *rowStats) margin() float64 {
	if s.second < 0 {
		return s.confidence()
	}
	return (1 - math.Exp(float64(s.secondV)-s.max)) / s.sum
}

func (s *rowStats) negEntropy() float64 { return s.ent/s.sum - math.Log(s.sum) }

// layer runs block l over the rows in ws.x (rows, dim), in place.
func (m *Model) layer(ws *workspace, l int, passes []pass, rows int) {
	c := m.Config
	L := &m.Layers[l]

	m.normRows(ws.h, ws.x, rows, L.AttnNorm)
	// q (rows, qDim), k and v (rows, kvDim), from one quantization of h
	// when the weights are Q8_0.
	kernel.MatMulShared(m.pool, ws.h, rows, kernel.Product{Out: ws.q, W: L.Q},
		kernel.Product{Out: ws.k, W: L.K}, kernel.Product{Out: ws.v, W: L.V})
	m.rowLoop(rows, func(lo, hi int) { m.storeKV(ws, l, passes, lo, hi) })

	m.attention(ws, l, passes, rows)
	kernel.MatMul(m.pool, ws.h, ws.att, rows, L.Out) // (rows, dim)
	m.addRows(ws.x, ws.h, rows)

	m.normRows(ws.h, ws.x, rows, L.FFNNorm)
	if c.MoE() {
		m.experts(ws, L, rows)
		m.addRows(ws.x, ws.h, rows)
		return
	}
	// The FFN runs ffnChunk rows at a time so a full pass over a long
	// canvas does not hold (rows, ffn) activations twice.
	for r0 := 0; r0 < rows; r0 += ffnChunk {
		n := min(ffnChunk, rows-r0)
		h := ws.h[r0*c.Dim : (r0+n)*c.Dim]
		gate, up := ws.gate[:n*c.FFN], ws.up[:n*c.FFN]
		kernel.MatMulShared(m.pool, h, n, kernel.Product{Out: gate, W: L.Gate}, kernel.Product{Out: up, W: L.Up}) // (n, ffn) each
		m.rowLoop(n, func(lo, hi int) {
			kernel.SwiGLU(gate[lo*c.FFN:hi*c.FFN], gate[lo*c.FFN:hi*c.FFN], up[lo*c.FFN:hi*c.FFN])
		})
		kernel.MatMul(m.pool, h, gate, n, L.Down) // (n, dim), over h: its rows are consumed
	}
	m.addRows(ws.x, ws.h, rows)
}

// parallelRows is the fewest rows for which the row-wise steps (norms,
// RoPE, residual adds) run on the pool: below it, waking the workers costs
// more than the steps (measured on the embedded model's 32-row passes).
const parallelRows = 64

// rowLoop runs fn over rows [0, rows), split over the pool when there are
// parallelRows or more.
func (m *Model) rowLoop(rows int, fn func(lo, hi int)) {
	if rows < parallelRows {
		fn(0, rows)
		return
	}
	m.pool.Run(rows, fn)
}

// normRows writes the first rows of x (rows, dim), RMS-normalised with
// weight, to out.
func (m *Model) normRows(out, x []float32, rows int, weight []float32) {
	dim, eps := m.Config.Dim, m.Config.Eps
	m.rowLoop(rows, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			kernel.RMSNorm(out[r*dim:(r+1)*dim], x[r*dim:(r+1)*dim], weight, eps)
		}
	})
}

// addRows adds the first rows of src to dst (rows, dim): the residual.
func (m *Model) addRows(dst, src []float32, rows int) {
	dim := m.Config.Dim
	m.rowLoop(rows, func(lo, hi int) {
		kernel.Add(dst[lo*dim:hi*dim], src[lo*dim:hi*dim])
	})
}

// storeKV finishes rows [lo, hi) of the projections in ws.q, ws.k, ws.v
// (biases, RoPE) and stores their keys and values in their sequences' cache
// for layer l: keys head-major, values transposed.
func (m *Model) storeKV(ws *workspace, l int, passes []pass, lo, hi int) {
	c := m.Config
	L := &m.Layers[l]
	qDim, kvDim, hd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim, c.HeadDim
	for r := lo; r < hi; r++ {
		q, k, v := ws.q[r*qDim:(r+1)*qDim], ws.k[r*kvDim:(r+1)*kvDim], ws.v[r*kvDim:(r+1)*kvDim]
		if L.QBias != nil {
			kernel.Add(q, L.QBias)
			kernel.Add(k, L.KBias)
			kernel.Add(v, L.VBias)
		}
		if L.QNorm != nil {
			kernel.RMSNormRows(q, q, L.QNorm, c.Eps)
			kernel.RMSNormRows(k, k, L.KNorm, c.Eps)
		}
		pos := ws.pos[r]
		m.rope.Apply(q, c.Heads, pos)
		m.rope.Apply(k, c.KVHeads, pos)
		seq := passes[ws.seq[r]].seq
		T := len(seq.tokens)
		for h := 0; h < c.KVHeads; h++ {
			copy(seq.k[l][(h*T+pos)*hd:(h*T+pos+1)*hd], k[h*hd:(h+1)*hd])
		}
	}
	// The values go in transposed, each dimension's run of positions at
	// once: the writes are consecutive where the rows are.
	for r0 := lo; r0 < hi; {
		seq, pos0 := passes[ws.seq[r0]].seq, ws.pos[r0]
		r1 := r0 + 1
		for r1 < hi && ws.seq[r1] == ws.seq[r0] && ws.pos[r1] == pos0+r1-r0 {
			r1++
		}
		T := len(seq.tokens)
		vt := seq.vt[l]
		for e := 0; e < kvDim; e++ { // e = h*hd + d
			dst := vt[e*T+pos0 : e*T+pos0+r1-r0]
			for i := range dst {
				dst[i] = ws.v[(r0+i)*kvDim+e]
			}
		}
		r0 = r1
	}
}

// attention computes, for every row and head, softmax(q·Kᵀ/√d)·V over all
// positions of the row's canvas (bidirectional: no mask). Grouped-query
// attention: the heads sharing a kv head are stacked, so each kv head of
// each pass is two matrix products and a row-wise softmax. The (kv head,
// chunk of query rows) pieces are independent and small (a 32-row span of a
// 256-token canvas is about a megaflop per head), so they run as tasks of
// one pool loop, each on one thread with its own scratch, rather than as
// three pool loops per head.
func (m *Model) attention(ws *workspace, l int, passes []pass, rows int) {
	c := m.Config
	threads := m.pool.Threads()
	ws.attnTasks = ws.attnTasks[:0]
	base := 0
	for i, p := range passes {
		n, T := p.hi-p.lo, len(p.seq.tokens)
		chunk := attnChunk(n, T, c.Heads/c.KVHeads, c.KVHeads, threads)
		for kvh := 0; kvh < c.KVHeads; kvh++ {
			for r0 := 0; r0 < n; r0 += chunk {
				ws.attnTasks = append(ws.attnTasks, attnTask{pass: i, row: base + r0, rows: min(chunk, n-r0), kvh: kvh})
			}
		}
		base += n
	}
	for len(ws.attnScratch) < threads {
		ws.attnScratch = append(ws.attnScratch, &attnScratch{})
	}
	m.pool.RunWorkers(len(ws.attnTasks), func(worker, lo, hi int) {
		for _, t := range ws.attnTasks[lo:hi] {
			m.attend(ws, ws.attnScratch[worker], l, passes[t.pass], t)
		}
	})
}

// attnTask is one piece of a layer's attention: query rows [row, row+rows)
// of the pass (rows of the workspace) against kv head kvh.
type attnTask struct {
	pass, row, rows, kvh int
}

// attnScratch is one thread's attention buffers.
type attnScratch struct {
	qh, scores, oh []float32
}

// attnChunk is how many query rows one attention task takes, for a pass of
// n rows over a canvas of T positions: few enough that there are two tasks
// per thread, and that the scores of one task stay within
// attnScoreBudget/threads, but at least 16 rows (a vector of the matrix
// kernels) when the pass has them.
func attnChunk(n, T, group, kvHeads, threads int) int {
	pieces := max(1, (2*threads+kvHeads-1)/kvHeads)
	chunk := (n + pieces - 1) / pieces
	chunk = max(chunk, min(n, 16))
	return max(1, min(chunk, attnScoreBudget/threads/(group*T)))
}

// attend runs one attention task: the heads of kv head t.kvh for its rows.
func (m *Model) attend(ws *workspace, s *attnScratch, l int, p pass, t attnTask) {
	c := m.Config
	hd := c.HeadDim
	qDim := c.Heads * hd
	group := c.Heads / c.KVHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	T := len(p.seq.tokens)
	g := group * t.rows // stacked query rows
	s.qh = grow(s.qh, g*hd)
	s.scores = grow(s.scores, g*T)
	s.oh = grow(s.oh, g*hd)
	// qh is (group·rows, hd): the group's heads for each row, scaled.
	for j := 0; j < group; j++ {
		h := t.kvh*group + j
		for r := 0; r < t.rows; r++ {
			src := ws.q[(t.row+r)*qDim+h*hd : (t.row+r)*qDim+(h+1)*hd]
			dst := s.qh[(j*t.rows+r)*hd : (j*t.rows+r+1)*hd]
			for d, v := range src {
				dst[d] = v * scale
			}
		}
	}
	keys := p.seq.k[l][t.kvh*T*hd : (t.kvh+1)*T*hd]       // (T, hd)
	vt := p.seq.vt[l][t.kvh*hd*T : (t.kvh+1)*hd*T]        // (hd, T)
	kernel.MatMulF32(nil, s.scores, s.qh, g, keys, T, hd) // (g, T)
	for i := 0; i < g; i++ {
		kernel.Softmax(s.scores[i*T : (i+1)*T])
	}
	kernel.MatMulF32(nil, s.oh, s.scores, g, vt, hd, T) // (g, hd)
	for j := 0; j < group; j++ {
		h := t.kvh*group + j
		for r := 0; r < t.rows; r++ {
			copy(ws.att[(t.row+r)*qDim+h*hd:(t.row+r)*qDim+(h+1)*hd], s.oh[(j*t.rows+r)*hd:(j*t.rows+r+1)*hd])
		}
	}
}

// attnScoreBudget bounds the attention score matrices of all threads
// together, in floats (4 MiB).
const attnScoreBudget = 1 << 20

// embed writes row tok of the embedding matrix, decoded, into dst.
func embed(emb kernel.Matrix, tok int32, dst []float32) error {
	if tok < 0 || int(tok) >= emb.Rows {
		return fmt.Errorf("%w: token id %d outside the vocabulary of %d", ErrBadOptions, tok, emb.Rows)
	}
	size := len(emb.Data) / emb.Rows
	return kernel.Dequantize(emb.Type, emb.Data[int(tok)*size:(int(tok)+1)*size], dst)
}

// Logits runs one bidirectional forward over tokens and returns the logits
// of every position, a (len(tokens), vocab) matrix. It is the model's raw
// output, for cross-checking dfill against other implementations.
func (m *Model) Logits(ctx context.Context, tokens []int32) ([]float32, error) {
	if len(tokens) == 0 || len(tokens) > m.Config.Context {
		return nil, fmt.Errorf("%w: %d tokens (want 1..%d)", ErrBadOptions, len(tokens), m.Config.Context)
	}
	seq := m.newSequence(append([]int32(nil), tokens...))
	defer m.kvBuffers.put(seq.kv)
	want := make([]int, len(tokens))
	for i := range want {
		want[i] = i
	}
	ws := m.workspace()
	defer m.workspaces.put(ws)
	final, err := m.forward(ctx, ws, []pass{{seq: seq, lo: 0, hi: len(tokens), want: want}})
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(tokens)*m.Config.Vocab)
	for lo := 0; lo < len(tokens); lo += logitChunk {
		hi := min(lo+logitChunk, len(tokens))
		copy(out[lo*m.Config.Vocab:], m.logits(ws, final, lo, hi))
	}
	return out, nil
}
