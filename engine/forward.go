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
type sequence struct {
	tokens []int32
	k, v   [][]float32 // [layer] (T, kvDim)
}

func newSequence(cfg Config, tokens []int32) *sequence {
	s := &sequence{tokens: tokens, k: make([][]float32, cfg.Layers), v: make([][]float32, cfg.Layers)}
	kvDim := cfg.KVHeads * cfg.HeadDim
	for l := range s.k {
		s.k[l] = make([]float32, len(tokens)*kvDim)
		s.v[l] = make([]float32, len(tokens)*kvDim)
	}
	return s
}

// pass asks forward to run rows [lo, hi) of seq and to return the logits
// of the positions in want (each in [lo, hi)).
type pass struct {
	seq    *sequence
	lo, hi int
	want   []int
}

// workspace holds the activations of one forward; it grows as needed and is
// reused across the steps of one Infill.
type workspace struct {
	x, h, q, k, v, att, gate, up, ffn []float32
	pos                               []int // canvas position of each row
	seq                               []int // pass index of each row
	logits, final                     []float32
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// forward runs each pass's rows through the model, attending over the whole
// canvas of its sequence, and returns the logits of the wanted positions,
// pass by pass, as rows of a (len(wanted), vocab) matrix.
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
	ws.gate = grow(ws.gate, rows*c.FFN)
	ws.up = grow(ws.up, rows*c.FFN)
	ws.ffn = ws.ffn[:0]
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

	// Logits only for the wanted rows: the output matrix is the largest.
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
	ws.logits = grow(ws.logits, want*c.Vocab)
	kernel.MatMul(m.pool, ws.logits, ws.final, want, m.Output)
	return ws.logits, nil
}

// layer runs block l over the rows in ws.x (rows, dim), in place.
func (m *Model) layer(ws *workspace, l int, passes []pass, rows int) {
	c := m.Config
	L := &m.Layers[l]
	qDim, kvDim := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim

	for r := 0; r < rows; r++ {
		kernel.RMSNorm(ws.h[r*c.Dim:(r+1)*c.Dim], ws.x[r*c.Dim:(r+1)*c.Dim], L.AttnNorm, c.Eps)
	}
	kernel.MatMul(m.pool, ws.q, ws.h, rows, L.Q) // (rows, qDim)
	kernel.MatMul(m.pool, ws.k, ws.h, rows, L.K) // (rows, kvDim)
	kernel.MatMul(m.pool, ws.v, ws.h, rows, L.V) // (rows, kvDim)
	for r := 0; r < rows; r++ {
		q, k, v := ws.q[r*qDim:(r+1)*qDim], ws.k[r*kvDim:(r+1)*kvDim], ws.v[r*kvDim:(r+1)*kvDim]
		if L.QBias != nil {
			kernel.Add(q, L.QBias)
			kernel.Add(k, L.KBias)
			kernel.Add(v, L.VBias)
		}
		pos := ws.pos[r]
		m.rope.Apply(q, c.Heads, pos)
		m.rope.Apply(k, c.KVHeads, pos)
		seq := passes[ws.seq[r]].seq
		copy(seq.k[l][pos*kvDim:(pos+1)*kvDim], k)
		copy(seq.v[l][pos*kvDim:(pos+1)*kvDim], v)
	}

	m.attention(ws, l, passes, rows)
	kernel.MatMul(m.pool, ws.h, ws.att, rows, L.Out) // (rows, dim)
	kernel.Add(ws.x[:rows*c.Dim], ws.h[:rows*c.Dim])

	for r := 0; r < rows; r++ {
		kernel.RMSNorm(ws.h[r*c.Dim:(r+1)*c.Dim], ws.x[r*c.Dim:(r+1)*c.Dim], L.FFNNorm, c.Eps)
	}
	kernel.MatMul(m.pool, ws.gate, ws.h, rows, L.Gate) // (rows, ffn)
	kernel.MatMul(m.pool, ws.up, ws.h, rows, L.Up)     // (rows, ffn)
	kernel.SwiGLU(ws.gate[:rows*c.FFN], ws.gate[:rows*c.FFN], ws.up[:rows*c.FFN])
	kernel.MatMul(m.pool, ws.h, ws.gate, rows, L.Down) // (rows, dim)
	kernel.Add(ws.x[:rows*c.Dim], ws.h[:rows*c.Dim])
}

// attention computes, for every row and head, softmax(q·Kᵀ/√d)·V over all
// positions of the row's canvas (bidirectional: no mask), with a one-pass
// (online) softmax so it needs no score buffer. Grouped-query attention:
// head h reads kv head h / (Heads/KVHeads).
func (m *Model) attention(ws *workspace, l int, passes []pass, rows int) {
	c := m.Config
	hd := c.HeadDim
	qDim, kvDim := c.Heads*hd, c.KVHeads*hd
	group := c.Heads / c.KVHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	m.pool.Run(rows*c.Heads, func(lo, hi int) {
		for item := lo; item < hi; item++ {
			r, h := item/c.Heads, item%c.Heads
			seq := passes[ws.seq[r]].seq
			q := ws.q[r*qDim+h*hd : r*qDim+(h+1)*hd]
			out := ws.att[r*qDim+h*hd : r*qDim+(h+1)*hd]
			clear(out)
			kv := (h / group) * hd
			keys, vals := seq.k[l], seq.v[l]
			maxScore := float32(math.Inf(-1))
			var sum float32
			for j := 0; j < len(seq.tokens); j++ {
				s := kernel.Dot(q, keys[j*kvDim+kv:j*kvDim+kv+hd]) * scale
				if s > maxScore {
					f := float32(math.Exp(float64(maxScore - s)))
					sum *= f
					kernel.Scale(out, f)
					maxScore = s
				}
				w := float32(math.Exp(float64(s - maxScore)))
				sum += w
				kernel.Axpy(w, vals[j*kvDim+kv:j*kvDim+kv+hd], out)
			}
			kernel.Scale(out, 1/sum)
		}
	})
}

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
	seq := newSequence(m.Config, append([]int32(nil), tokens...))
	want := make([]int, len(tokens))
	for i := range want {
		want[i] = i
	}
	return m.forward(ctx, &workspace{}, []pass{{seq: seq, lo: 0, hi: len(tokens), want: want}})
}
