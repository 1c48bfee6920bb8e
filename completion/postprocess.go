package completion

import (
	"strings"
	"unicode/utf8"
)

// endTokens end a candidate where they appear: what follows is padding.
var endTokens = []string{"<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|file_sep|>", "</s>"}

// padTokens are removed wherever they appear.
var padTokens = []string{"<|dlm_pad|>", "<|mask|>", "<|expand|>", "<|delete|>", "<|pad|>", "[MASK]"}

// Repetition loops: a unit of text repeated this many times in a row is
// cut to its first occurrence.
const (
	minRepeats     = 3
	maxRepeatLen   = 32 // longest unit looked for within lines, in bytes
	maxRepeatGroup = 4  // most lines in a repeated group
	// A unit shorter than shortUnit bytes within a line must repeat
	// shortRepeats times: code repeats short names ("n, n, n, n" in an
	// argument list) where a model's loop repeats longer ones.
	shortUnit    = 4
	shortRepeats = 5
)

// postprocess cleans one raw candidate for a cursor in mode m followed by
// suffix (the prompt's suffix, LF line endings): it strips special tokens,
// cuts the overlap with the suffix, keeps the first line in single-line
// mode, cuts repetition loops and trailing blank lines. It returns "" when
// nothing useful is left.
func postprocess(cand, suffix string, m mode) string {
	single := m.single
	cand = stripSpecial(cand)
	cand = strings.ReplaceAll(cand, "\r\n", "\n")
	cand = trimBlankTail(cand)
	cand = cutOverlap(cand, suffix, m.before)
	if single {
		if i := strings.IndexByte(cand, '\n'); i >= 0 {
			cand = cand[:i]
		}
		cand = cutOverlap(cand, suffix, m.before)
	}
	cand = cutRepeats(cand)
	cand = trimBlankTail(cand)
	switch {
	case m.ahead:
		// The suffix starts with the code the lines go ahead of.
		cand = cutPrematureCloser(cand, "\n"+m.before+suffix)
	case !single:
		cand = cutPrematureCloser(cand, suffix)
	}
	if m.ahead || atLineEnd(suffix) {
		// Nothing follows on the line (or the line is ended by finish):
		// trailing blanks are noise.
		cand = strings.TrimRight(cand, " \t\r")
	}
	if strings.TrimSpace(cand) == "" {
		return ""
	}
	return cand
}

// stripSpecial cuts s at the first end token and removes pad tokens and
// FIM control tokens (<|fim_...|>, <|fim_pad|> included), until none is
// left (removing one may join the halves of another).
func stripSpecial(s string) string {
	for {
		n := len(s)
		s = stripOnce(s)
		if len(s) == n {
			return s
		}
	}
}

func stripOnce(s string) string {
	for _, t := range endTokens {
		if i := strings.Index(s, t); i >= 0 {
			s = s[:i]
		}
	}
	if !strings.Contains(s, "<|") && !strings.Contains(s, "[MASK]") {
		return s
	}
	for _, t := range padTokens {
		s = strings.ReplaceAll(s, t, "")
	}
	if i := strings.Index(s, "<|fim_"); i >= 0 {
		j := strings.Index(s[i:], "|>")
		if j < 0 {
			return s[:i]
		}
		s = s[:i] + s[i+j+2:]
	}
	return s
}

// trimBlankTail removes trailing lines that hold only whitespace (and the
// newline before them).
func trimBlankTail(s string) string {
	for {
		i := strings.LastIndexByte(s, '\n')
		if i < 0 || strings.TrimSpace(s[i+1:]) != "" {
			return s
		}
		s = s[:i]
	}
}

// cutOverlap removes the longest end of cand that repeats the start of the
// suffix, or the start of the suffix's next non-blank line (the model wrote
// the closing line that already follows). An overlap is cut only when it
// holds more than whitespace, starts and ends on token boundaries (not
// inside a run of blanks either), and does not close a bracket or string
// that cand itself opened; an overlap with the next line must also not
// close one that the cursor's line (before, up to the cursor) opened, and
// when it starts a line of cand it must be indented as that line is.
func cutOverlap(cand, suffix, before string) string {
	if cand == "" || suffix == "" {
		return cand
	}
	if out, ok := cutOverlapWith(cand, suffix, "", false, ""); ok {
		return out
	}
	next := strings.TrimLeft(suffix, " \t\r\n")
	if gap := suffix[:len(suffix)-len(next)]; strings.ContainsRune(gap, '\n') {
		indent := gap[strings.LastIndexByte(gap, '\n')+1:]
		if out, ok := cutOverlapWith(cand, next, before, true, indent); ok {
			return strings.TrimRight(out, " \t\r\n")
		}
	}
	return cand
}

// cutOverlapWith cuts the longest end of cand that suffix starts with (see
// cutOverlap); nextLine says suffix is the next line's code, indented by
// indent, and before is the cursor's line up to the cursor.
func cutOverlapWith(cand, suffix, before string, nextLine bool, indent string) (string, bool) {
	for k := min(len(cand), len(suffix)); k > 0; k-- {
		ov := suffix[:k]
		if !strings.HasSuffix(cand, ov) || strings.TrimSpace(ov) == "" {
			continue
		}
		rest := cand[:len(cand)-k]
		if !utf8.RuneStart(ov[0]) {
			continue
		}
		// Token boundaries: "fo"+"o bar" is not an overlap of "o", nor
		// "        "+"    return" one of "    return".
		if isWord(ov[0]) && rest != "" && isWord(rest[len(rest)-1]) || isBlank(ov[0]) && rest != "" && isBlank(rest[len(rest)-1]) {
			continue
		}
		if isWord(ov[k-1]) && k < len(suffix) && isWord(suffix[k]) {
			continue
		}
		if !nextLine {
			if closesOwn(rest, ov) {
				continue
			}
			return rest, true
		}
		line := before + rest
		line = line[strings.LastIndexByte(line, '\n')+1:]
		if strings.TrimSpace(line) == "" && line != indent || closesOwn(before+rest, ov) {
			continue
		}
		return rest, true
	}
	return cand, false
}

// closesOwn reports whether a closing bracket or quote in ov closes one
// opened in rest: then ov is part of the candidate's own code ("g(x)"
// before ")"), not a copy of the suffix. Brackets inside strings are not
// counted; a string ends at its quote, or at the end of the line unless
// it is a raw one.
func closesOwn(rest, ov string) bool {
	var stack []byte
	base := -1 // brackets below this depth were opened in rest
	var quote byte
	quoteInRest := false // the string being read was opened in rest
	s := rest + ov
	for i := 0; i < len(s); i++ {
		if i == len(rest) {
			base = len(stack)
		}
		ch := s[i]
		if quote != 0 {
			switch {
			case ch == '\\' && quote != '`':
				i++ // an escaped quote does not close
			case ch == quote:
				if quoteInRest && i >= len(rest) {
					return true
				}
				quote = 0
			case ch == '\n' && quote != '`':
				quote = 0
			}
			continue
		}
		switch ch {
		case '(', '[', '{':
			stack = append(stack, ch)
		case ')', ']', '}':
			if len(stack) > 0 && stack[len(stack)-1] == opener(ch) {
				if base >= 0 && len(stack) <= base {
					return true
				}
				stack = stack[:len(stack)-1]
			}
		case '"', '\'', '`':
			quote, quoteInRest = ch, i < len(rest)
		}
	}
	return false
}

// atLineEnd reports whether suffix starts with the end of a line (blanks
// then a newline, or nothing).
// cutPrematureCloser drops the last line of a multi-line cand when it holds
// only closing brackets and the code after the cursor goes on indented
// deeper than it: the model closed a block whose body follows ("if n > 1
// {" then "}" above "\t\tfact = append(fact, n)"). Formatted code never
// has a line indented deeper right after a closing line, and a file
// without the block's first line is already unbalanced, so validation
// alone does not see it.
func cutPrematureCloser(cand, suffix string) string {
	nl, eol := strings.LastIndexByte(cand, '\n'), strings.IndexByte(suffix, '\n')
	if nl < 0 || eol < 0 || !atLineEnd(suffix) {
		return cand
	}
	last := cand[nl+1:]
	indent := last[:len(last)-len(strings.TrimLeft(last, " \t"))]
	if strings.Trim(last[len(indent):], "})], ;\t") != "" || strings.TrimSpace(last) == "" {
		return cand
	}
	for line := range strings.Lines(suffix[eol+1:]) {
		if strings.TrimSpace(line) == "" {
			continue
		}
		next := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		if len(next) > len(indent) && strings.HasPrefix(next, indent) {
			return strings.TrimRight(cand[:nl], " \t")
		}
		break
	}
	return cand
}

func atLineEnd(suffix string) bool {
	i := strings.IndexByte(suffix, '\n')
	if i < 0 {
		i = len(suffix)
	}
	return strings.TrimSpace(suffix[:i]) == ""
}

func isBlank(b byte) bool { return b == ' ' || b == '\t' }

func isWord(b byte) bool {
	return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= 0x80
}

// cutRepeats cuts a repetition loop to its first occurrence: a group of 1
// to maxRepeatGroup lines (not all blank) repeated minRepeats times in a
// row, or a unit of 2 to maxRepeatLen bytes that holds a letter and is not
// one byte over and over ("ffffff" is a colour), repeated minRepeats times
// in a row. Whatever follows the loop goes too: a model caught in one
// rarely recovers.
func cutRepeats(s string) string {
	lines := strings.SplitAfter(s, "\n")
	// The last line has no newline; compare lines without theirs.
	line := func(i int) string { return strings.TrimSuffix(lines[i], "\n") }
	for i := range lines {
		for g := 1; g <= maxRepeatGroup && i+minRepeats*g <= len(lines); g++ {
			blank := true
			for k := range g {
				blank = blank && strings.TrimSpace(line(i+k)) == ""
			}
			if blank {
				continue
			}
			same := true
			for r := 1; r < minRepeats && same; r++ {
				for k := 0; k < g && same; k++ {
					same = line(i+k) == line(i+r*g+k)
				}
			}
			if same {
				return strings.TrimSuffix(strings.Join(lines[:i+g], ""), "\n")
			}
		}
	}
	for i := 0; i < len(s); i++ {
		if !utf8.RuneStart(s[i]) {
			continue
		}
		for l := 2; l <= maxRepeatLen && i+minRepeats*l <= len(s); l++ {
			unit := s[i : i+l]
			if !utf8.RuneStart(s[i+l]) || !hasLetter(unit) || strings.Count(unit, unit[:1]) == l {
				continue
			}
			want := minRepeats
			if l < shortUnit {
				want = shortRepeats
			}
			if i+want*l > len(s) {
				continue
			}
			n := 1
			for n < want && s[i+n*l:i+(n+1)*l] == unit {
				n++
			}
			if n == want {
				return s[:i+l]
			}
		}
	}
	return s
}

// hasLoop reports whether a raw candidate holds a repetition loop that
// post-processing cuts (see cutRepeats).
func hasLoop(cand string) bool {
	s := strings.ReplaceAll(stripSpecial(cand), "\r\n", "\n")
	return cutRepeats(s) != s
}

func hasLetter(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= 0x80 {
			return true
		}
	}
	return false
}
