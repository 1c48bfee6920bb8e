package bench

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math"
	"os"

	"github.com/dfill/dfill/cmd/dfill/internal/cli"
	"github.com/dfill/dfill/completion"
)

// calibrateFlags are the flags of `dfill model calibrate`.
type calibrateFlags struct {
	shared    cli.Shared
	tasks     string
	out       string
	limit     int
	kind      string
	maxTokens int
	minShown  int
}

// CalibrateCommand returns `dfill model calibrate`: it completes a task
// file with a model, fits the score of its candidates (completion.Fit) to
// whether a user would keep them, chooses the model's threshold
// (completion.ChooseThreshold), and writes the model with that calibration
// (m.SaveCalibrated).
func CalibrateCommand(m Models) *cli.Command {
	f := &calibrateFlags{}
	return &cli.Command{
		Name:    "calibrate",
		Summary: "fit a model's answer score on an infill task file (--tasks) and write the model with it (--out)",
		Shared:  &f.shared,
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&f.tasks, "tasks", "", "task file to fit on (formats of shared/benchmarks/README.md); not the one you test on")
			fs.StringVar(&f.out, "out", "", "GGUF `path` to write: the model (--model, or the embedded one) with its calibration")
			fs.IntVar(&f.limit, "limit", 0, "run at most this many tasks of each kind (0: all)")
			fs.StringVar(&f.kind, "kind", "", "run only tasks of this kind")
			fs.IntVar(&f.maxTokens, "max-tokens", 32, "longest span to fill, in tokens")
			fs.IntVar(&f.minShown, "min-shown", 0, "fewest answers a threshold must show (0: 2% of the tasks, at least 10)")
		},
		Run: func(ctx context.Context, _ []string) error { return f.run(ctx, m) },
	}
}

func (f *calibrateFlags) run(ctx context.Context, m Models) error {
	if f.tasks == "" || f.out == "" {
		return cli.Usagef("--tasks and --out are required")
	}
	tasks, err := readTasks(f.tasks)
	if err != nil {
		return err
	}
	if tasks = selectTasks(tasks, f.kind, f.limit); len(tasks) == 0 {
		return fmt.Errorf("%s: no tasks to run", f.tasks)
	}
	log, err := f.shared.Logger()
	if err != nil {
		return err
	}
	defer log.Sync()
	gen, release, err := m.Generator(ctx, &f.shared, false, log)
	if err != nil {
		return err
	}
	defer release()
	s := newInfillScorer(gen, completion.Options{MaxTokens: f.maxTokens, Steps: f.shared.Steps, Algorithm: f.shared.Algorithm}, 0, log)
	byKind, err := s.run(ctx, tasks, func(i int) { fmt.Fprintf(os.Stderr, "\r%d/%d tasks", i, len(tasks)) })
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return err
	}
	var all []infillScore
	for _, ss := range byKind {
		all = append(all, ss...)
	}
	minShown := f.minShown
	if minShown <= 0 {
		minShown = max(10, int(math.Ceil(0.02*float64(len(tasks)))))
	}
	cal, reached, err := calibrate(all, minShown)
	if err != nil {
		return err
	}
	if err := m.SaveCalibrated(ctx, f.shared.Model, f.out, cal); err != nil {
		return err
	}
	printCalibration(gen.Name(), f.tasks, f.out, cal, reached, minShown, rescore(all, cal))
	return nil
}

// calibrate fits a Calibration to the samples of ss (every item of the
// invoked requests) and chooses its threshold on the answers of the
// automatic requests, at least minShown of them shown.
func calibrate(ss []infillScore, minShown int) (cal completion.Calibration, reached bool, err error) {
	var samples []completion.Sample
	for _, s := range ss {
		samples = append(samples, s.Samples...)
	}
	if cal, err = completion.Fit(samples); err != nil {
		return cal, false, err
	}
	var answers []completion.Scored
	for _, s := range rescore(ss, cal) {
		if s.Item {
			answers = append(answers, completion.Scored{Score: s.Score, Kept: kept(s.Similarity)})
		}
	}
	cal.Threshold, reached = completion.ChooseThreshold(answers, minShown)
	return cal, reached, cal.Check()
}

// rescore returns ss with each answer's score recomputed by cal, and Shown
// by its threshold.
func rescore(ss []infillScore, cal completion.Calibration) []infillScore {
	out := make([]infillScore, len(ss))
	for i, s := range ss {
		if s.Item {
			s.Score = cal.Score(s.Features)
			s.Shown = s.Score >= cal.Threshold
		}
		out[i] = s
	}
	return out
}

func printCalibration(model, tasks, out string, cal completion.Calibration, reached bool, minShown int, ss []infillScore) {
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintf(w, "model %s, fitted on %s, written to %s\n", model, tasks, out)
	for i, name := range append(completion.FeatureNames, "bias") {
		fmt.Fprintf(w, "  %-10s %8.3f\n", name, cal.Weights[i])
	}
	if reached {
		fmt.Fprintf(w, "threshold %.4f: the most tasks answered with at least %.0f%% of the answers kept\n", cal.Threshold, 100*completion.KeptPrecision)
	} else {
		fmt.Fprintf(w, "threshold %.4f: no threshold showing at least %d answers keeps %.0f%% of them; this one keeps the most per answer shown\n",
			cal.Threshold, minShown, 100*completion.KeptPrecision)
	}
	fmt.Fprintf(w, "\nprecision-coverage on the fitting tasks (kept: edit similarity >= %.1f; * the threshold)\n", keepSimilarity)
	printCurve(w, precisionCoverage(ss, cal.Threshold))
}
