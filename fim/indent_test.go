package fim

import (
	"strings"
	"testing"
)

// TestSpaceIndentedGo checks that a Go document indented with spaces is
// shown to the model with tabs, and that Restore gives answers the
// document's spaces back, CRLF included; tab-indented Go and other
// languages are left alone.
func TestSpaceIndentedGo(t *testing.T) {
	const spaces = "package p\n\nfunc f(xs []int) int {\n    s := 0\n    for _, x := range xs {\n        |\n    }\n    return s\n}\n"
	tests := []struct {
		name, doc, lang string
		unit            int
		prefixEnd       string // the end of the prompt's prefix
		suffixStart     string
		answer, want    string // a model answer and what Restore makes of it
	}{
		{name: "four spaces", doc: spaces, lang: "go", unit: 4,
			prefixEnd: "{\n\ts := 0\n\tfor _, x := range xs {\n\t\t", suffixStart: "\n\t}\n\treturn s\n}",
			answer: "s += x\n\t\tif s > 9 {\n\t\t\tbreak\n\t\t}", want: "s += x\n        if s > 9 {\n            break\n        }"},
		{name: "two spaces, cursor at column 0", doc: "package p\n\nfunc f() {\n  a()\n|\n  b()\n}\n", lang: "go", unit: 2,
			prefixEnd: "{\n\ta()\n", suffixStart: "\n\tb()\n}",
			answer: "\tc()\n\td()", want: "  c()\n  d()"},
		{name: "code before the cursor", doc: "package p\n\nfunc f() {\n    x := g(|)\n}\n", lang: "go", unit: 4,
			prefixEnd: "{\n\tx := g(", suffixStart: ")\n}",
			answer: "a,\n\tb", want: "a,\n    b"},
		{name: "tabs already", doc: strings.ReplaceAll(spaces, "    ", "\t"), lang: "go",
			prefixEnd: "{\n\ts := 0\n\tfor _, x := range xs {\n\t\t", suffixStart: "\n\t}",
			answer: "s += x\n\t\tbreak", want: "s += x\n\t\tbreak"},
		{name: "python keeps spaces", doc: "def f(xs):\n    s = 0\n    for x in xs:\n        |\n    return s\n", lang: "python",
			prefixEnd: "for x in xs:\n        ", suffixStart: "\n    return s",
			answer: "s += x", want: "s += x"},
		{name: "alignment is not indentation", doc: "package p\n\nvar x = f(1,\n         2|)\n", lang: "go",
			prefixEnd: "f(1,\n         2", suffixStart: ")",
			answer: "3", want: "3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := strings.Index(tt.doc, "|")
			text := tt.doc[:i] + tt.doc[i+1:]
			p := Build(Input{Text: text, Offset: i, LanguageID: tt.lang}, Budget{Prefix: 500, Suffix: 500}, nil)
			if p.IndentUnit != tt.unit {
				t.Errorf("IndentUnit = %d, want %d", p.IndentUnit, tt.unit)
			}
			if !strings.HasSuffix(p.Prefix, tt.prefixEnd) {
				t.Errorf("prefix %q does not end with %q", p.Prefix, tt.prefixEnd)
			}
			if !strings.HasPrefix(p.Suffix, tt.suffixStart) {
				t.Errorf("suffix %q does not start with %q", p.Suffix, tt.suffixStart)
			}
			if got := p.Restore(tt.answer); got != tt.want {
				t.Errorf("Restore(%q) = %q, want %q", tt.answer, got, tt.want)
			}
			crlf := Build(Input{Text: strings.ReplaceAll(text, "\n", "\r\n"), Offset: i + strings.Count(text[:i], "\n"), LanguageID: tt.lang},
				Budget{Prefix: 500, Suffix: 500}, nil)
			if got, want := crlf.Restore(tt.answer), strings.ReplaceAll(tt.want, "\n", "\r\n"); got != want {
				t.Errorf("CRLF document: Restore(%q) = %q, want %q", tt.answer, got, want)
			}
		})
	}
}
