package completion

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dfill/dfill/completion/syntax"
	"github.com/dfill/dfill/fim"
)

// ErrNoModel is returned when no Generator is loaded.
var ErrNoModel = errors.New("completion: no model loaded")

// Options are the user-settable knobs of the completion policy.
type Options struct {
	MaxTokens     int           // longest span to fill, in tokens
	ContextTokens int           // prompt budget in tokens (0: defaultContextTokens), capped by the model
	Steps         int           // denoising steps (0: generator default)
	Algorithm     string        // confidence score: "confidence", "margin", "entropy"
	Threshold     float64       // confidence threshold (0: use the step schedule)
	Debounce      time.Duration // wait this long for a newer request before generating
	Languages     []string      // LSP language ids to complete (empty: all)
	// MinScore is the least score (see Calibration) an automatic request's
	// item needs to be shown; a negative value means the model's own
	// threshold (Calibration.Threshold, 0 for a model without one). An
	// invoked request shows lower-scored items too, ranked.
	MinScore float64

	// SkipValidation returns candidates without the syntax check, for
	// measuring what validation adds (dfill bench infill); the server
	// never sets it.
	SkipValidation bool
}

// Prompt budget defaults.
const (
	// defaultContextTokens is the prompt budget when Options do not set
	// one: a full forward over the prompt is the first step of every
	// completion, and on a CPU its cost grows with the prompt, so the
	// default stays small; the model's context length caps any budget.
	defaultContextTokens = 1024
	maxInvokedItems      = 3
	// windowBytes is how much text around the cursor is handed to the
	// validator in a document too large to hand whole (validatorWindow),
	// enough for the widest window it parses (a construct of up to 16 KiB
	// on each side of the cursor, see syntax.Session).
	windowBytes = 24 << 10
)

// Completer answers completion requests. It is safe for concurrent use.
type Completer struct {
	log       *zap.Logger
	validator Validator

	cache cache
	edits editRing
	decls declCache

	// generating admits one generation at a time. A local model uses every
	// core for one request and notices cancellation only between layers
	// and steps: without it, fast typing starts a generation per keystroke
	// and the superseded ones compete with the newest for the CPU until
	// they notice. A request waiting here gives up once it is cancelled;
	// one that gets through looks in the cache again, so a request that
	// waited for another at the same place (a completion and an inline
	// completion for one keystroke) takes its answer.
	generating chan struct{}

	// mu guards gen and opts.
	mu   sync.Mutex
	gen  Generator
	opts Options
}

// New returns a Completer that asks gen for candidates (gen may be nil until
// a model is loaded; see SetGenerator).
func New(gen Generator, opts Options, log *zap.Logger) *Completer {
	if log == nil {
		log = zap.NewNop()
	}
	return &Completer{log: log, gen: gen, opts: opts, validator: &treeSitter{}, generating: make(chan struct{}, 1)}
}

// SetGenerator replaces the Generator (nil: no model; Complete returns
// ErrNoModel) and forgets the answers of the previous one.
func (c *Completer) SetGenerator(gen Generator) {
	c.mu.Lock()
	c.gen = gen
	c.mu.Unlock()
	c.cache.clear()
}

// SetOptions replaces the options for requests that start after the call;
// answers made with other options are forgotten.
func (c *Completer) SetOptions(opts Options) {
	c.mu.Lock()
	changed := !reflect.DeepEqual(c.opts, opts)
	c.opts = opts
	c.mu.Unlock()
	if changed {
		c.cache.clear()
	}
}

// DidChange tells the Completer that a document changed: text is the new
// content and [start,end) the byte range of it the edit wrote; path is the
// document's file path ("" when its URI names no file). It feeds the
// recent-edits context and invalidates the cache.
func (c *Completer) DidChange(uri, path, text string, start, end int) {
	c.edits.add(uri, path, text, start, end)
	c.cache.didChange(uri, text)
}

// DidClose forgets what the Completer keeps for a document.
func (c *Completer) DidClose(uri string) {
	c.cache.forget(uri)
	c.edits.forget(uri)
	c.decls.forget(uri)
}

// Complete returns completions for req. It returns ctx's error when ctx is
// cancelled before the answer is ready.
//
// It answers from the cache when the user typed the start of an item it
// showed last for the document; otherwise it decides the mode (single line
// when code follows the cursor on its line), builds the prompt with
// context from the other documents, asks the Generator, post-processes,
// validates and ranks the candidates. An invoked request may get up to
// three items, an automatic one the best.
func (c *Completer) Complete(ctx context.Context, req Request) (Result, error) {
	t0 := time.Now()
	c.mu.Lock()
	gen, opts := c.gen, c.opts
	c.mu.Unlock()

	lang := languageOf(req.LanguageID, req.Path)
	if len(opts.Languages) > 0 && !slices.Contains(opts.Languages, lang) {
		return Result{}, nil
	}
	text := req.Text
	off := fim.ClampOffset(text, req.Offset)
	minScore := opts.MinScore
	if minScore < 0 {
		minScore = CalibrationOf(gen).Threshold
	}
	if items, model, ok := c.cache.lookup(req.URI, text, off, req.Invoked); ok {
		return Result{Items: shownItems(items, req.Invoked, minScore), Cached: true, Model: model, Timings: Timings{Total: time.Since(t0)}}, nil
	}
	if gen == nil {
		return Result{}, ErrNoModel
	}
	if strings.TrimSpace(text) == "" {
		return Result{Model: gen.Name(), Timings: Timings{Total: time.Since(t0)}}, nil
	}

	if opts.Debounce > 0 {
		t := time.NewTimer(opts.Debounce)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return Result{}, ctx.Err()
		}
	}

	tWait := time.Now()
	release, err := c.acquire(ctx)
	if err != nil {
		return Result{}, err
	}
	defer release()
	wait := time.Since(tWait)
	if items, model, ok := c.cache.lookup(req.URI, text, off, req.Invoked); ok {
		return Result{Items: shownItems(items, req.Invoked, minScore), Cached: true, Model: model, Timings: Timings{Wait: wait, Total: time.Since(t0)}}, nil
	}
	res, err := c.fill(ctx, req, gen, opts, lang, text, off)
	if err != nil {
		return Result{}, err
	}
	res.Timings.Wait = wait
	c.cache.store(req.URI, text, off, res.Items, req.Invoked, res.Model)
	res.Items = shownItems(res.Items, req.Invoked, minScore)
	res.Timings.Total = time.Since(t0)
	return res, nil
}

// acquire waits until no other generation runs, or ctx is cancelled; the
// caller calls release when its generation is done.
func (c *Completer) acquire(ctx context.Context) (release func(), err error) {
	select {
	case c.generating <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		<-c.generating
		return nil, err
	}
	return func() { <-c.generating }, nil
}

// fill computes the answer for a request that the cache could not answer:
// the mode, the prompt, the candidates, then post-processing, validation
// and ranking. The caller holds the generation slot.
func (c *Completer) fill(ctx context.Context, req Request, gen Generator, opts Options, lang, text string, off int) (Result, error) {
	res := Result{Model: gen.Name()}
	tPrompt := time.Now()
	m := decideMode(text, off, lang)
	res.Span = spanTokens(m, opts, gen)
	prompt := c.prompt(ctx, req, gen, opts, lang, text, off, res.Span)
	res.Timings.Prompt = time.Since(tPrompt)
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}

	// The validator parses the window around the cursor while the model
	// runs.
	var chk Checker
	if !opts.SkipValidation && c.validator != nil {
		wlo, whi := validatorWindow(len(text), off, m.end)
		early := beginEarly(ctx, c.validator, lang, []byte(text[wlo:whi]), off-wlo, m.end-wlo)
		defer early.Close()
		chk = early
	}

	tGen := time.Now()
	gopts := GenerateOptions{MaxTokens: res.Span, Steps: opts.Steps, Algorithm: opts.Algorithm, Threshold: opts.Threshold}
	cands, err := generate(ctx, gen, prompt, gopts, req.OnStep)
	res.Timings.Generate = time.Since(tGen)
	if len(cands) > 0 {
		res.Steps = cands[0].Steps
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if err != nil {
		return Result{}, fmt.Errorf("completion: %s at %s:%d: %w", gen.Name(), req.URI, off, err)
	}

	tVal := time.Now()
	items, err := c.items(ctx, cands, prompt, m, off, chk, CalibrationOf(gen), itemsWanted(req.Invoked))
	res.Timings.Validate = time.Since(tVal)
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if err != nil {
		return Result{}, fmt.Errorf("completion: validate %s at %d: %w", req.URI, off, err)
	}
	res.Items = rank(items)
	return res, nil
}

// CalibrationOf returns the Calibration of gen's model (see Calibrated),
// or the zero one.
func CalibrationOf(gen Generator) Calibration {
	if c, ok := gen.(Calibrated); ok {
		if cal := c.Calibration(); cal.Check() == nil {
			return cal
		}
	}
	return Calibration{}
}

// validatorWindow returns the part [wlo, whi) of a document of n bytes
// handed to the validator for a range [off, end): all of it when it is
// small enough to be parsed whole, otherwise windowBytes on each side of
// the range, and more than syntax.MaxWholeBytes in all, so that a part is
// never taken for a whole document.
func validatorWindow(n, off, end int) (wlo, whi int) {
	if n <= syntax.MaxWholeBytes {
		return 0, n
	}
	wlo, whi = max(0, off-windowBytes), min(n, end+windowBytes)
	if short := syntax.MaxWholeBytes + 1 - (whi - wlo); short > 0 {
		whi = min(n, whi+short)
		wlo = max(0, whi-syntax.MaxWholeBytes-1)
	}
	return wlo, whi
}

// spanTokens returns how many tokens to fill: Options.MaxTokens (or the
// default), fewer for the rest of a line, and at most a quarter of a small
// model's context, leaving the rest to the code around the cursor.
func spanTokens(m mode, opts Options, gen Generator) int {
	n := cmp.Or(opts.MaxTokens, DefaultMaxTokens)
	if m.single {
		n = min(n, maxSingleLineTokens)
	}
	if mc := gen.ContextTokens(); mc > 0 {
		n = max(1, min(n, mc/4))
	}
	return n
}

// generate asks gen for candidates for prompt. The model sees the prefix
// without its trailing blanks: text ending in "\t\t" before a word is a
// token boundary it never saw in training ("\t" "\treturn"), so it writes
// the blanks again and they are taken off its answers and its steps.
// onStep, when not nil, sees each step as the buffer would show it, until
// ctx is cancelled.
func generate(ctx context.Context, gen Generator, prompt fim.Prompt, opts GenerateOptions, onStep func(Step)) ([]Candidate, error) {
	blank := trailingBlanks(prompt.Prefix)
	genPrompt := prompt
	genPrompt.Prefix = prompt.Prefix[:len(prompt.Prefix)-len(blank)]
	var show func(Step)
	if onStep != nil {
		show = func(s Step) {
			if ctx.Err() == nil { // a superseded request shows no more steps
				s.Text = prompt.Restore(stripBlanks(s.Text, blank))
				onStep(s)
			}
		}
	}
	cands, err := gen.Infill(ctx, genPrompt, opts, show)
	for i := range cands {
		cands[i].Text = stripBlanks(cands[i].Text, blank)
	}
	return cands, err
}

// prompt builds the infill prompt for a cursor at off: the budget is
// Options.ContextTokens (or defaultContextTokens, within the model's
// context length) less the span, split 75% prefix / 25% suffix after a
// quarter for context snippets (definitions from other documents, then
// recent edits).
func (c *Completer) prompt(ctx context.Context, req Request, gen Generator, opts Options, lang, text string, off, maxTokens int) fim.Prompt {
	total := cmp.Or(opts.ContextTokens, defaultContextTokens)
	if mc := gen.ContextTokens(); mc > 0 {
		total = min(total, mc)
	}
	avail := max(total-maxTokens, 0)
	ctxBudget := avail / 4
	rest := avail - ctxBudget
	b := fim.Budget{Prefix: rest * 3 / 4, Suffix: rest - rest*3/4, Context: ctxBudget}

	snippets := c.definitionSnippets(ctx, req, lang, text, off)
	line := func() int { return strings.Count(text[:off], "\n") }
	snippets = append(snippets, c.edits.snippets(req.URI, line)...)
	return fim.Build(fim.Input{
		Text:       text,
		Offset:     off,
		Path:       req.Path,
		LanguageID: lang,
		Snippets:   snippets,
	}, b, gen.CountTokens)
}

// items post-processes candidates into items (not ranked), scored by cal,
// checking each with chk when it is not nil. The candidates go best first
// by their score before validation, and when one item is wanted the first
// that passes is the answer: the others' checks (a parse or a few each)
// would only be thrown away.
func (c *Completer) items(ctx context.Context, cands []Candidate, prompt fim.Prompt, m mode, off int, chk Checker, cal Calibration, want int) ([]Item, error) {
	type pending struct {
		cand   Candidate
		text   string
		repeat bool
		score  float64
	}
	var todo []pending
	for _, cand := range cands {
		s := postprocess(cand.Text, prompt.Suffix, m)
		if s == "" {
			continue
		}
		repeat := hasLoop(cand.Text)
		todo = append(todo, pending{cand, s, repeat, cal.Score(features(cand, s, false, repeat))})
	}
	slices.SortStableFunc(todo, func(a, b pending) int { return cmp.Compare(b.score, a.score) })
	var items []Item
	for _, p := range todo {
		if want == 1 && len(items) == 1 {
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s, trimmed := p.text, false
		if chk != nil {
			// Tree-sitter reads LF and CRLF alike: trim in LF, restore after.
			var err error
			if s, err = trimValid(chk, s, m); err != nil {
				return nil, err
			}
			if m.single && s == "" {
				// Lines the middle of a line needs (an expression that
				// goes on below, the start of a later line) are kept when
				// its first line does not fit and the whole candidate
				// adds no syntax error.
				if s, err = acrossLines(chk, p.cand.Text, prompt.Suffix, m); err != nil {
					return nil, err
				}
			}
			if s == "" {
				continue
			}
			trimmed = len(s) < len(p.text)
		}
		insert := finish(prompt.Restore(s), m)
		f := features(p.cand, insert, trimmed, p.repeat)
		items = append(items, Item{
			Insert:     insert,
			Start:      off,
			End:        m.end,
			Confidence: p.cand.Confidence,
			Score:      cal.Score(f),
			Features:   f,
			Steps:      p.cand.Steps,
			Span:       p.cand.Span,
		})
	}
	return items, nil
}

// acrossLines returns cand post-processed as a multi-line candidate for a
// cursor in the middle of a line (m.single) when it passes chk, or "".
func acrossLines(chk Checker, cand, suffix string, m mode) (string, error) {
	multi := m
	multi.single = false
	all := postprocess(cand, suffix, multi)
	if !strings.Contains(all, "\n") {
		return "", nil
	}
	ok, err := chk.Check(finish(all, m))
	if err != nil || !ok {
		return "", err
	}
	return all, nil
}

// rank orders items by score, then length (longer first), and drops
// repeated inserts.
func rank(items []Item) []Item {
	slices.SortStableFunc(items, func(a, b Item) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(len(b.Insert), len(a.Insert))
	})
	out := items[:0]
	for _, it := range items {
		if !slices.ContainsFunc(out, func(o Item) bool { return o.Insert == it.Insert }) {
			out = append(out, it)
		}
	}
	return out
}

// shownItems returns the items a request gets of ranked items: for an
// automatic request the best, if it scores at least minScore; for an
// invoked one up to maxInvokedItems, whatever their scores.
func shownItems(items []Item, invoked bool, minScore float64) []Item {
	if !invoked && len(items) > 0 && items[0].Score < minScore {
		return nil
	}
	return items[:min(len(items), itemsWanted(invoked))]
}

// itemsWanted is how many items a request gets: the best for an automatic
// request, up to maxInvokedItems for an invoked one.
func itemsWanted(invoked bool) int {
	if invoked {
		return maxInvokedItems
	}
	return 1
}

// trailingBlanks returns the spaces and tabs that end prefix.
func trailingBlanks(prefix string) string {
	return prefix[len(strings.TrimRight(prefix, " \t")):]
}

// stripBlanks takes off the start of text as much of blank, the blanks the
// prompt left out, as text repeats.
func stripBlanks(text, blank string) string {
	if blank == "" {
		return text
	}
	n := 0
	for n < len(blank) && n < len(text) && text[n] == blank[n] {
		n++
	}
	return text[n:]
}
