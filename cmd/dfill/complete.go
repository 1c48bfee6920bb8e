package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dfill/dfill/cmd/dfill/internal/cli"
	"github.com/dfill/dfill/completion"
)

// completeOutput is what `dfill complete --json` prints (DESIGN.md).
type completeOutput struct {
	Completions []completeItem     `json:"completions"`
	Model       string             `json:"model"`
	TimingsMS   map[string]float64 `json:"timings_ms"`
}

type completeItem struct {
	Text       string    `json:"text"`
	Range      lineRange `json:"range"`
	Confidence float64   `json:"confidence"`
	Score      float64   `json:"score"`
	Steps      int       `json:"steps"`
}

type lineRange struct {
	Start lineCol `json:"start"`
	End   lineCol `json:"end"`
}

// lineCol is a 1-based line and a 1-based byte column, as the command takes.
type lineCol struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

// completeFlags are the flags of `dfill complete`.
type completeFlags struct {
	shared     cli.Shared
	asJSON     bool
	maxTokens  int
	n          int
	threshold  float64
	minScore   float64
	noValidate bool
}

func completeCommand() *cli.Command {
	f := &completeFlags{}
	return &cli.Command{
		Name:    "complete",
		Args:    "FILE:LINE:COL",
		NArgs:   1,
		Summary: "one completion at FILE:LINE:COL (1-based; COL counts bytes), as text or --json",
		Shared:  &f.shared,
		Flags:   f.register,
		Run:     func(ctx context.Context, args []string) error { return f.run(ctx, args[0]) },
	}
}

func (f *completeFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.asJSON, "json", false, "print JSON")
	fs.IntVar(&f.maxTokens, "max-tokens", 32, "longest span to fill, in tokens")
	fs.IntVar(&f.n, "n", 1, "candidates to return (more than 1 acts as an explicit invocation)")
	fs.Float64Var(&f.threshold, "threshold", 0, "confidence threshold (0: the default 0.9)")
	fs.Float64Var(&f.minScore, "min-score", 0, "least score of the completion shown, as for an automatic request in an editor (negative: the model's calibrated threshold; 0: the best, whatever its score)")
	fs.BoolVar(&f.noValidate, "no-validate", false, "return candidates without the syntax check (to see what a model proposes)")
}

// run completes at pos (FILE:LINE:COL) and prints the completions.
func (f *completeFlags) run(ctx context.Context, pos string) error {
	path, line, col, err := parseFilePos(pos)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	text := string(data)
	offset, err := offsetOf(text, line, col)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}

	log, err := f.shared.Logger()
	if err != nil {
		return err
	}
	defer log.Sync()
	start := time.Now()
	gen, release, err := newGenerator(ctx, generatorConfig{Model: f.shared.Model, Backend: f.shared.Backend, Threads: f.shared.Threads, Remote: remoteFlags(&f.shared)}, log)
	if err != nil {
		return err
	}
	defer release()
	load := time.Since(start)

	c := completion.New(gen, completion.Options{
		MaxTokens: f.maxTokens, Steps: f.shared.Steps, Algorithm: f.shared.Algorithm, Threshold: f.threshold,
		MinScore: f.minScore, SkipValidation: f.noValidate,
	}, log)
	abs, _ := filepath.Abs(path)
	res, err := c.Complete(ctx, completion.Request{
		URI: "file://" + filepath.ToSlash(abs), Path: path, Text: text, Offset: offset, Invoked: f.n > 1,
	})
	if err != nil {
		return err
	}
	if len(res.Items) > f.n {
		res.Items = res.Items[:f.n]
	}
	if f.asJSON {
		return cli.PrintJSON(completeJSON(gen.Name(), text, load, res))
	}
	if len(res.Items) == 0 {
		fmt.Fprintln(os.Stderr, "dfill complete: no completion passed validation (and --min-score)")
		return cli.ExitCode(1)
	}
	for i, it := range res.Items {
		if i > 0 {
			fmt.Println("----")
		}
		fmt.Println(it.Insert)
	}
	return nil
}

// completeJSON is what --json prints for res, a completion in text by the
// model named model, loaded in load.
func completeJSON(model, text string, load time.Duration, res completion.Result) completeOutput {
	out := completeOutput{Completions: []completeItem{}, Model: model, TimingsMS: map[string]float64{
		"load":     cli.Millis(load),
		"prompt":   cli.Millis(res.Timings.Prompt),
		"denoise":  cli.Millis(res.Timings.Generate),
		"validate": cli.Millis(res.Timings.Validate),
		"total":    cli.Millis(res.Timings.Total),
	}}
	for _, it := range res.Items {
		out.Completions = append(out.Completions, completeItem{
			Text:       it.Insert,
			Range:      lineRange{Start: lineColOf(text, it.Start), End: lineColOf(text, it.End)},
			Confidence: it.Confidence,
			Score:      it.Score,
			Steps:      it.Steps,
		})
	}
	return out
}

// parseFilePos splits FILE:LINE:COL (the file name may itself hold colons).
func parseFilePos(s string) (path string, line, col int, err error) {
	i := strings.LastIndexByte(s, ':')
	j := -1
	if i > 0 {
		j = strings.LastIndexByte(s[:i], ':')
	}
	if j <= 0 {
		return "", 0, 0, fmt.Errorf("%q: want FILE:LINE:COL", s)
	}
	line, err1 := strconv.Atoi(s[j+1 : i])
	col, err2 := strconv.Atoi(s[i+1:])
	if err1 != nil || err2 != nil || line < 1 || col < 1 {
		return "", 0, 0, fmt.Errorf("%q: LINE and COL must be numbers from 1", s)
	}
	return s[:j], line, col, nil
}

// offsetOf returns the byte offset of 1-based line and byte column in text.
// A line or column outside the text is an error that names its extent:
// completing somewhere else would answer for a place nobody asked about.
func offsetOf(text string, line, col int) (int, error) {
	lines := strings.Count(text, "\n") + 1
	if line < 1 || line > lines {
		return 0, fmt.Errorf("line %d is outside the file, which has lines 1 to %d", line, lines)
	}
	off := 0
	for l := 1; l < line; l++ {
		off += strings.IndexByte(text[off:], '\n') + 1
	}
	end := strings.IndexByte(text[off:], '\n')
	if end < 0 {
		end = len(text) - off
	}
	if end > 0 && text[off+end-1] == '\r' {
		end--
	}
	if col < 1 || col > end+1 {
		return 0, fmt.Errorf("column %d is outside line %d (%d bytes long: columns 1 to %d)", col, line, end, end+1)
	}
	return off + col - 1, nil
}

// lineColOf is offsetOf's inverse.
func lineColOf(text string, off int) lineCol {
	off = min(max(off, 0), len(text))
	line := 1 + strings.Count(text[:off], "\n")
	return lineCol{Line: line, Column: off - (strings.LastIndexByte(text[:off], '\n') + 1) + 1}
}
