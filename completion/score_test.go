package completion

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"go.uber.org/zap/zaptest"
)

// TestFitRecoversWeights draws samples whose outcome follows a known
// logistic model of their features and checks that Fit finds its weights
// and that the scores it gives are the model's probabilities.
func TestFitRecoversWeights(t *testing.T) {
	want := []float64{3, 2, -1.5, -0.5, -1, -2, 0.3, -0.4, -1.2} // FeatureNames, then the bias
	rng := rand.New(rand.NewPCG(1, 2))
	var samples []Sample
	for range 20000 {
		mean := rng.Float64()
		f := Features{
			MeanProb: mean, MinProb: mean * rng.Float64(), Late: rng.Float64(),
			Steps: 1 + rng.IntN(10), Trimmed: rng.IntN(4) == 0, Repeat: rng.IntN(5) == 0,
			Lines: 1 + rng.IntN(5), Bytes: 1 + rng.IntN(200),
		}
		p := sigmoid(dot(want, f.Vector()))
		samples = append(samples, Sample{Features: f, Kept: rng.Float64() < p})
	}
	cal, err := Fit(samples)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range cal.Weights {
		if math.Abs(w-want[i]) > 0.35 {
			t.Errorf("weight %d (%s): %.3f, want %.3f ± 0.35", i, append(FeatureNames, "bias")[i], w, want[i])
		}
	}
	truth := Calibration{Weights: want}
	var worst float64
	for _, s := range samples[:500] {
		worst = max(worst, math.Abs(cal.Score(s.Features)-truth.Score(s.Features)))
	}
	if worst > 0.08 {
		t.Errorf("scores differ from the true probabilities by up to %.3f, want ≤ 0.08", worst)
	}
}

func TestFitNeedsBothOutcomes(t *testing.T) {
	if _, err := Fit([]Sample{{Kept: true}, {Kept: true}}); err == nil {
		t.Error("Fit of samples all kept: no error")
	}
}

func TestChooseThreshold(t *testing.T) {
	answers := func(scores []float64, kept string) []Scored {
		var out []Scored
		for i, s := range scores {
			out = append(out, Scored{Score: s, Kept: kept[i] == 'y'})
		}
		return out
	}
	for _, tt := range []struct {
		name     string
		answers  []Scored
		minShown int
		want     float64
		reached  bool
	}{
		// Precision from the top: 1, 1, .67, .75, .6, .5, .43.
		{"half kept at 0.4", answers([]float64{.9, .8, .7, .6, .5, .4, .3}, "yynynnn"), 1, .4, true},
		// At least 4 shown: the first 3 do not count; .25 at 0.6 beats .2.
		{"min shown", answers([]float64{.9, .8, .7, .6, .5}, "ynnnn"), 4, .6, false},
		// Precision 0, 0, .33, .25: never half; the best ratio is at 0.7.
		{"never half", answers([]float64{.9, .8, .7, .6}, "nnyn"), 1, .7, false},
		// A threshold shows every answer of its score.
		{"ties", answers([]float64{.9, .9, .5}, "ynn"), 1, .9, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, reached := ChooseThreshold(tt.answers, tt.minShown)
			if got != tt.want || reached != tt.reached {
				t.Errorf("ChooseThreshold = %v, %v; want %v, %v", got, reached, tt.want, tt.reached)
			}
		})
	}
}

func TestCalibrationCheck(t *testing.T) {
	for _, c := range []Calibration{
		{Weights: []float64{1, 2}},
		{Weights: make([]float64, len(FeatureNames)+1), Threshold: 2},
		{Weights: append(make([]float64, len(FeatureNames)), math.NaN())},
	} {
		if c.Check() == nil {
			t.Errorf("Check(%+v): no error", c)
		}
	}
	if got := (Calibration{}).Score(Features{MeanProb: 0.7}); got != 0.7 {
		t.Errorf("the zero calibration scores %v, want the mean probability 0.7", got)
	}
}

// calibratedGen is a fakeGen whose model carries a Calibration.
type calibratedGen struct {
	*fakeGen
	cal Calibration
}

func (g calibratedGen) Calibration() Calibration { return g.cal }

// TestMinScore checks that an automatic request shows its best item only
// when it scores at least MinScore (negative: the model's threshold), and
// that an invoked request shows the lower-scored ones too, best first.
func TestMinScore(t *testing.T) {
	text, off := at("package p\n\nfunc f() {\n\t|\n}\n")
	// Scored by the mean probability alone: sigmoid(10·(p - 0.5)).
	w := make([]float64, len(FeatureNames)+1)
	w[0], w[len(FeatureNames)] = 10, -5
	gen := calibratedGen{&fakeGen{cands: []Candidate{
		{Text: "x := 1", Signals: Signals{Known: true, MeanProb: 0.4, MinProb: 0.4}},
		{Text: "y := 2", Signals: Signals{Known: true, MeanProb: 0.55, MinProb: 0.1}},
	}}, Calibration{Weights: w, Threshold: 0.7}}
	for _, tt := range []struct {
		name     string
		minScore float64
		invoked  bool
		want     []string
	}{
		{"the model's threshold hides both", -1, false, nil},
		{"a lower minScore shows the best", 0.5, false, []string{"y := 2"}},
		{"zero shows the best", 0, false, []string{"y := 2"}},
		{"invoked shows both, best first", -1, true, []string{"y := 2", "x := 1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := New(gen, Options{MinScore: tt.minScore}, zaptest.NewLogger(t))
			res, err := c.Complete(context.Background(), Request{URI: "file:///a.go", LanguageID: "go", Text: text, Offset: off, Invoked: tt.invoked})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range res.Items {
				got = append(got, it.Insert)
				if want := sigmoid(10*it.Features.MeanProb - 5); math.Abs(it.Score-want) > 1e-9 {
					t.Errorf("%q scored %v, want %v", it.Insert, it.Score, want)
				}
			}
			if len(got) != len(tt.want) || len(got) > 0 && got[0] != tt.want[0] || len(got) > 1 && got[1] != tt.want[1] {
				t.Errorf("items %q, want %q", got, tt.want)
			}
		})
	}
}
