package bench

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dfill/dfill/cmd/dfill/internal/cli"
	"github.com/dfill/dfill/completion"
	"github.com/dfill/dfill/completion/syntax"
)

// infillTask is one fill-in-the-middle item: prefix + middle + suffix is
// the whole file, and middle is the reference answer.
type infillTask struct {
	ID, Lang, Kind         string
	Prefix, Middle, Suffix string
	SingleLine             bool // score only the first line of a completion
}

// readTasks reads a JSON-lines task file (gzipped when it ends in .gz) in
// either format of shared/benchmarks/README.md: {id, lang, kind, prefix,
// middle, suffix} rows, or HumanEval-Infilling rows {task_id, prompt,
// suffix, canonical_solution} (Python).
func readTasks(path string) ([]infillTask, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	var tasks []infillTask
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var row struct {
			ID, Lang, Kind, Prefix, Middle, Suffix string
			TaskID                                 string `json:"task_id"`
			Prompt                                 string
			Canonical                              string `json:"canonical_solution"`
		}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		t := infillTask{ID: row.ID, Lang: row.Lang, Kind: row.Kind, Prefix: row.Prefix, Middle: row.Middle, Suffix: row.Suffix}
		if row.TaskID != "" { // HumanEval-Infilling
			t = infillTask{ID: row.TaskID, Lang: "python", Kind: strings.SplitN(row.TaskID, "/", 2)[0],
				Prefix: row.Prompt, Middle: row.Canonical, Suffix: row.Suffix}
		}
		if t.ID == "" || t.Lang == "" {
			return nil, fmt.Errorf("%s:%d: a row needs id and lang (or task_id)", path, line)
		}
		t.SingleLine = t.Kind == "line" || t.Kind == "span" || strings.HasPrefix(t.Kind, "SingleLine")
		tasks = append(tasks, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tasks, nil
}

// infillScore is the score of one completion against its reference.
type infillScore struct {
	Exact      bool
	Similarity float64 // edit similarity, 0..1
	Valid      bool    // prefix + completion + suffix adds no syntax error
	// Clean: the completion, as returned, adds no syntax error to the
	// whole file as the pipeline saw it (prefix + suffix), the guarantee
	// the pipeline's windowed check gives.
	Clean bool
	// InError: the completion's own text lies in or beside an error node
	// of the whole file (syntax.Verdict.Inside), junk even on a line that
	// was already broken.
	InError  bool
	Latency  time.Duration
	Generate time.Duration
	Tokens   int

	// Item says the pipeline had an item for the automatic request, at any
	// score; Score and Features are the item's, and Shown says it scored
	// at least the threshold (the answer the user sees). Exact,
	// Similarity, Valid, Clean, InError and Tokens are the item's too.
	Item, Shown bool
	Score       float64
	Features    completion.Features
	// EmptySim is the similarity of no answer (1 for a blank middle).
	EmptySim float64
	// Exact1 and Exact3: the invoked request's first item, or one of its
	// up to three, is an exact match. Samples are its items with whether
	// a user would keep each (Keep), for a calibration.
	Exact1, Exact3 bool
	Samples        []completion.Sample
}

// keepSimilarity is the edit similarity from which a user would keep an
// answer (perhaps after a small edit): what the precision–coverage curve
// and the calibration count as kept.
const keepSimilarity = 0.8

// kept reports whether an answer of similarity sim would be kept.
func kept(sim float64) bool { return sim >= keepSimilarity }

// scoreText compares a prediction with the reference middle: exact match
// and edit similarity after trimming surrounding whitespace, on the first
// line only for single-line tasks.
func scoreText(pred, middle string, singleLine bool) (exact bool, similarity float64) {
	if singleLine {
		pred, _, _ = strings.Cut(pred, "\n")
		middle, _, _ = strings.Cut(middle, "\n")
	}
	pred, middle = strings.TrimSpace(pred), strings.TrimSpace(middle)
	return pred == middle, editSimilarity(pred, middle)
}

// editSimilarity is 1 − levenshtein(a, b) / max(len(a), len(b)), over runes.
func editSimilarity(a, b string) float64 {
	ra, rb := []rune(a), []rune(b)
	if len(ra) == 0 && len(rb) == 0 {
		return 1
	}
	prev, cur := make([]int, len(rb)+1), make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return 1 - float64(prev[len(rb)])/float64(max(len(ra), len(rb)))
}

// kindReport aggregates the scores of one kind of task.
type kindReport struct {
	Kind         string  `json:"kind"`
	Tasks        int     `json:"tasks"`
	Answered     int     `json:"answered"`
	ExactMatch   float64 `json:"exact_match"`
	EditSim      float64 `json:"edit_similarity"`
	SyntaxValid  float64 `json:"syntax_valid"`  // of the answered tasks (1 when none)
	NoNewErrors  float64 `json:"no_new_errors"` // of the answered tasks (1 when none)
	InErrorNode  float64 `json:"in_error_node"` // of the answered tasks (0 when none); the target is 0
	LatencyP50MS float64 `json:"latency_p50_ms"`
	LatencyP95MS float64 `json:"latency_p95_ms"`
	TokensPerS   float64 `json:"tokens_per_s"`
	// ExactAt1 and ExactAt3 are the exact matches of an invoked request
	// (up to three items ranked by score, shown whatever their score):
	// its first item, and any of them.
	ExactAt1 float64 `json:"exact_at_1"`
	ExactAt3 float64 `json:"exact_at_3"`
}

// infillFlags are the flags of `dfill bench infill`.
type infillFlags struct {
	shared        cli.Shared
	tasks         string
	limit         int
	kind          string
	noValidate    bool
	maxTokens     int
	contextTokens int
	endAnywhere   bool
	asJSON        bool
	oracle        string
	minScore      float64
}

func infillCommand(m Models) *cli.Command {
	f := &infillFlags{}
	return &cli.Command{
		Name:    "infill",
		Summary: "exact match, edit similarity, syntax validity, answers in an error node, latency on an infill task file (--tasks)",
		Shared:  &f.shared,
		Flags:   f.register,
		Run:     func(ctx context.Context, _ []string) error { return f.run(ctx, m) },
	}
}

func (f *infillFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.tasks, "tasks", "", "task file (.jsonl or .jsonl.gz), formats of shared/benchmarks/README.md")
	fs.IntVar(&f.limit, "limit", 0, "run at most this many tasks of each kind (0: all)")
	fs.StringVar(&f.kind, "kind", "", "run only tasks of this kind")
	fs.BoolVar(&f.noValidate, "no-validate", false, "skip tree-sitter validation of candidates")
	fs.IntVar(&f.maxTokens, "max-tokens", 32, "longest span to fill, in tokens")
	fs.IntVar(&f.contextTokens, "context-tokens", 0, "prompt budget in tokens (0: from the model)")
	fs.BoolVar(&f.endAnywhere, "end-anywhere", false, "let end tokens appear anywhere in a span (engine.Options.EndAnywhere)")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON")
	fs.Float64Var(&f.minScore, "min-score", -1, "least score of an answer shown (negative: the model's calibrated threshold)")
	fs.StringVar(&f.oracle, "oracle", "", "no model: propose each task's reference (plain), the reference and an overrun (overrun), or the reference with its last line cut short (cut), and report what the pipeline returns")
}

// infillReport is what `dfill bench infill` prints.
type infillReport struct {
	Model    string       `json:"model"`
	Tasks    string       `json:"tasks"`
	Validate bool         `json:"validate"`
	MinScore float64      `json:"min_score"` // the threshold of the answers counted
	Kinds    []kindReport `json:"kinds"`
	// Curve is the precision–coverage curve of all the tasks run.
	Curve []curvePoint `json:"curve"`
}

// run completes every selected task with the model the shared flags name
// and reports the scores of each kind of task.
func (f *infillFlags) run(ctx context.Context, m Models) error {
	if f.tasks == "" {
		return cli.Usagef("--tasks is required")
	}
	switch f.oracle {
	case "", oraclePlain, oracleOverrun, oracleCut:
	default:
		return cli.Usagef("--oracle %q: want plain, overrun or cut", f.oracle)
	}
	tasks, err := readTasks(f.tasks)
	if err != nil {
		return err
	}
	tasks = selectTasks(tasks, f.kind, f.limit)
	if len(tasks) == 0 {
		return fmt.Errorf("%s: no tasks to run", f.tasks)
	}
	log, err := f.shared.Logger()
	if err != nil {
		return err
	}
	defer log.Sync()
	if f.oracle != "" {
		return f.runOracle(ctx, tasks, log)
	}
	gen, release, err := m.Generator(ctx, &f.shared, f.endAnywhere, log)
	if err != nil {
		return err
	}
	defer release()
	minScore := f.minScore
	if minScore < 0 {
		minScore = completion.CalibrationOf(gen).Threshold
	}
	s := newInfillScorer(gen, completion.Options{
		MaxTokens: f.maxTokens, ContextTokens: f.contextTokens, Steps: f.shared.Steps, Algorithm: f.shared.Algorithm,
		SkipValidation: f.noValidate,
	}, minScore, log)
	progress := func(i int) { fmt.Fprintf(os.Stderr, "\r%d/%d tasks", i, len(tasks)) }
	if f.asJSON {
		progress = func(int) {}
	}
	scores, err := s.run(ctx, tasks, progress)
	if err != nil {
		return err
	}
	if !f.asJSON {
		fmt.Fprintln(os.Stderr)
	}

	var reports []kindReport
	var all []infillScore
	for kind, ss := range scores {
		reports = append(reports, summarize(kind, ss))
		all = append(all, ss...)
	}
	sort.Slice(reports, func(i, j int) bool { return reports[i].Kind < reports[j].Kind })
	out := infillReport{Model: gen.Name(), Tasks: f.tasks, Validate: !f.noValidate, MinScore: minScore, Kinds: reports,
		Curve: precisionCoverage(all, minScore)}
	if f.asJSON {
		return cli.PrintJSON(out)
	}
	printInfillReport(out)
	return nil
}

// newInfillScorer returns a scorer that completes tasks with gen under
// opts (its MinScore set to 0: the scorer applies minScore itself, so
// that every task's best item and its score are seen).
func newInfillScorer(gen completion.Generator, opts completion.Options, minScore float64, log *zap.Logger) *infillScorer {
	opts.MinScore = 0
	return &infillScorer{
		c:          completion.New(gen, opts, log),
		gen:        gen,
		log:        log,
		minScore:   minScore,
		noValidate: opts.SkipValidation,
		whole:      syntax.Validator{LinesBefore: math.MaxInt32, BytesBefore: math.MaxInt32, LinesAfter: math.MaxInt32, BytesAfter: math.MaxInt32},
	}
}

// run scores every task, by kind; progress is called with the number done.
func (s *infillScorer) run(ctx context.Context, tasks []infillTask, progress func(int)) (map[string][]infillScore, error) {
	scores := map[string][]infillScore{}
	for i, t := range tasks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sc, err := s.score(ctx, i, t)
		if err != nil {
			return nil, fmt.Errorf("task %s: %w", t.ID, err)
		}
		scores[t.Kind] = append(scores[t.Kind], sc)
		progress(i + 1)
	}
	return scores, nil
}

// infillScorer completes tasks and scores the completions.
type infillScorer struct {
	c          *completion.Completer
	gen        completion.Generator
	log        *zap.Logger
	minScore   float64 // least score of an answer shown
	noValidate bool
	validator  syntax.Validator // around the middle, as the pipeline checks
	whole      syntax.Validator // the whole file
}

// score completes task t (the i-th) and scores the best completion of an
// automatic request, then the items of an invoked one.
func (s *infillScorer) score(ctx context.Context, i int, t infillTask) (infillScore, error) {
	start := time.Now()
	text := t.Prefix + t.Suffix
	req := completion.Request{URI: fmt.Sprintf("bench:///%d", i), LanguageID: t.Lang, Text: text, Offset: len(t.Prefix)}
	res, err := s.c.Complete(ctx, req)
	if err != nil {
		return infillScore{}, err
	}
	sc := infillScore{Latency: time.Since(start), Generate: res.Timings.Generate}
	_, sc.EmptySim = scoreText("", t.Middle, t.SingleLine)
	answer := ""
	if len(res.Items) > 0 {
		it := res.Items[0]
		answer = it.Insert
		sc.Item, sc.Score, sc.Features = true, it.Score, it.Features
		sc.Shown = it.Score >= s.minScore
		pred := firstLineIf(it.Insert, t.SingleLine)
		sc.Exact, sc.Similarity = scoreText(pred, t.Middle, t.SingleLine)
		sc.Tokens = s.gen.CountTokens(pred)
		// Validity against the reference file: the completion in the
		// middle's place may not add errors the reference lacks.
		doc := []byte(t.Prefix + t.Middle + t.Suffix)
		v, err := s.validator.Check(ctx, t.Lang, doc, len(t.Prefix), len(t.Prefix)+len(t.Middle), pred)
		if err != nil {
			return sc, err
		}
		sc.Valid = v.OK
		clean, err := s.whole.Check(ctx, t.Lang, []byte(text), it.Start, it.End, it.Insert)
		if err != nil {
			return sc, err
		}
		sc.Clean = clean.OK
		sc.InError = clean.Inside > 0
		if !clean.OK && !s.noValidate {
			s.log.Warn("the completion adds a syntax error to the file", zap.String("task", t.ID), zap.String("insert", it.Insert))
		}
	}
	req.Invoked = true
	inv, err := s.c.Complete(ctx, req)
	if err != nil {
		return sc, err
	}
	for k, it := range inv.Items {
		exact, sim := scoreText(firstLineIf(it.Insert, t.SingleLine), t.Middle, t.SingleLine)
		sc.Exact1 = sc.Exact1 || exact && k == 0
		sc.Exact3 = sc.Exact3 || exact
		sc.Samples = append(sc.Samples, completion.Sample{Features: it.Features, Kept: kept(sim)})
	}
	if s.log.Core().Enabled(zap.DebugLevel) {
		s.log.Debug("task", zap.String("task", t.ID), zap.String("kind", t.Kind), zap.String("middle", t.Middle),
			zap.String("answer", answer), zap.Float64("score", sc.Score), zap.Bool("shown", sc.Shown),
			zap.Bool("exact", sc.Exact), zap.Float64("similarity", sc.Similarity))
	}
	return sc, nil
}

// firstLineIf returns the first line of s when single is set, else s.
func firstLineIf(s string, single bool) string {
	if single {
		s, _, _ = strings.Cut(s, "\n")
	}
	return s
}

// curvePoint is one threshold of the precision–coverage curve: the share
// of tasks answered when answers scoring below it are not shown, and of
// the answered, the share exactly right, the mean edit similarity and the
// share a user would keep (keepSimilarity).
type curvePoint struct {
	Threshold float64 `json:"threshold"`
	Answered  float64 `json:"answered"`
	Exact     float64 `json:"exact"`
	EditSim   float64 `json:"edit_similarity"`
	Kept      float64 `json:"kept"`
	// Chosen marks the threshold the report counts (the model's, or
	// --min-score).
	Chosen bool `json:"chosen,omitempty"`
}

// curveCoverage are the shares of the tasks with an item that the curve's
// thresholds answer, from all of them down.
var curveCoverage = []float64{1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01}

// precisionCoverage returns the curve over the scores ss: a threshold for
// each of curveCoverage, and chosen, in decreasing order of coverage.
func precisionCoverage(ss []infillScore, chosen float64) []curvePoint {
	var items []infillScore
	for _, s := range ss {
		if s.Item {
			items = append(items, s)
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].Score > items[j].Score })
	thresholds := []float64{chosen}
	for _, c := range curveCoverage {
		if n := int(math.Ceil(c * float64(len(items)))); n > 0 {
			thresholds = append(thresholds, items[n-1].Score)
		}
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(thresholds)))
	var out []curvePoint
	for _, th := range thresholds {
		if len(out) > 0 && out[len(out)-1].Threshold == th {
			out[len(out)-1].Chosen = out[len(out)-1].Chosen || th == chosen
			continue
		}
		p := curvePoint{Threshold: th, Chosen: th == chosen}
		n := 0
		for _, s := range items {
			if s.Score < th {
				break
			}
			n++
			p.Exact += b2f(s.Exact)
			p.EditSim += s.Similarity
			p.Kept += b2f(kept(s.Similarity))
		}
		if n > 0 {
			p.Exact, p.EditSim, p.Kept = p.Exact/float64(n), p.EditSim/float64(n), p.Kept/float64(n)
		}
		p.Answered = float64(n) / float64(max(len(ss), 1))
		out = append(out, p)
	}
	slices.Reverse(out)
	return out
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func printInfillReport(out infillReport) {
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintf(w, "model %s, tasks %s, validation %v, min score %.3f\n", out.Model, out.Tasks, out.Validate, out.MinScore)
	fmt.Fprintf(w, "%-22s %6s %8s %7s %7s %7s %7s %7s %7s %7s %9s %9s %9s\n", "kind", "tasks", "answered", "EM %", "ES", "valid %", "clean %", "error %", "EM@1 %", "EM@3 %", "p50 ms", "p95 ms", "tok/s")
	for _, r := range out.Kinds {
		fmt.Fprintf(w, "%-22s %6d %8d %7.1f %7.3f %7.1f %7.1f %7.1f %7.1f %7.1f %9.1f %9.1f %9.1f\n", r.Kind, r.Tasks, r.Answered,
			100*r.ExactMatch, r.EditSim, 100*r.SyntaxValid, 100*r.NoNewErrors, 100*r.InErrorNode, 100*r.ExactAt1, 100*r.ExactAt3,
			r.LatencyP50MS, r.LatencyP95MS, r.TokensPerS)
	}
	fmt.Fprintln(w, "answered: an answer scoring at least the min score; EM, ES: over all tasks, of the answers shown;")
	fmt.Fprintln(w, "valid: the reference file with the completion in the middle's place adds no syntax error;")
	fmt.Fprintln(w, "clean: the completion adds no syntax error to the whole file as the pipeline saw it;")
	fmt.Fprintln(w, "error: the completion's own text lies in an error node of that file (junk on a broken line; target 0);")
	fmt.Fprintln(w, "EM@1, EM@3: an invoked request's first item, or one of its up to three, is exact (whatever the scores).")
	fmt.Fprintf(w, "\nprecision-coverage (all tasks run; kept: edit similarity >= %.1f; * the min score)\n", keepSimilarity)
	printCurve(w, out.Curve)
}

// printCurve prints a precision-coverage curve, a row per threshold.
func printCurve(w io.Writer, curve []curvePoint) {
	fmt.Fprintf(w, "%10s %10s %7s %7s %7s\n", "threshold", "answered %", "EM %", "ES", "kept %")
	for _, p := range curve {
		mark := ""
		if p.Chosen {
			mark = " *"
		}
		fmt.Fprintf(w, "%10.4f %10.1f %7.1f %7.3f %7.1f%s\n", p.Threshold, 100*p.Answered, 100*p.Exact, p.EditSim, 100*p.Kept, mark)
	}
}

// selectTasks keeps the tasks of kind (all when empty), at most limit of
// each kind (all when 0), in file order.
func selectTasks(tasks []infillTask, kind string, limit int) []infillTask {
	var out []infillTask
	seen := map[string]int{}
	for _, t := range tasks {
		if (kind != "" && t.Kind != kind) || (limit > 0 && seen[t.Kind] >= limit) {
			continue
		}
		seen[t.Kind]++
		out = append(out, t)
	}
	return out
}

func summarize(kind string, ss []infillScore) kindReport {
	r := kindReport{Kind: kind, Tasks: len(ss)}
	var lat []time.Duration
	var gen time.Duration
	tokens, valid, clean, inError := 0, 0, 0, 0
	for _, s := range ss {
		r.ExactAt1 += b2f(s.Exact1)
		r.ExactAt3 += b2f(s.Exact3)
		lat = append(lat, s.Latency)
		gen += s.Generate
		tokens += s.Tokens // generated, shown or not
		if !s.Shown || s.Tokens == 0 {
			r.EditSim += s.EmptySim
			continue
		}
		r.Answered++
		r.ExactMatch += b2f(s.Exact)
		valid += int(b2f(s.Valid))
		clean += int(b2f(s.Clean))
		inError += int(b2f(s.InError))
		r.EditSim += s.Similarity
	}
	n := float64(len(ss))
	r.ExactMatch /= n
	r.ExactAt1 /= n
	r.ExactAt3 /= n
	r.SyntaxValid, r.NoNewErrors = 1, 1
	if r.Answered > 0 {
		r.SyntaxValid = float64(valid) / float64(r.Answered)
		r.NoNewErrors = float64(clean) / float64(r.Answered)
		r.InErrorNode = float64(inError) / float64(r.Answered)
	}
	r.EditSim /= n
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r.LatencyP50MS = cli.Millis(percentile(lat, 0.50))
	r.LatencyP95MS = cli.Millis(percentile(lat, 0.95))
	if gen > 0 {
		r.TokensPerS = float64(tokens) / gen.Seconds()
	}
	return r
}
