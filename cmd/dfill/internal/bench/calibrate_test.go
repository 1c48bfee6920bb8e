package bench

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dfill/dfill/completion"
)

// TestPrecisionCoverage checks the curve on answers whose scores and
// similarities are known: each row counts the answers scoring at least its
// threshold, and the chosen threshold is marked.
func TestPrecisionCoverage(t *testing.T) {
	var ss []infillScore
	for i, sim := range []float64{1, 0.9, 0.2, 0.85, 0.1, 0.3, 0.5, 0, 0.95, 0.4} {
		ss = append(ss, infillScore{Item: true, Score: 1 - float64(i)/10, Similarity: sim, Exact: sim == 1})
	}
	ss = append(ss, infillScore{}) // a task with no item
	curve := precisionCoverage(ss, 0.65)
	byThreshold := map[float64]curvePoint{}
	for _, p := range curve {
		byThreshold[math.Round(p.Threshold*100)/100] = p
	}
	// Threshold 0.7 (70% of the items): the 4 best scores of 1, 0.9, 0.8, 0.7.
	want := map[float64]curvePoint{
		1:    {Answered: 1.0 / 11, Exact: 1, EditSim: 1, Kept: 1},
		0.7:  {Answered: 4.0 / 11, Exact: 0.25, EditSim: (1 + 0.9 + 0.2 + 0.85) / 4, Kept: 0.75},
		0.65: {Answered: 4.0 / 11, Exact: 0.25, EditSim: (1 + 0.9 + 0.2 + 0.85) / 4, Kept: 0.75, Chosen: true},
		0.1:  {Answered: 10.0 / 11, Exact: 0.1, EditSim: 5.2 / 10, Kept: 0.4},
	}
	for th, w := range want {
		p, ok := byThreshold[th]
		if !ok {
			t.Errorf("no row at threshold %v in %+v", th, curve)
			continue
		}
		if math.Abs(p.Answered-w.Answered) > 1e-9 || math.Abs(p.Exact-w.Exact) > 1e-9 || math.Abs(p.EditSim-w.EditSim) > 1e-9 ||
			math.Abs(p.Kept-w.Kept) > 1e-9 || p.Chosen != w.Chosen {
			t.Errorf("threshold %v: %+v, want %+v", th, p, w)
		}
	}
	for i := 1; i < len(curve); i++ {
		if curve[i].Threshold <= curve[i-1].Threshold { // coverage decreasing
			t.Errorf("thresholds not increasing: %+v", curve)
		}
	}
}

// TestCalibrate fits answers whose chance of being kept grows with their
// mean token probability: the fitted score must rank the kept ones first,
// and the threshold shows the most answers of which half are kept.
func TestCalibrate(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var ss []infillScore
	for range 2000 {
		p := rng.Float64()
		f := completion.Features{MeanProb: p, MinProb: p, Steps: 4, Lines: 1, Bytes: 10}
		keep := rng.Float64() < p*p // kept more often the surer the model
		sim := 0.3
		if keep {
			sim = 0.9
		}
		ss = append(ss, infillScore{Item: true, Features: f, Similarity: sim, Samples: []completion.Sample{{Features: f, Kept: keep}}})
	}
	cal, reached, err := calibrate(ss, 20)
	if err != nil || !reached {
		t.Fatalf("calibrate: %+v, reached %v, %v", cal, reached, err)
	}
	if cal.Weights[0]+cal.Weights[1] <= 0 {
		t.Errorf("the probabilities' weights %v do not raise the score", cal.Weights[:2])
	}
	// P(kept | p) = p², so half of the answers with p ≥ t are kept when
	// (1 - t³)/(3(1 - t)) = 1/2: t ≈ 0.37. The threshold is a score; the
	// answers it shows start near that p.
	lowest := 1.0
	for _, s := range rescore(ss, cal) {
		if s.Shown {
			lowest = min(lowest, s.Features.MeanProb)
		}
	}
	if lowest < 0.25 || lowest > 0.5 {
		t.Errorf("the threshold %.3f shows answers from p = %.3f, want about 0.37", cal.Threshold, lowest)
	}
}
