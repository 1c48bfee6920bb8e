package engine

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestRowStatsChunked checks the online softmax statistics, folded over
// vocabulary chunks of any size, against a direct float64 computation.
// Tolerance: 1e-9 relative (float64 sums in another order).
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
			if math.Abs(c.got-c.want) > 1e-9*math.Max(1, math.Abs(c.want)) {
				t.Errorf("chunk %d: %s %.12g, want %.12g", chunk, c.name, c.got, c.want)
			}
		}
	}
}
