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
}

// fill draws batch sequences into b. Each is a window of seq tokens at a
// random offset and a masking ratio t ~ U(eps, 1]. With probability
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
		if rng.Float64() < s.spanFrac {
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
		} else {
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
