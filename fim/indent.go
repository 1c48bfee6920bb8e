package fim

import "strings"

// Go is indented with tabs (gofmt), and a model trained on Go has seen
// little else. A Go buffer indented with spaces (pasted code, a snippet
// from a web page, HumanEval-X) is shown to the model with tabs, one per
// indent unit, and Restore turns the answer's tabs back into the buffer's
// spaces.

// tabLanguages are the languages whose prompts use tab indentation.
var tabLanguages = map[string]bool{"go": true}

// spaceIndentUnit returns the number of spaces one indent level takes in
// texts that indent with spaces only, or 0 when a line is indented with a
// tab, no line is indented, or the smallest indentation is not 2, 4 or 8
// spaces (alignment, not indentation).
func spaceIndentUnit(texts ...string) int {
	unit := 0
	for _, text := range texts {
		for line := range strings.SplitSeq(text, "\n") {
			n := len(line) - len(strings.TrimLeft(line, " "))
			if n < len(line) && line[n] == '\t' {
				return 0
			}
			if n > 0 && n < len(line) && (unit == 0 || n < unit) {
				unit = n
			}
		}
	}
	if unit != 2 && unit != 4 && unit != 8 {
		return 0
	}
	return unit
}

// tabIndent replaces each whole indent unit of leading spaces with a tab,
// on every line of text, or every line but the first when first is false.
func tabIndent(text string, unit int, first bool) string {
	return mapIndent(text, first, " ", func(n int) (string, int) { return strings.Repeat("\t", n/unit), n / unit * unit })
}

// spaceIndent is tabIndent's inverse: each leading tab becomes unit
// spaces.
func spaceIndent(text string, unit int, first bool) string {
	return mapIndent(text, first, "\t", func(n int) (string, int) { return strings.Repeat(" ", n*unit), n })
}

// mapIndent rewrites the leading run of the characters in blank on each
// line of text (all lines but the first when first is false): with n of
// them, replace returns the new indentation and how many of the n it
// stands for.
func mapIndent(text string, first bool, blank string, replace func(n int) (string, int)) string {
	var b strings.Builder
	b.Grow(len(text))
	for i, line := range strings.Split(text, "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		if i > 0 || first {
			indent, used := replace(len(line) - len(strings.TrimLeft(line, blank)))
			b.WriteString(indent)
			line = line[used:]
		}
		b.WriteString(line)
	}
	return b.String()
}
