package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/dfill/dfill/engine"
)

// The finish reasons of a choice.
const (
	finishStop   = "stop"   // the model ended the span early, or a stop sequence cut it
	finishLength = "length" // the model filled all max_tokens positions
)

// result is one finished generation.
type result struct {
	text   string
	finish string
	tokens int // completion tokens
	steps  int // denoising steps taken
	// pieces are the answer's tokens as text (see tokenTexts), or its
	// runes for a model that cannot say.
	pieces []string
}

// tokenTexts is a Model that can give each token of an answer as text.
type tokenTexts interface {
	TokenTexts(ids []int32) []string
}

// errStopSequence cancels a generation whose committed text already holds
// a stop sequence: nothing after it can change the answer.
var errStopSequence = errors.New("stop sequence reached")

// generate runs j on m. onStep, if not nil, is called after each
// denoising step with the step and the text committed so far from the
// span's start (see committed). A stop sequence in the committed text ends
// the generation there, without the remaining steps.
func generate(ctx context.Context, m Model, j job, onStep func(st engine.Step, committed string)) (result, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		stopped  bool
		stopText string
		steps    int
	)
	step := func(st engine.Step) {
		if stopped {
			return
		}
		steps = st.Step
		c := committed(st.Text)
		if i, ok := indexStop(c, j.stops); ok {
			stopped, stopText, c = true, c[:i], c[:i]
			cancel(errStopSequence)
		}
		if onStep != nil {
			onStep(st, c)
		}
	}
	cands, err := m.Infill(ctx, j.prompt, j.opt, step)
	if stopped { // Infill returned the cancellation, or ended at that step
		return result{text: stopText, finish: finishStop, tokens: m.CountTokens(stopText), steps: steps, pieces: runePieces(stopText)}, nil
	}
	if err != nil {
		return result{}, err
	}
	if len(cands) == 0 {
		return result{}, fmt.Errorf("model %s returned no candidate for a span of %d", m.Name(), j.maxTokens)
	}
	c := cands[0]
	res := result{text: c.Text, finish: finishLength, tokens: c.Content, steps: c.Steps}
	if c.Content < len(c.Tokens) {
		res.finish = finishStop // the span ends with end tokens
	}
	if i, ok := indexStop(res.text, j.stops); ok {
		res.text, res.finish, res.tokens = res.text[:i], finishStop, m.CountTokens(res.text[:i])
	}
	res.pieces = runePieces(res.text)
	if tt, ok := m.(tokenTexts); ok {
		res.pieces = cutPieces(tt.TokenTexts(c.Tokens[:c.Content]), len(res.text))
	}
	return res, nil
}

// runePieces returns s split into runes.
func runePieces(s string) []string {
	var out []string
	for _, r := range s {
		out = append(out, string(r))
	}
	return out
}

// cutPieces returns the pieces that make up the first n bytes of their
// concatenation, the last one cut short where n falls inside it.
func cutPieces(pieces []string, n int) []string {
	var out []string
	for _, p := range pieces {
		if n <= 0 {
			break
		}
		if len(p) > n {
			p = p[:n]
		}
		if p != "" {
			out = append(out, p)
		}
		n -= len(p)
	}
	return out
}

// committed returns the text of a denoising step up to its first masked
// position: the part of the answer no later step changes, since the
// engine never re-masks a committed token. (Text the model writes that
// happens to hold engine.MaskGlyph only cuts it shorter.)
func committed(stepText string) string {
	if i := strings.Index(stepText, engine.MaskGlyph); i >= 0 {
		return stepText[:i]
	}
	return stepText
}

// indexStop returns where the first stop sequence in text begins.
func indexStop(text string, stops []string) (int, bool) {
	first := -1
	for _, s := range stops {
		if i := strings.Index(text, s); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	return first, first >= 0
}

// streamable returns the longest prefix of committed text c that can be
// sent before the answer is finished: without a tail that may begin a
// stop sequence (the next tokens could complete it, and the answer would
// end before it), and without an incomplete UTF-8 sequence at the end (a
// token may hold part of a character).
func streamable(c string, stops []string) string {
	cut := len(c)
	for _, s := range stops {
		for n := min(len(s)-1, len(c)); n > 0; n-- {
			if strings.HasSuffix(c, s[:n]) {
				cut = min(cut, len(c)-n)
				break
			}
		}
	}
	c = c[:cut]
	// Hold back the last rune when it is incomplete (at most
	// utf8.UTFMax-1 bytes of it can be there).
	for n := 1; n < utf8.UTFMax && n <= len(c); n++ {
		if utf8.RuneStart(c[len(c)-n]) {
			if !utf8.FullRuneInString(c[len(c)-n:]) {
				c = c[:len(c)-n]
			}
			break
		}
	}
	return c
}
