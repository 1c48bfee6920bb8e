package completion

import (
	"strings"
)

// Span lengths, in tokens, when Options.MaxTokens is 0, and the cap of a
// single-line span: 32 tokens hold a line of about 80 to 110 characters,
// and fit one block of the engine's cache, so a single-line completion
// costs one full forward pass and a few over the span.
const (
	DefaultMaxTokens    = 96
	maxSingleLineTokens = 32
)

// mode is what kind of completion a cursor calls for.
type mode struct {
	single bool // complete the rest of the line only
	// end is where the item's range ends: the cursor, or the end of the
	// line when only closing characters follow the cursor on its line.
	end int
	// closers is text[cursor:end] (the closing characters the item
	// replaces and so must put back).
	closers string
	// ahead is set when the cursor stands in a line's indentation with
	// code after it (HumanEval's cursor, or the user's at the start of a
	// line): the completion is whole lines inserted ahead of that code,
	// so it ends in a newline and the blanks before the cursor, which the
	// code after the cursor keeps.
	ahead bool
	// before is the cursor's line before the cursor.
	before string
}

// closingChars may follow the cursor on its line without forcing the
// completion to stop before them.
const closingChars = ")]}\"'`;,"

// decideMode returns the mode for a cursor at off in text (a document in
// languageID). off must be a valid offset.
func decideMode(text string, off int, languageID string) mode {
	lineStart := strings.LastIndexByte(text[:off], '\n') + 1
	eol := len(text)
	if i := strings.IndexByte(text[off:], '\n'); i >= 0 {
		eol = off + i
	}
	if eol > off && text[eol-1] == '\r' {
		eol--
	}
	before := text[lineStart:off]
	rest := text[off:eol]
	restCode := strings.TrimSpace(rest)

	m := mode{end: off, before: before}
	if restCode != "" && strings.TrimSpace(before) == "" {
		// Lines ahead of the code on the cursor's line, closing brackets
		// ("}" of a block the lines go in) included.
		m.ahead = true
		return m
	}
	onlyClosers := restCode != "" && strings.Trim(restCode, closingChars+" \t") == ""
	if onlyClosers {
		m.end = eol
		m.closers = rest
	}
	switch {
	case restCode != "" && !onlyClosers:
		m.single = true // code follows the cursor on its line
	case strings.TrimSpace(before) == "":
		m.single = false // an empty or whitespace-only line
	case opensBlock(before, languageID):
		m.single = false
	default:
		m.single = true
	}
	return m
}

// opensBlock reports whether a line ending in before opens a block: `{`,
// `(` or `[` at its end, or `:` in Python.
func opensBlock(before, languageID string) bool {
	b := strings.TrimRight(before, " \t")
	if b == "" {
		return false
	}
	switch b[len(b)-1] {
	case '{', '(', '[':
		return true
	case ':':
		return languageID == "python"
	}
	return false
}

// finish turns a post-processed candidate into the text that replaces
// [cursor, m.end): when the item replaces closing characters, the ones the
// candidate does not close itself are put back after it; lines ahead of
// code end in a newline and the cursor's indent.
func finish(cand string, m mode) string {
	switch {
	case m.ahead:
		return cand + "\n" + m.before
	case m.closers == "":
		return cand
	}
	return cand + unclosed(cand, m.closers)
}

// unclosed returns the part of closers (the text that followed the cursor
// on its line) that cand does not already close: cand is scanned for
// closing characters that match no opener inside cand itself, and each one
// consumes the next closer of the line in order.
func unclosed(cand, closers string) string {
	// next is the index in closers of the next closing character to match,
	// cut the end of the last one matched.
	next, cut := skipSpace(closers, 0), 0
	consume := func() {
		cut = next + 1
		next = skipSpace(closers, cut)
	}
	var stack []byte
	for i := 0; i < len(cand) && next < len(closers); i++ {
		ch := cand[i]
		switch ch {
		case '(', '[', '{':
			stack = append(stack, ch)
		case ')', ']', '}':
			if len(stack) > 0 && stack[len(stack)-1] == opener(ch) {
				stack = stack[:len(stack)-1]
			} else if len(stack) == 0 && closers[next] == ch {
				consume()
			}
		case '"', '\'', '`':
			switch {
			case len(stack) > 0 && stack[len(stack)-1] == ch:
				stack = stack[:len(stack)-1]
			case len(stack) == 0 && closers[next] == ch:
				consume()
			default:
				stack = append(stack, ch)
			}
		case ';', ',':
			if len(stack) == 0 && closers[next] == ch {
				consume()
			}
		}
	}
	if next >= len(closers) {
		return ""
	}
	return closers[cut:]
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// opener returns the opening bracket of a closing one.
func opener(closer byte) byte {
	switch closer {
	case ')':
		return '('
	case ']':
		return '['
	case '}':
		return '{'
	}
	return closer
}
