// Package fim builds infill prompts: it cuts the prefix and suffix around
// the cursor to a token budget on whole lines, adds context snippets from
// other files inside their own budget, and normalises line endings.
// It is pure: no I/O.
package fim

import (
	"path"
	"strings"
	"unicode/utf8"
)

// Prompt is the text around the span the model fills.
type Prompt struct {
	Prefix string // context snippets, then the text before the cursor (LF line endings)
	Suffix string // the text after the cursor (LF line endings)
	CRLF   bool   // the document used CRLF; Restore puts it back in answers
	// IndentUnit, when not 0, is the number of spaces of one indent level
	// of a document that the prompt shows indented with tabs (Go, which
	// gofmt indents with tabs); Restore puts the spaces back.
	IndentUnit int

	// ContextLen is how many bytes at the start of Prefix are context
	// snippets; Prefix[ContextLen:] is the text before the cursor.
	ContextLen int
	// Offset is the cursor's byte offset in Input.Text after clamping.
	Offset int
	// Path and LanguageID are copied from the Input, for templates that
	// name the file (remote FIM endpoints).
	Path, LanguageID string
}

// Restore turns an answer back into the document's conventions: tabs at
// the start of its lines into IndentUnit spaces (the first line too when
// the cursor follows only blanks on its line), LF line endings into CRLF
// when the document used CRLF.
func (p Prompt) Restore(s string) string {
	if p.IndentUnit > 0 {
		lastLine := p.Prefix[strings.LastIndexByte(p.Prefix, '\n')+1:]
		s = spaceIndent(s, p.IndentUnit, strings.Trim(lastLine, " \t") == "")
	}
	if !p.CRLF || !strings.Contains(s, "\n") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// Snippet is context from another file (a definition, a recently edited
// chunk) found by the caller.
type Snippet struct {
	Path string // shown in a comment header above the text
	Text string
}

// Input is what a prompt is built from.
type Input struct {
	Text       string // the whole document
	Offset     int    // byte offset of the cursor in Text (clamped)
	Path       string // the document's path, if known
	LanguageID string // LSP language id; empty means guess from Path
	Snippets   []Snippet
}

// Budget bounds the parts of a prompt, in tokens.
type Budget struct {
	Prefix  int // text before the cursor
	Suffix  int // text after the cursor
	Context int // snippets from other files
}

// maxBytesPerToken bounds the bytes of text one token may stand for, as
// far as Build looks: the windows never reach further from the cursor than
// this many bytes per token of budget.
const maxBytesPerToken = 64

// ApproxTokens estimates a token count as a quarter of the byte length; it
// is the counter Build uses when given none.
func ApproxTokens(s string) int { return len(s) / 4 }

// Build cuts the text around in.Offset to the budget b and lays the prompt
// out as snippets, prefix, suffix. count returns the token count of a string
// (nil: ApproxTokens).
//
// The suffix is cut first, on whole lines after the rest of the cursor's
// line; then snippets are added whole, most relevant first, while they fit
// b.Context; then the prefix is cut on whole lines before the cursor's
// line, to b.Prefix plus whatever the suffix and snippets left unused.
// Neither window reaches further from the cursor than maxBytesPerToken
// bytes a token of the whole budget, and CRLF is judged within that. The
// partial lines at the cursor are kept whole when they fit and cut at a rune
// boundary (far side first) when they alone exceed their budget. CRLF line
// endings become LF (Prompt.CRLF records it). Offsets outside Text are
// clamped, and an offset inside a CRLF pair or a UTF-8 sequence moves back
// to its start.
func Build(in Input, b Budget, count func(string) int) Prompt {
	if count == nil {
		count = ApproxTokens
	}
	b.Prefix, b.Suffix, b.Context = max(b.Prefix, 0), max(b.Suffix, 0), max(b.Context, 0)
	off := ClampOffset(in.Text, in.Offset)
	lang := in.LanguageID
	if lang == "" {
		lang = LanguageFromPath(in.Path)
	}
	// No window can hold more than maxBytesPerToken bytes a token, so the
	// text beyond that need not be looked at (nor copied to normalise it).
	reach := (b.Prefix+b.Suffix+b.Context+1)*maxBytesPerToken + 4096
	before, after := in.Text[:off], in.Text[off:]
	if len(before) > reach {
		cut := len(before) - reach
		if i := strings.IndexByte(before[cut:], '\n'); i >= 0 {
			cut += i + 1
		}
		before = before[cut:]
	}
	if len(after) > reach {
		cut := reach
		if i := strings.LastIndexByte(after[:cut], '\n'); i >= 0 {
			cut = i + 1
		}
		after = after[:cut]
	}
	p := Prompt{
		// Whether the document uses CRLF is judged near the cursor.
		CRLF:       strings.Contains(before, "\r\n") || strings.Contains(after, "\r\n"),
		Offset:     off,
		Path:       in.Path,
		LanguageID: lang,
	}
	if p.CRLF {
		before = strings.ReplaceAll(before, "\r\n", "\n")
		after = strings.ReplaceAll(after, "\r\n", "\n")
	}
	if tabLanguages[lang] {
		if unit := spaceIndentUnit(before, after); unit > 0 {
			p.IndentUnit = unit
			// before starts at a line start; after's first line is the
			// rest of the cursor's line, indentation only when the cursor
			// is at its start.
			atStart := before == "" || strings.HasSuffix(before, "\n")
			before = tabIndent(before, unit, true)
			after = tabIndent(after, unit, atStart)
		}
	}

	p.Suffix = suffixWindow(after, b.Suffix, count)
	spare := b.Suffix - count(p.Suffix)
	ctx := contextBlock(in.Snippets, lang, b.Context, count)
	spare += b.Context - count(ctx)
	prefix := prefixWindow(before, b.Prefix+max(spare, 0), count)
	p.Prefix = ctx + prefix
	p.ContextLen = len(ctx)
	return p
}

// ClampOffset returns off moved into [0, len(text)], out of the middle of a
// CRLF pair and back to the start of a UTF-8 sequence it points into.
func ClampOffset(text string, off int) int {
	off = min(max(off, 0), len(text))
	if off > 0 && off < len(text) && text[off-1] == '\r' && text[off] == '\n' {
		off--
	}
	// At most three continuation bytes follow a rune's first byte; in
	// invalid UTF-8 (stray continuation bytes) off stays where it was.
	back := off
	for i := 0; i < utf8.UTFMax-1 && back > 0 && back < len(text) && !utf8.RuneStart(text[back]); i++ {
		back--
	}
	if back < len(text) && utf8.RuneStart(text[back]) {
		off = back
	}
	return off
}

// prefixWindow returns the longest suffix of before made of the partial
// line at its end and whole lines before it that fits budget.
func prefixWindow(before string, budget int, count func(string) int) string {
	partial := strings.LastIndexByte(before, '\n') + 1
	if count(before[partial:]) > budget {
		return cutFront(before[partial:], budget, count)
	}
	// start(k) is where the window holding k whole lines before the partial
	// line starts; starts caches the ones found so far.
	starts := []int{partial}
	start := func(k int) (int, bool) {
		for len(starts) <= k {
			last := starts[len(starts)-1]
			if last == 0 {
				return 0, false
			}
			starts = append(starts, strings.LastIndexByte(before[:last-1], '\n')+1)
		}
		return starts[k], true
	}
	fits := func(k int) bool {
		s, ok := start(k)
		return ok && count(before[s:]) <= budget
	}
	k := galloping(fits)
	s, _ := start(k)
	return before[s:]
}

// suffixWindow returns the longest prefix of after made of the rest of the
// cursor's line and whole lines after it that fits budget.
func suffixWindow(after string, budget int, count func(string) int) string {
	first := len(after)
	if i := strings.IndexByte(after, '\n'); i >= 0 {
		first = i + 1
	}
	if count(after[:first]) > budget {
		return cutBack(after[:first], budget, count)
	}
	ends := []int{first}
	end := func(k int) (int, bool) {
		for len(ends) <= k {
			last := ends[len(ends)-1]
			if last == len(after) {
				return 0, false
			}
			next := len(after)
			if i := strings.IndexByte(after[last:], '\n'); i >= 0 {
				next = last + i + 1
			}
			ends = append(ends, next)
		}
		return ends[k], true
	}
	fits := func(k int) bool {
		e, ok := end(k)
		return ok && count(after[:e]) <= budget
	}
	k := galloping(fits)
	e, _ := end(k)
	return after[:e]
}

// galloping returns the largest k ≥ 0 with fits(k), given fits(0) and that
// fits is monotone (true up to some k, false after). It calls fits
// O(log k) times.
func galloping(fits func(int) bool) int {
	lo, hi := 0, 1
	for fits(hi) {
		lo, hi = hi, hi*2
	}
	// fits(lo) and !fits(hi)
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if fits(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// cutFront returns the longest suffix of s, starting at a rune boundary,
// that fits budget.
func cutFront(s string, budget int, count func(string) int) string {
	lo, hi := 0, len(s) // s[hi:] fits (empty), find the smallest start that fits
	for lo < hi {
		mid := lo + (hi-lo)/2
		if count(s[mid:]) <= budget {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	for hi < len(s) && !utf8.RuneStart(s[hi]) {
		hi++
	}
	return s[hi:]
}

// cutBack returns the longest prefix of s, ending at a rune boundary, that
// fits budget.
func cutBack(s string, budget int, count func(string) int) string {
	lo, hi := 0, len(s) // s[:lo] fits, find the largest end that fits
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if count(s[:mid]) <= budget {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	for lo > 0 && lo < len(s) && !utf8.RuneStart(s[lo]) {
		lo--
	}
	return s[:lo]
}

// contextBlock lays out the snippets that fit budget, each under a comment
// header naming its path, most relevant (first) first.
func contextBlock(snippets []Snippet, lang string, budget int, count func(string) int) string {
	if len(snippets) == 0 || budget <= 0 {
		return ""
	}
	open, close := CommentMarkers(lang)
	var sb strings.Builder
	for _, s := range snippets {
		// A trailing lone CR would pair with the newline added below.
		text := strings.TrimRight(strings.ReplaceAll(s.Text, "\r\n", "\n"), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		var one strings.Builder
		one.WriteString(open)
		one.WriteByte(' ')
		// A path with a newline would end the comment early.
		one.WriteString(strings.NewReplacer("\n", " ", "\r", " ").Replace(s.Path))
		one.WriteString(close)
		one.WriteByte('\n')
		one.WriteString(text)
		if !strings.HasSuffix(text, "\n") {
			one.WriteByte('\n')
		}
		if count(sb.String()+one.String()) <= budget {
			sb.WriteString(one.String())
		}
	}
	return sb.String()
}

// comments maps an LSP language id to its comment markers (open, close);
// languages absent from it use "//".
var comments = map[string][2]string{
	"python":      {"#", ""},
	"ruby":        {"#", ""},
	"shellscript": {"#", ""},
	"sh":          {"#", ""},
	"bash":        {"#", ""},
	"perl":        {"#", ""},
	"r":           {"#", ""},
	"yaml":        {"#", ""},
	"toml":        {"#", ""},
	"dockerfile":  {"#", ""},
	"makefile":    {"#", ""},
	"cmake":       {"#", ""},
	"elixir":      {"#", ""},
	"nix":         {"#", ""},
	"powershell":  {"#", ""},
	"julia":       {"#", ""},
	"lua":         {"--", ""},
	"sql":         {"--", ""},
	"haskell":     {"--", ""},
	"elm":         {"--", ""},
	"clojure":     {";;", ""},
	"lisp":        {";;", ""},
	"scheme":      {";;", ""},
	"elisp":       {";;", ""},
	"emacs-lisp":  {";;", ""},
	"erlang":      {"%", ""},
	"latex":       {"%", ""},
	"tex":         {"%", ""},
	"matlab":      {"%", ""},
	"vim":         {"\"", ""},
	"html":        {"<!--", " -->"},
	"xml":         {"<!--", " -->"},
	"markdown":    {"<!--", " -->"},
	"vue":         {"<!--", " -->"},
	"svelte":      {"<!--", " -->"},
	"css":         {"/*", " */"},
	"ocaml":       {"(*", " *)"},
}

// CommentMarkers returns the line-comment opener of an LSP language id and,
// for languages with only block comments, the closer ("" otherwise). The
// default is "//".
func CommentMarkers(languageID string) (open, close string) {
	if m, ok := comments[languageID]; ok {
		return m[0], m[1]
	}
	return "//", ""
}

// extensions maps a file extension to an LSP language id.
var extensions = map[string]string{
	".go": "go", ".py": "python", ".pyi": "python",
	".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascriptreact",
	".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "typescriptreact",
	".rs": "rust", ".c": "c", ".h": "c",
	".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".c++": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp",
	".cu": "cuda-cpp", ".cuh": "cuda-cpp",
	".java": "java", ".rb": "ruby", ".sh": "shellscript", ".bash": "shellscript",
	".lua": "lua", ".sql": "sql", ".hs": "haskell", ".html": "html", ".xml": "xml",
	".md": "markdown", ".css": "css", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml",
	".ml": "ocaml", ".el": "emacs-lisp", ".clj": "clojure", ".ex": "elixir", ".exs": "elixir",
	".erl": "erlang", ".tex": "latex", ".vim": "vim", ".r": "r", ".pl": "perl",
	".kt": "kotlin", ".swift": "swift", ".cs": "csharp", ".php": "php", ".scala": "scala",
}

// LanguageFromPath guesses an LSP language id from a file path's extension
// ("" when unknown). It is dfill's one table of extensions: everything
// else works with language ids.
func LanguageFromPath(p string) string {
	switch path.Base(strings.ReplaceAll(p, "\\", "/")) {
	case "Makefile", "makefile", "GNUmakefile":
		return "makefile"
	case "Dockerfile":
		return "dockerfile"
	}
	return extensions[strings.ToLower(path.Ext(p))]
}
