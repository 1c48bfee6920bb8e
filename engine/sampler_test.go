package engine

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dfill/dfill/engine/gguf"
)

// TestRowStatsChunked checks the online softmax statistics, folded over
// vocabulary chunks of any size, against a direct float64 computation.
// Tolerance: 1e-5 relative: the exponentials are kernel.ExpStats's float32
// ones (about 2 ulp each), summed in float32 lanes within a chunk.
func TestRowStatsChunked(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const vocab, mask = 1000, 17
	row := make([]float32, vocab)
	for i := range row {
		row[i] = float32(rng.NormFloat64() * 4)
	}
	row[mask] = 100 // the mask token must be ignored even when largest

	// Direct: softmax over every token but mask.
	best, second := -1, -1
	for i, v := range row {
		if i == mask {
			continue
		}
		if best < 0 || v > row[best] {
			best, second = i, best
		} else if second < 0 || v > row[second] {
			second = i
		}
	}
	var sum, plogp float64
	for i, v := range row {
		if i != mask {
			sum += math.Exp(float64(v - row[best]))
		}
	}
	for i, v := range row {
		if i != mask {
			p := math.Exp(float64(v-row[best])) / sum
			plogp += p * math.Log(p)
		}
	}
	wantConf := 1 / sum
	wantMargin := wantConf - math.Exp(float64(row[second]-row[best]))/sum

	for _, chunk := range []int{1, 7, 64, 333, vocab} {
		var s rowStats
		s.reset()
		for lo := 0; lo < vocab; lo += chunk {
			hi := min(lo+chunk, vocab)
			s.add(row[lo:hi], lo, mask)
		}
		if s.best != best || s.second != second {
			t.Errorf("chunk %d: best %d second %d, want %d %d", chunk, s.best, s.second, best, second)
		}
		for _, c := range []struct {
			name      string
			got, want float64
		}{
			{"confidence", s.confidence(), wantConf},
			{"margin", s.margin(), wantMargin},
			{"-entropy", s.negEntropy(), plogp},
		} {
			if math.Abs(c.got-c.want) > 1e-5*math.Max(1, math.Abs(c.want)) {
				t.Errorf("chunk %d: %s %.12g, want %.12g", chunk, c.name, c.got, c.want)
			}
		}
	}
}

// TestEndRunStart checks where a run of end tokens reaching the end of the
// span may begin: committed end tokens and candidates whose argmax is an
// end token count, a masked position that is not a candidate or an
// argmax that is not an end token stops it.
func TestEndRunStart(t *testing.T) {
	m := loadRandom(t, testSpec(ArchLLaDA, gguf.TypeF32), 1)
	eos := m.Tokenizer.EOS()
	const word = 65 // "A": not an end token
	tests := []struct {
		name   string
		span   []int32 // -1: masked
		cand   []int   // positions scored this step
		argmax []int32 // their argmax
		want   int
	}{
		{name: "all predicted end", span: []int32{-1, -1, -1}, cand: []int{0, 1, 2}, argmax: []int32{eos, eos, eos}, want: 0},
		{name: "word then ends", span: []int32{-1, -1, -1}, cand: []int{0, 1, 2}, argmax: []int32{word, eos, eos}, want: 1},
		{name: "end before a word", span: []int32{-1, -1, -1}, cand: []int{0, 1, 2}, argmax: []int32{eos, word, eos}, want: 2},
		{name: "last not an end", span: []int32{-1, -1, -1}, cand: []int{0, 1, 2}, argmax: []int32{eos, eos, word}, want: 3},
		{name: "committed ends count", span: []int32{-1, eos, eos}, cand: []int{0}, argmax: []int32{eos}, want: 0},
		{name: "masked outside the block stops it", span: []int32{-1, -1, -1}, cand: []int{0}, argmax: []int32{eos}, want: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRun(m, 0, []int32{1, 2}, nil, len(tt.span), Options{Lengths: []int{len(tt.span)}})
			for i, tok := range tt.span {
				if tok >= 0 {
					r.span()[i], r.masked[i] = tok, false
				}
			}
			r.stats = make([]rowStats, len(tt.cand))
			for k := range tt.cand {
				r.stats[k] = rowStats{best: int(tt.argmax[k])}
			}
			if got := r.endRunStart(tt.cand); got != tt.want {
				t.Errorf("endRunStart = %d, want %d", got, tt.want)
			}
		})
	}
}
