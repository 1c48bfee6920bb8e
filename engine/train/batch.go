package train

import (
	"math/rand/v2"
)

// Batch is one training batch: Batch sequences of Seq tokens, row-major.
type Batch struct {
	Batch, Seq int
	// Tokens is the model's input: the text with masked positions replaced
	// by the mask token.
	Tokens []int32
	// Targets is the text the model should recover.
	Targets []int32
	// Weights is each position's weight in the loss; 0 for positions that
	// are not masked. Masked positions weigh 1/(t·eligible), where t is the
	// sequence's masking ratio and eligible the number of positions in the
	// batch that could have been masked.
	Weights []float32
}

func (b *Batch) resize(batch, seq int) {
	b.Batch, b.Seq = batch, seq
	b.Tokens = grow(b.Tokens, batch*seq)
	b.Targets = grow(b.Targets, batch*seq)
	b.Weights = grow(b.Weights, batch*seq)
}

// Masked returns the number of positions in the loss.
func (b *Batch) Masked() int {
	n := 0
	for _, w := range b.Weights {
		if w > 0 {
			n++
		}
	}
	return n
}

// sampler cuts masked-diffusion training sequences from a token stream.
type sampler struct {
	tokens   []int32 // documents, each followed by EOS
	seq      int
	mask     int32
	eos      int32
	spanFrac float64 // share of sequences that mask one span
	maxSpan  int     // longest span, EOS padding included
	eps      float64 // smallest masking ratio
	// lineFrac is the share of sequences that are line infill examples
	// (fillLine); newline[id] says whether token id holds a line break.
	lineFrac float64
	newline  []bool
}

// lineSpans are the span lengths of line infill examples, drawn evenly:
// the completer's single-line span, 32, twice as often as 16.
var lineSpans = []int{32, 32, 16}

// fill draws batch sequences into b. Each is a window of seq tokens at a
// random offset and a masking ratio t ~ U(eps, 1]. With probability
// lineFrac it is a line infill example (fillLine); with probability
// spanFrac it is an infill example: a span of n positions at a random
// place holds the next m ≤ n tokens of the text and then n−m EOS (the text
// after them resumes at the span's end, so the window stays seq long), and
// each span position is masked with probability t. Otherwise every
// position is masked with probability t. Masked positions weigh
// 1/(t·eligible) (LLaDA's per-token normalisation), eligible being the
// number of positions in the batch that could have been masked.
func (s *sampler) fill(b *Batch, batch int, rng *rand.Rand) {
	b.resize(batch, s.seq)
	clear(b.Weights)
	eligible := 0
	for i := 0; i < batch; i++ {
		tgt := b.Targets[i*s.seq : (i+1)*s.seq]
		in := b.Tokens[i*s.seq : (i+1)*s.seq]
		w := b.Weights[i*s.seq : (i+1)*s.seq]
		off := 0
		if len(s.tokens) > s.seq {
			off = rng.IntN(len(s.tokens) - s.seq + 1)
		}
		t := s.eps + (1-s.eps)*(1-rng.Float64()) // (eps, 1]
		lo, hi := 0, s.seq                       // the positions that may be masked
		u := rng.Float64()
		line := false
		if u < s.lineFrac {
			if lo, hi, line = s.fillLine(tgt, s.tokens[off:], rng); !line {
				lo, hi, u = 0, s.seq, 1 // no line to take here: a plain sequence
			}
		}
		switch {
		case line:
		case u-s.lineFrac < s.spanFrac:
			n := 1 + rng.IntN(min(s.maxSpan, s.seq))
			m := 1 + rng.IntN(n)
			lo = rng.IntN(s.seq - n + 1)
			hi = lo + n
			src := s.tokens[off:]
			copy(tgt[:lo+m], src)
			for j := lo + m; j < hi; j++ {
				tgt[j] = s.eos
			}
			copy(tgt[hi:], src[lo+m:])
		default:
			copy(tgt, s.tokens[off:])
		}
		copy(in, tgt)
		eligible += hi - lo
		for j := lo; j < hi; j++ {
			if rng.Float64() < t {
				in[j] = s.mask
				w[j] = float32(1 / t) // divided by eligible below
			}
		}
	}
	inv := float32(1 / float64(max(eligible, 1)))
	for j := range b.Weights {
		b.Weights[j] *= inv
	}
}

// fillLine writes a line infill example into tgt from the text src (at
// least len(tgt) tokens): a span of n positions (lineSpans) that starts
// where a line's text starts (after its indentation) or, one time in
// three, inside it, and holds the rest of that line, or of two or three
// lines, then EOS to the span's end; the text resumes after the span at the
// line break. This is what the completer asks of the model when the user
// stops typing: a line, in a span longer than it. It reports the span, or
// false when the window has no line that fits.
func (s *sampler) fillLine(tgt, src []int32, rng *rand.Rand) (lo, hi int, ok bool) {
	seq := len(tgt)
	n := lineSpans[rng.IntN(len(lineSpans))]
	if seq < 4*n || s.newline == nil {
		return 0, 0, false
	}
	lines := 1
	switch r := rng.Float64(); {
	case r < 0.1:
		lines = 3
	case r < 0.3:
		lines = 2
	}
	// Try a few random line starts in the middle half of the window, so
	// that both sides have context.
	for try := 0; try < 8; try++ {
		p := seq/4 + rng.IntN(seq/2)
		for p < 3*seq/4 && !(s.newline[src[p-1]] && !s.newline[src[p]]) {
			p++
		}
		if p >= 3*seq/4 {
			continue
		}
		q, k := p, 0 // q: the line break that ends the middle
		for q < len(src) && q-p <= n {
			if s.newline[src[q]] {
				if k++; k == lines {
					break
				}
			}
			q++
		}
		if q-p > n || q >= len(src) || q == p {
			continue
		}
		if rng.IntN(3) == 0 { // the cursor inside the first line's text
			e := p
			for !s.newline[src[e]] {
				e++
			}
			p += rng.IntN(min(e-p, 8))
		}
		m := q - p
		copy(tgt[:p], src)
		copy(tgt[p:p+m], src[p:q])
		for j := p + m; j < p+n; j++ {
			tgt[j] = s.eos
		}
		copy(tgt[p+n:], src[q:])
		return p, p + n, true
	}
	return 0, 0, false
}
