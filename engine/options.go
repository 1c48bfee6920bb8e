package engine

import (
	"fmt"
	"strings"
)

// Score is how confident the model is in the token it predicts at a masked
// position; the most confident positions are committed first.
type Score int

// The confidence scores.
const (
	ScoreConfidence Score = iota // probability of the chosen token
	ScoreMargin                  // top-1 minus top-2 probability
	ScoreEntropy                 // negative entropy: lowest entropy first
)

var scoreNames = []string{"confidence", "margin", "entropy"}

func (s Score) String() string {
	if int(s) < len(scoreNames) {
		return scoreNames[s]
	}
	return fmt.Sprintf("score(%d)", int(s))
}

// ParseScore returns the Score named s.
func ParseScore(s string) (Score, error) {
	for i, n := range scoreNames {
		if strings.EqualFold(n, s) {
			return Score(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown confidence score %q (want %s)", ErrBadOptions, s, strings.Join(scoreNames, ", "))
}

// Schedule decides how many masked positions each step commits.
type Schedule int

// The schedules.
const (
	// ScheduleTimestep is Dream's: t falls from 1 to Eps over the steps and
	// step s commits floor(masked·(1 − t_{s+1}/t_s)) positions (at least
	// one, so no forward is wasted), and all that remain at the last step.
	ScheduleTimestep Schedule = iota
	// ScheduleBlocks is LLaDA's: the masked positions of a block are
	// committed evenly over the block's steps.
	ScheduleBlocks
	// ScheduleThreshold is Fast-dLLM's: every masked position whose chosen
	// token has probability ≥ Threshold, and at least one, per step.
	ScheduleThreshold
	// ScheduleLeftToRight commits the leftmost masked position each step,
	// as an autoregressive model would (a baseline for benchmarks).
	ScheduleLeftToRight
)

var scheduleNames = []string{"timestep", "blocks", "threshold", "ar"}

func (s Schedule) String() string {
	if int(s) < len(scheduleNames) {
		return scheduleNames[s]
	}
	return fmt.Sprintf("schedule(%d)", int(s))
}

// ParseSchedule returns the Schedule named s.
func ParseSchedule(s string) (Schedule, error) {
	for i, n := range scheduleNames {
		if strings.EqualFold(n, s) {
			return Schedule(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown schedule %q (want %s)", ErrBadOptions, s, strings.Join(scheduleNames, ", "))
}

// Options control one Infill.
type Options struct {
	// Lengths are the span lengths, in tokens, denoised together in one
	// batch; each gives one Candidate. Empty means {32}.
	Lengths []int
	// Contexts, when not empty, has one entry per span of Lengths: the
	// most tokens its canvas (prefix, span and suffix) may take, where that
	// is fewer than the model's context (0: the model's). A short span,
	// one line, depends mostly on the lines around it, and its passes cost
	// in proportion to its canvas.
	Contexts []int
	// Steps is the number of denoising steps per span (0: one per token).
	// With BlockSize set, the steps are split evenly over the blocks.
	Steps     int
	Schedule  Schedule
	Score     Score
	BlockSize int     // commit the span block by block, left first (0: one block)
	Threshold float64 // for ScheduleThreshold (0: 0.9)
	Eps       float64 // final t of ScheduleTimestep (0: 1e-3)

	// Temperature 0 is greedy and deterministic; above 0 tokens are sampled
	// from the top-K / top-P of the tempered distribution with a PCG seeded
	// by Seed.
	Temperature float64
	TopK        int
	TopP        float64
	Seed        uint64

	// Cache reuses the prefix's and suffix's keys and values across steps
	// (Fast-dLLM's dual cache): a full forward at the first step, at each
	// block's first step, and every Refresh steps (0: never otherwise);
	// other steps run only the active block's rows. Refresh 1 is exact.
	Cache   bool
	Refresh int

	// EndAnywhere lets end tokens (EOS, PAD) be committed at any position.
	// By default a position may take one only as part of the run of end
	// tokens that reaches the end of the span, the shape of the padding a
	// model is trained to fill the unused tail of a span with.
	EndAnywhere bool
}

func (o Options) withDefaults() (Options, error) {
	if len(o.Lengths) == 0 {
		o.Lengths = []int{32}
	}
	for _, n := range o.Lengths {
		if n < 1 || n > 4096 {
			return o, fmt.Errorf("%w: span length %d (want 1..4096)", ErrBadOptions, n)
		}
	}
	if len(o.Contexts) > 0 && len(o.Contexts) != len(o.Lengths) {
		return o, fmt.Errorf("%w: %d contexts for %d spans", ErrBadOptions, len(o.Contexts), len(o.Lengths))
	}
	for _, c := range o.Contexts {
		if c < 0 {
			return o, fmt.Errorf("%w: negative context %d", ErrBadOptions, c)
		}
	}
	if o.Steps < 0 || o.BlockSize < 0 || o.Refresh < 0 || o.TopK < 0 {
		return o, fmt.Errorf("%w: negative steps, block size, refresh or top-k", ErrBadOptions)
	}
	if o.Threshold == 0 {
		o.Threshold = 0.9
	}
	if o.Eps == 0 {
		o.Eps = 1e-3
	}
	if o.Threshold < 0 || o.Threshold > 1 || o.Eps < 0 || o.Eps >= 1 || o.TopP < 0 || o.TopP > 1 || o.Temperature < 0 {
		return o, fmt.Errorf("%w: threshold %g, eps %g, top-p %g or temperature %g out of range", ErrBadOptions, o.Threshold, o.Eps, o.TopP, o.Temperature)
	}
	if o.Schedule < ScheduleTimestep || o.Schedule > ScheduleLeftToRight || o.Score < ScoreConfidence || o.Score > ScoreEntropy {
		return o, fmt.Errorf("%w: unknown schedule %d or score %d", ErrBadOptions, o.Schedule, o.Score)
	}
	return o, nil
}
