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
}

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
	fs.StringVar(&f.oracle, "oracle", "", "no model: propose each task's reference (plain), the reference and an overrun (overrun), or the reference with its last line cut short (cut), and report what the pipeline returns")
}

// infillReport is what `dfill bench infill` prints.
type infillReport struct {
	Model    string       `json:"model"`
	Tasks    string       `json:"tasks"`
	Validate bool         `json:"validate"`
	Kinds    []kindReport `json:"kinds"`
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
	s := &infillScorer{
		c: completion.New(gen, completion.Options{
			MaxTokens: f.maxTokens, ContextTokens: f.contextTokens, Steps: f.shared.Steps, Algorithm: f.shared.Algorithm,
			SkipValidation: f.noValidate,
		}, log),
		gen:        gen,
		log:        log,
		noValidate: f.noValidate,
		whole:      syntax.Validator{LinesBefore: math.MaxInt32, BytesBefore: math.MaxInt32, LinesAfter: math.MaxInt32, BytesAfter: math.MaxInt32},
	}

	scores := map[string][]infillScore{}
	for i, t := range tasks {
		if err := ctx.Err(); err != nil {
			return err
		}
		sc, err := s.score(ctx, i, t)
		if err != nil {
			return fmt.Errorf("task %s: %w", t.ID, err)
		}
		scores[t.Kind] = append(scores[t.Kind], sc)
		if !f.asJSON {
			fmt.Fprintf(os.Stderr, "\r%d/%d tasks", i+1, len(tasks))
		}
	}
	if !f.asJSON {
		fmt.Fprintln(os.Stderr)
	}

	var reports []kindReport
	for kind, ss := range scores {
		reports = append(reports, summarize(kind, ss))
	}
	sort.Slice(reports, func(i, j int) bool { return reports[i].Kind < reports[j].Kind })
	out := infillReport{gen.Name(), f.tasks, !f.noValidate, reports}
	if f.asJSON {
		return cli.PrintJSON(out)
	}
	printInfillReport(out)
	return nil
}

// infillScorer completes tasks and scores the completions.
type infillScorer struct {
	c          *completion.Completer
	gen        completion.Generator
	log        *zap.Logger
	noValidate bool
	validator  syntax.Validator // around the middle, as the pipeline checks
	whole      syntax.Validator // the whole file
}

// score completes task t (the i-th) and scores the best completion.
func (s *infillScorer) score(ctx context.Context, i int, t infillTask) (infillScore, error) {
	start := time.Now()
	text := t.Prefix + t.Suffix
	res, err := s.c.Complete(ctx, completion.Request{
		URI: fmt.Sprintf("bench:///%d", i), LanguageID: t.Lang,
		Text: text, Offset: len(t.Prefix),
	})
	if err != nil {
		return infillScore{}, err
	}
	sc := infillScore{Latency: time.Since(start), Generate: res.Timings.Generate}
	answer := ""
	if len(res.Items) > 0 {
		it := res.Items[0]
		answer = it.Insert
		pred := it.Insert
		if t.SingleLine {
			pred, _, _ = strings.Cut(pred, "\n")
		}
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
	} else {
		_, sc.Similarity = scoreText("", t.Middle, t.SingleLine)
	}
	if s.log.Core().Enabled(zap.DebugLevel) {
		s.log.Debug("task", zap.String("task", t.ID), zap.String("kind", t.Kind), zap.String("middle", t.Middle),
			zap.String("answer", answer), zap.Bool("exact", sc.Exact), zap.Float64("similarity", sc.Similarity))
	}
	return sc, nil
}

func printInfillReport(out infillReport) {
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintf(w, "model %s, tasks %s, validation %v\n", out.Model, out.Tasks, out.Validate)
	fmt.Fprintf(w, "%-22s %6s %8s %7s %7s %7s %7s %7s %9s %9s %9s\n", "kind", "tasks", "answered", "EM %", "ES", "valid %", "clean %", "error %", "p50 ms", "p95 ms", "tok/s")
	for _, r := range out.Kinds {
		fmt.Fprintf(w, "%-22s %6d %8d %7.1f %7.3f %7.1f %7.1f %7.1f %9.1f %9.1f %9.1f\n", r.Kind, r.Tasks, r.Answered,
			100*r.ExactMatch, r.EditSim, 100*r.SyntaxValid, 100*r.NoNewErrors, 100*r.InErrorNode, r.LatencyP50MS, r.LatencyP95MS, r.TokensPerS)
	}
	fmt.Fprintln(w, "valid: the reference file with the completion in the middle's place adds no syntax error;")
	fmt.Fprintln(w, "clean: the completion adds no syntax error to the whole file as the pipeline saw it;")
	fmt.Fprintln(w, "error: the completion's own text lies in an error node of that file (junk on a broken line; target 0).")
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
		if s.Tokens > 0 {
			r.Answered++
		}
		if s.Exact {
			r.ExactMatch++
		}
		if s.Valid && s.Tokens > 0 {
			valid++
		}
		if s.Clean && s.Tokens > 0 {
			clean++
		}
		if s.InError && s.Tokens > 0 {
			inError++
		}
		r.EditSim += s.Similarity
		lat = append(lat, s.Latency)
		gen += s.Generate
		tokens += s.Tokens
	}
	n := float64(len(ss))
	r.ExactMatch /= n
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
