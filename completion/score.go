package completion

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Signals are what a Generator knows of one candidate's quality, read
// from the final canvas. A Generator that knows nothing of them (a remote
// backend) leaves them zero, and the candidate's Confidence stands in.
type Signals struct {
	// Known says the Generator filled in the fields below.
	Known bool
	// MeanProb and MinProb are the mean and the least of the
	// probabilities the candidate's tokens had when they were committed
	// (its content: not the end or pad tokens after it).
	MeanProb, MinProb float64
	// Late is when the content tokens were committed, on average, as a
	// share of the steps taken: 0 when all were at the first step, 1 when
	// all were at the last.
	Late float64
}

// Features are what a candidate's score is computed from: its Signals and
// what post-processing and validation did to it.
type Features struct {
	MeanProb, MinProb, Late float64
	Steps                   int  // denoising steps taken
	Trimmed                 bool // validation dropped lines of it
	Repeat                  bool // post-processing cut a repetition loop
	Lines                   int  // lines of the item
	Bytes                   int  // bytes of the item
}

// FeatureNames names the entries of Features.Vector, in order; a
// Calibration's weights follow it (then the bias).
var FeatureNames = []string{"mean_prob", "min_prob", "late", "log_steps", "trimmed", "repeat", "log_lines", "log_bytes"}

// Vector returns f as the numbers a Calibration weighs (FeatureNames).
func (f Features) Vector() []float64 {
	return []float64{
		f.MeanProb, f.MinProb, f.Late,
		math.Log1p(float64(f.Steps)),
		b2f(f.Trimmed), b2f(f.Repeat),
		math.Log1p(float64(max(f.Lines-1, 0))),
		math.Log1p(float64(f.Bytes)),
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// features returns the Features of an item made from cand.
func features(cand Candidate, insert string, trimmed, repeat bool) Features {
	sig := cand.Signals
	if !sig.Known {
		sig = Signals{MeanProb: cand.Confidence, MinProb: cand.Confidence}
	}
	lines := 1
	for i := 0; i < len(insert); i++ {
		if insert[i] == '\n' {
			lines++
		}
	}
	return Features{MeanProb: sig.MeanProb, MinProb: sig.MinProb, Late: sig.Late, Steps: cand.Steps,
		Trimmed: trimmed, Repeat: repeat, Lines: lines, Bytes: len(insert)}
}

// Calibration turns a candidate's Features into its score, the estimated
// probability that the user keeps it: a logistic regression that Fit
// learns on tasks with known answers, stored with the model it was fitted
// for. Threshold is that model's default least score for an automatic
// request. The zero Calibration scores a candidate by its mean token
// probability and shows every candidate.
type Calibration struct {
	// Weights holds one weight per entry of FeatureNames, then the bias.
	Weights   []float64
	Threshold float64
}

// Check reports whether c can score Features: no weights, or one per
// feature and a bias.
func (c Calibration) Check() error {
	if len(c.Weights) != 0 && len(c.Weights) != len(FeatureNames)+1 {
		return fmt.Errorf("completion: a calibration has %d weights, want %d (%v and a bias)", len(c.Weights), len(FeatureNames)+1, FeatureNames)
	}
	for _, w := range c.Weights {
		if math.IsNaN(w) || math.IsInf(w, 0) {
			return fmt.Errorf("completion: a calibration weight is %v", w)
		}
	}
	if !(c.Threshold >= 0 && c.Threshold <= 1) {
		return fmt.Errorf("completion: a calibration threshold is %v, want 0 to 1", c.Threshold)
	}
	return nil
}

// Score returns f's score, 0 to 1.
func (c Calibration) Score(f Features) float64 {
	if len(c.Weights) != len(FeatureNames)+1 {
		return min(max(f.MeanProb, 0), 1)
	}
	return sigmoid(dot(c.Weights, f.Vector()))
}

// dot returns w·x + w[len(x)], the bias.
func dot(w, x []float64) float64 {
	z := w[len(x)]
	for i, v := range x {
		z += w[i] * v
	}
	return z
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// Sample is one candidate with a known outcome, for Fit.
type Sample struct {
	Features Features
	Kept     bool
}

// fitRidge is the L2 penalty on the weights (not the bias) that Fit uses:
// it keeps the fit finite when a feature separates the samples.
const fitRidge = 1.0

// Fit learns the logistic regression of Kept on the samples' features by
// Newton's method with an L2 penalty, and returns it with threshold 0 (see
// ChooseThreshold). It needs samples of both outcomes.
func Fit(samples []Sample) (Calibration, error) {
	var pos int
	for _, s := range samples {
		if s.Kept {
			pos++
		}
	}
	if pos == 0 || pos == len(samples) {
		return Calibration{}, fmt.Errorf("completion: fit: %d of %d samples kept; both outcomes are needed", pos, len(samples))
	}
	k := len(FeatureNames) + 1
	xs := make([][]float64, len(samples))
	for i, s := range samples {
		xs[i] = s.Features.Vector()
	}
	w := make([]float64, k)
	w[k-1] = math.Log(float64(pos) / float64(len(samples)-pos)) // the base rate
	for range 50 {
		grad := make([]float64, k)
		hess := make([][]float64, k)
		for i := range hess {
			hess[i] = make([]float64, k)
		}
		for i, x := range xs {
			p := sigmoid(dot(w, x))
			r := p - b2f(samples[i].Kept)
			h := p * (1 - p)
			for a := range k {
				xa := featureAt(x, a)
				grad[a] += r * xa
				for b := range k {
					hess[a][b] += h * xa * featureAt(x, b)
				}
			}
		}
		for a := range k - 1 {
			grad[a] += fitRidge * w[a]
			hess[a][a] += fitRidge
		}
		step, ok := solve(hess, grad)
		if !ok {
			return Calibration{}, fmt.Errorf("completion: fit: singular system")
		}
		var norm float64
		for a := range k {
			w[a] -= step[a]
			norm = max(norm, math.Abs(step[a]))
		}
		if norm < 1e-9 {
			break
		}
	}
	c := Calibration{Weights: w}
	return c, c.Check()
}

// featureAt returns x[a], or 1 for the bias's index.
func featureAt(x []float64, a int) float64 {
	if a == len(x) {
		return 1
	}
	return x[a]
}

// solve solves a·x = b by Gaussian elimination with partial pivoting; a
// and b are overwritten.
func solve(a [][]float64, b []float64) ([]float64, bool) {
	n := len(b)
	for c := range n {
		p := c
		for r := c + 1; r < n; r++ {
			if math.Abs(a[r][c]) > math.Abs(a[p][c]) {
				p = r
			}
		}
		if math.Abs(a[p][c]) < 1e-12 {
			return nil, false
		}
		a[c], a[p] = a[p], a[c]
		b[c], b[p] = b[p], b[c]
		for r := c + 1; r < n; r++ {
			f := a[r][c] / a[c][c]
			for k := c; k < n; k++ {
				a[r][k] -= f * a[c][k]
			}
			b[r] -= f * b[c]
		}
	}
	x := make([]float64, n)
	for r := n - 1; r >= 0; r-- {
		s := b[r]
		for k := r + 1; k < n; k++ {
			s -= a[r][k] * x[k]
		}
		x[r] = s / a[r][r]
	}
	return x, true
}

// Scored is one answered task for ChooseThreshold and Curve: the score of
// the answer shown and whether the user would keep it.
type Scored struct {
	Score float64
	Kept  bool
}

// KeptPrecision is the share of shown answers a user should keep at the
// default threshold: ChooseThreshold takes the lowest threshold that
// reaches it.
const KeptPrecision = 0.5

// ChooseThreshold returns the least score that answers as many tasks as
// possible while at least KeptPrecision of the answers shown would be kept,
// counting only thresholds that show at least minShown answers; reached
// says such a threshold exists. When none does, it returns the threshold
// that keeps the most answers per answer shown (ties to the lower one).
func ChooseThreshold(answers []Scored, minShown int) (threshold float64, reached bool) {
	sorted := slices.SortedFunc(slices.Values(answers), func(a, b Scored) int { return cmp.Compare(b.Score, a.Score) })
	best, bestPrec := -1, -1.0
	kept := 0
	for i, a := range sorted {
		if a.Kept {
			kept++
		}
		if i+1 < len(sorted) && sorted[i+1].Score == a.Score {
			continue // a threshold shows every answer of its score
		}
		shown := i + 1
		if shown < max(minShown, 1) {
			continue
		}
		prec := float64(kept) / float64(shown)
		if prec >= KeptPrecision {
			threshold, reached = a.Score, true
		}
		if !reached && prec >= bestPrec {
			best, bestPrec = i, prec
		}
	}
	if reached || best < 0 {
		return threshold, reached
	}
	return sorted[best].Score, false
}
