package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/dfill/dfill/cmd/dfill/internal/cli"
	"github.com/dfill/dfill/completion"
	"github.com/dfill/dfill/fim"
)

// Oracle modes of `dfill bench infill --oracle`: what the oracle proposes
// for a task.
const (
	oraclePlain   = "plain"   // the reference middle
	oracleOverrun = "overrun" // the reference, then text a model writes past it
	oracleCut     = "cut"     // the reference with its last line cut short
)

// Loss reasons: why the pipeline did not return the text it should have,
// told from outside it by comparing the answer with validation and the
// answer without it (completion.Options.SkipValidation).
const (
	lossRejected   = "rejected by validation"
	lossTrimmed    = "trimmed by validation"
	lossEmptied    = "emptied by post-processing"
	lossPolicy     = "policy cut a multi-line answer to one line"
	lossWhitespace = "whitespace changed"
	lossSuffix     = "cut by suffix de-duplication"
	lossShort      = "cut short by post-processing"
	lossOverrun    = "overrun not cut"
	lossOther      = "other"
)

// oracle is a completion.Generator that proposes a text the bench sets
// before each request (see propose): the answer a perfect model gives,
// with or without the flaws of oracleOverrun and oracleCut. It loads no
// model.
type oracle struct {
	prefix, proposal string // the task's prefix as the document has it, and what to propose after it
}

// Infill returns the proposal as the model would write it after p.Prefix:
// in the prompt's conventions (LF line endings, tab indentation where fim
// turned spaces into tabs), with the prefix's trailing blanks that the
// pipeline took off the prompt written again.
func (o *oracle) Infill(_ context.Context, p fim.Prompt, _ completion.GenerateOptions, _ func(completion.Step)) ([]completion.Candidate, error) {
	before := promptText(o.prefix, p.IndentUnit)
	full := promptText(o.prefix+o.proposal, p.IndentUnit)
	trimmed := strings.TrimRight(before, " \t")
	if !strings.HasPrefix(full, trimmed) || !strings.HasSuffix(trimmed, p.Prefix[strings.LastIndexByte(p.Prefix, '\n')+1:]) {
		return nil, fmt.Errorf("oracle: the prompt's prefix does not end as the task's does")
	}
	return []completion.Candidate{{Text: full[len(trimmed):], Confidence: 1, Steps: 1}}, nil
}

// promptText turns document text into the prompt's conventions, as
// fim.Build does: LF line endings, and each whole indent unit of leading
// spaces a tab when unit is not 0.
func promptText(s string, unit int) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	if unit == 0 {
		return s
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		n := len(l) - len(strings.TrimLeft(l, " "))
		lines[i] = strings.Repeat("\t", n/unit) + l[n/unit*unit:]
	}
	return strings.Join(lines, "\n")
}

func (o *oracle) CountTokens(s string) int { return len(s) / 4 }
func (o *oracle) ContextTokens() int       { return 8192 }
func (o *oracle) Name() string             { return "oracle" }

// overrunVariants name the kinds of overrun, in the order tasks cycle
// through them.
var overrunVariants = []string{"suffix-line", "bracket", "blank-lines", "eos"}

// propose returns what the oracle proposes for the i-th task in mode, and
// for oracleOverrun the variant's name.
func propose(mode string, i int, t infillTask) (text, variant string) {
	m := t.Middle
	switch mode {
	case oracleOverrun:
		variant = overrunVariants[i%len(overrunVariants)]
		switch variant {
		case "suffix-line":
			return m + suffixLine(t.Suffix), variant
		case "bracket":
			return m + lineBreak(m, t.Suffix) + lineIndent(t.Prefix) + strayCloser(t.Prefix+m), variant
		case "blank-lines":
			return m + "\n\n\n", variant
		default:
			eos := []string{"<|endoftext|>", "<|eot_id|>"}[i/len(overrunVariants)%2]
			return m + strings.Repeat(eos, 4), variant
		}
	case oracleCut:
		body := strings.TrimSuffix(m, "\n")
		last := body[strings.LastIndexByte(body, '\n')+1:]
		keep := utf8.RuneCountInString(last) - utf8.RuneCountInString(last)/2
		cut := len(body) - len(last)
		for range keep {
			_, size := utf8.DecodeRuneInString(body[cut:])
			cut += size
		}
		return body[:cut], ""
	}
	return m, ""
}

// suffixLine returns the start of suffix up to the end of its first line
// that holds more than blanks: what a model that ran past the middle
// writes next.
func suffixLine(suffix string) string {
	off := 0
	for off < len(suffix) {
		end := strings.IndexByte(suffix[off:], '\n')
		if end < 0 {
			return suffix
		}
		if strings.TrimSpace(suffix[off:off+end]) != "" {
			return suffix[:off+end]
		}
		off += end + 1
	}
	return suffix
}

// lineBreak is "\n" when the middle does not end its line itself.
func lineBreak(middle, suffix string) string {
	if strings.HasSuffix(middle, "\n") || suffix == "" {
		return ""
	}
	return "\n"
}

// lineIndent returns the indentation of the line the prefix ends in.
func lineIndent(prefix string) string {
	l := prefix[strings.LastIndexByte(prefix, '\n')+1:]
	return l[:len(l)-len(strings.TrimLeft(l, " \t"))]
}

// strayCloser returns the closer of the innermost bracket open at the end
// of text (strings and comments are not told apart), or ")" when none is.
func strayCloser(text string) string {
	var open []byte
	for i := 0; i < len(text); i++ {
		switch c := text[i]; c {
		case '(', '[', '{':
			open = append(open, c)
		case ')', ']', '}':
			if len(open) > 0 {
				open = open[:len(open)-1]
			}
		}
	}
	if len(open) == 0 {
		return ")"
	}
	return map[byte]string{'(': ")", '[': "]", '{': "}"}[open[len(open)-1]]
}

// answer is the first item of a result, and the document it makes.
type answer struct {
	has    bool
	insert string
	doc    string
}

func answerOf(res completion.Result, text string) answer {
	if len(res.Items) == 0 {
		return answer{}
	}
	it := res.Items[0]
	return answer{has: true, insert: it.Insert, doc: text[:it.Start] + it.Insert + text[it.End:]}
}

// fidelity is the outcome of one task under the oracle.
type fidelity struct {
	Equal, Bytes bool   // the answer equals the target as scored; the document equals the target's
	WholeLines   bool   // oracleCut: trimmed to whole lines of the reference
	Reason       string // why not Equal (and not WholeLines)
	BytesReason  string // why not Bytes
}

// classify tells what the pipeline did to target: withVal is the answer
// with validation, noVal the one without.
func classify(t infillTask, target string, withVal, noVal answer) fidelity {
	view := func(s string) string {
		if t.SingleLine {
			s, _, _ = strings.Cut(s, "\n")
		}
		return strings.TrimSpace(s)
	}
	eqScore := func(a answer) bool { return a.has && view(a.insert) == view(target) }
	eqBytes := func(a answer) bool { return a.has && a.doc == t.Prefix+target+t.Suffix }
	f := fidelity{Equal: eqScore(withVal), Bytes: eqBytes(withVal)}
	if !f.Equal {
		f.Reason = lossReason(eqScore, view, t, target, withVal, noVal)
	}
	if !f.Bytes {
		f.BytesReason = lossReason(eqBytes, func(s string) string { return s }, t, target, withVal, noVal)
	}
	return f
}

// lossReason says why eq does not hold of withVal, comparing the texts in
// view (the scored part of an answer, or all of it).
func lossReason(eq func(answer) bool, view func(string) string, t infillTask, target string, withVal, noVal answer) string {
	ref, got := view(target), view(noVal.insert)
	switch {
	case eq(noVal) && !withVal.has:
		return lossRejected
	case eq(noVal) && strings.HasPrefix(noVal.insert, withVal.insert):
		return lossTrimmed
	case eq(noVal):
		return lossOther
	case !noVal.has:
		return lossEmptied
	case strings.Contains(strings.TrimSpace(ref), "\n") && !strings.Contains(strings.TrimSpace(got), "\n") &&
		strings.TrimSpace(got) == strings.TrimSpace(firstLine(strings.TrimLeft(ref, "\n"))):
		return lossPolicy
	case strings.Join(strings.Fields(got), " ") == strings.Join(strings.Fields(ref), " "):
		return lossWhitespace
	case len(got) > len(ref) && strings.HasPrefix(got, strings.TrimRight(ref, " \t\n")):
		return lossOverrun
	}
	kept := strings.TrimRight(got, " \t\n")
	if len(kept) < len(ref) && strings.HasPrefix(ref, kept) {
		cut := ref[len(kept):]
		if c := strings.TrimSpace(cut); strings.HasPrefix(t.Suffix, cut) || strings.HasPrefix(strings.TrimLeft(t.Suffix, " \t\r\n"), c) {
			return lossSuffix
		}
		return lossShort
	}
	return lossOther
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// wholeLines reports whether insert is, as scored, the first one or more
// whole lines of middle.
func wholeLines(t infillTask, insert string) bool {
	got := strings.TrimSpace(insert)
	if got == "" {
		return false
	}
	lines := strings.SplitAfter(t.Middle, "\n")
	for k := 1; k < len(lines); k++ {
		if strings.TrimSpace(strings.Join(lines[:k], "")) == got {
			return true
		}
	}
	return false
}

// fidelityReport is the fidelity of one kind of task (or of all).
type fidelityReport struct {
	Kind        string         `json:"kind"`
	Tasks       int            `json:"tasks"`
	Equal       float64        `json:"equal"`                 // share returned equal to the target as scored
	ByteExact   float64        `json:"byte_exact"`            // share whose document equals the target's byte for byte
	WholeLines  float64        `json:"whole_lines,omitempty"` // oracleCut: share trimmed to whole lines of the reference
	Losses      map[string]int `json:"losses"`                // tasks not Equal (nor WholeLines), by reason
	ByteLosses  map[string]int `json:"byte_losses"`           // tasks not byte-exact, by reason
	equal, byts int
	whole       int
}

func (r *fidelityReport) add(f fidelity) {
	r.Tasks++
	switch {
	case f.Equal:
		r.equal++
	case f.WholeLines:
		r.whole++
	default:
		r.Losses[f.Reason]++
	}
	if f.Bytes {
		r.byts++
	} else {
		r.ByteLosses[f.BytesReason]++
	}
	r.Equal, r.ByteExact, r.WholeLines = share(r.equal, r.Tasks), share(r.byts, r.Tasks), share(r.whole, r.Tasks)
}

func share(n, of int) float64 { return float64(n) / float64(max(of, 1)) }

// oracleReport is what `dfill bench infill --oracle` prints.
type oracleReport struct {
	Oracle   string           `json:"oracle"`
	Tasks    string           `json:"tasks"`
	Validate bool             `json:"validate"`
	Kinds    []fidelityReport `json:"kinds"`
	All      fidelityReport   `json:"all"`
}

// runOracle measures the pipeline's fidelity with the oracle in f.oracle
// as the model and prints the report.
func (f *infillFlags) runOracle(ctx context.Context, tasks []infillTask, log *zap.Logger) error {
	opts := completion.Options{MaxTokens: f.maxTokens, ContextTokens: f.contextTokens, Steps: 1, SkipValidation: f.noValidate}
	progress := func(i int) { fmt.Fprintf(os.Stderr, "\r%d/%d tasks", i, len(tasks)) }
	if f.asJSON {
		progress = func(int) {}
	}
	out, err := measureOracle(ctx, f.oracle, tasks, opts, log, progress)
	if err != nil {
		return err
	}
	if !f.asJSON {
		fmt.Fprintln(os.Stderr)
	}
	out.Tasks = f.tasks
	if f.asJSON {
		return cli.PrintJSON(out)
	}
	printOracleReport(out)
	return nil
}

// measureOracle runs every task through the completion pipeline with the
// oracle in mode as the model, twice (with opts, validation as the server
// runs it unless opts skip it, and without validation, to tell
// validation's losses from the rest), and reports what came back.
// progress is called with the number of tasks done.
func measureOracle(ctx context.Context, mode string, tasks []infillTask, opts completion.Options, log *zap.Logger, progress func(int)) (oracleReport, error) {
	o := &oracle{}
	validate := !opts.SkipValidation
	withVal := completion.New(o, opts, log)
	opts.SkipValidation = true
	noVal := completion.New(o, opts, log)

	kinds := map[string]*fidelityReport{}
	all := &fidelityReport{Kind: "all", Losses: map[string]int{}, ByteLosses: map[string]int{}}
	for i, t := range tasks {
		if err := ctx.Err(); err != nil {
			return oracleReport{}, err
		}
		proposal, variant := propose(mode, i, t)
		o.prefix, o.proposal = t.Prefix, proposal
		text := t.Prefix + t.Suffix
		req := completion.Request{URI: fmt.Sprintf("bench:///%d", i), LanguageID: t.Lang, Text: text, Offset: len(t.Prefix)}
		a, err := withVal.Complete(ctx, req)
		if err != nil {
			return oracleReport{}, fmt.Errorf("task %s: %w", t.ID, err)
		}
		b, err := noVal.Complete(ctx, req)
		if err != nil {
			return oracleReport{}, fmt.Errorf("task %s: %w", t.ID, err)
		}
		target := t.Middle
		if mode == oracleCut {
			target = proposal
		}
		av, bv := answerOf(a, text), answerOf(b, text)
		fid := classify(t, target, av, bv)
		if mode == oracleCut && !fid.Equal {
			fid.WholeLines = wholeLines(t, av.insert)
		}
		r := kinds[t.Kind]
		if r == nil {
			r = &fidelityReport{Kind: t.Kind, Losses: map[string]int{}, ByteLosses: map[string]int{}}
			kinds[t.Kind] = r
		}
		r.add(fid)
		all.add(fid)
		if (!fid.Equal || !fid.Bytes) && log.Core().Enabled(zap.DebugLevel) {
			log.Debug("loss", zap.String("task", t.ID), zap.String("kind", t.Kind), zap.String("variant", variant),
				zap.Bool("equal", fid.Equal), zap.Bool("whole_lines", fid.WholeLines),
				zap.String("reason", fid.Reason), zap.String("bytes_reason", fid.BytesReason),
				zap.String("prefix_tail", tail(t.Prefix, 80)), zap.String("reference", t.Middle), zap.String("proposal", proposal),
				zap.String("suffix_head", head(t.Suffix, 80)), zap.String("answer", av.insert), zap.String("unvalidated", bv.insert))
		}
		progress(i + 1)
	}
	out := oracleReport{Oracle: mode, Validate: validate, All: *all}
	for _, r := range kinds {
		out.Kinds = append(out.Kinds, *r)
	}
	sort.Slice(out.Kinds, func(i, j int) bool { return out.Kinds[i].Kind < out.Kinds[j].Kind })
	return out, nil
}

func tail(s string, n int) string { return s[max(0, len(s)-n):] }
func head(s string, n int) string { return s[:min(len(s), n)] }

func printOracleReport(out oracleReport) {
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintf(w, "oracle %s, tasks %s, validation %v\n", out.Oracle, out.Tasks, out.Validate)
	equal := "equal %"
	if out.Oracle == oracleCut {
		equal = "as-is %"
	}
	fmt.Fprintf(w, "%-22s %6s %8s %8s %8s\n", "kind", "tasks", equal, "lines %", "bytes %")
	rows := append(out.Kinds, out.All)
	for _, r := range rows {
		fmt.Fprintf(w, "%-22s %6d %8.1f %8.1f %8.1f\n", r.Kind, r.Tasks, 100*r.Equal, 100*r.WholeLines, 100*r.ByteExact)
	}
	fmt.Fprintln(w, "\nlosses (as scored / byte for byte)")
	for _, r := range rows {
		for _, reason := range lossReasons(r) {
			fmt.Fprintf(w, "%-22s %-44s %6d %6d\n", r.Kind, reason, r.Losses[reason], r.ByteLosses[reason])
		}
	}
	switch out.Oracle {
	case oracleCut:
		fmt.Fprintln(w, "as-is: the answer is the cut proposal; lines: trimmed to the reference's first whole lines (not losses);")
	case oracleOverrun:
		fmt.Fprintln(w, "equal: the overrun was cut back to the reference;")
	}
	fmt.Fprintln(w, "equal as `bench infill` scores it: trimmed, first line only for single-line kinds;")
	fmt.Fprintln(w, "bytes: prefix + answer + suffix (the answer replacing the range it names) is the reference file byte for byte.")
}

// lossReasons lists the reasons r has losses for, in a fixed order.
func lossReasons(r fidelityReport) []string {
	var out []string
	for _, reason := range []string{lossRejected, lossTrimmed, lossEmptied, lossPolicy, lossWhitespace, lossSuffix, lossShort, lossOverrun, lossOther} {
		if r.Losses[reason]+r.ByteLosses[reason] > 0 {
			out = append(out, reason)
		}
	}
	return out
}
