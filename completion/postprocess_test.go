package completion

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPostprocess(t *testing.T) {
	tests := []struct {
		name          string
		cand          string
		suffix        string
		single, ahead bool
		before        string // the cursor's line before the cursor
		want          string
	}{
		{name: "plain", cand: "x + 1", want: "x + 1"},
		{name: "a short name repeated in code kept", cand: `fmt.Sprintf("%d%d%d%d", n,n,n,n)`, single: true, want: `fmt.Sprintf("%d%d%d%d", n,n,n,n)`},
		{name: "a short unit looping", cand: "x,x,x,x,x,x,x", single: true, want: "x,"},
		{name: "a closer above the body it closes", cand: "if n > 1 {\n\t}", suffix: "\n\t\tfact = append(fact, n)\n\t}\n", want: "if n > 1 {"},
		{name: "a closer above code at its own level kept", cand: "if x {\n\t\treturn\n\t}", suffix: "\n\treturn nil\n}\n", want: "if x {\n\t\treturn\n\t}"},
		{name: "a closer before code on the cursor's line kept", cand: "f(a,\n\t)", suffix: " + g()\n\t\tx\n", want: "f(a,\n\t)"},
		{name: "one line is not cut", cand: "}", suffix: "\n\t\tx\n", want: "}"},
		{name: "trailing blanks at the end of a line", cand: "x + 1  ", suffix: "\nnext", single: true, want: "x + 1"},
		{name: "trailing blank before code kept", cand: "x +", suffix: " 1\n", single: true, want: "x +"},
		{name: "end token cuts", cand: "x + 1<|endoftext|>garbage", want: "x + 1"},
		{name: "im_end cuts", cand: "x<|im_end|>\nmore", want: "x"},
		{name: "pad tokens removed", cand: "x<|dlm_pad|> +<|mask|> 1<|expand|>", want: "x + 1"},
		{name: "fim tokens removed", cand: "<|fim_middle|>x + 1<|fim_pad|><|fim_pad|>", want: "x + 1"},
		{name: "unterminated fim token", cand: "x + 1<|fim_suf", want: "x + 1"},
		{name: "trailing blank lines", cand: "a\nb\n  \n\t\n", want: "a\nb"},
		{name: "crlf from the model", cand: "a\r\nb\r\n", want: "a\nb"},
		{name: "whitespace only", cand: " \n\t\n", want: ""},
		{name: "only tokens", cand: "<|endoftext|>", want: ""},
		{name: "overlap on the line", cand: "a, b)", suffix: ")\n", single: true, want: "a, b"},
		{name: "overlap of several tokens", cand: "x := f(a, b) // done", suffix: "// done\n}", want: "x := f(a, b) "},
		{name: "overlap on the next line", cand: "\treturn x\n}", suffix: "\n}\n", want: "\treturn x"},
		{name: "overlap after blank lines", cand: "\treturn x\n}\n\nfunc g() {", suffix: "\n\n}\n\nfunc g() {\n", want: "\treturn x"},
		{name: "own bracket kept", cand: "g(x)", suffix: ")\n", single: true, want: "g(x)"},
		{name: "own bracket kept, stray cut", cand: "g(x))", suffix: "))\n", single: true, want: "g(x)"},
		{name: "own string kept", cand: `"a"`, suffix: `"`, single: true, want: `"a"`},
		{name: "stray quote cut", cand: `hello"`, suffix: `")`, single: true, want: `hello`},
		{name: "no cut inside a word", cand: "foo", suffix: "o bar", single: true, want: "foo"},
		{name: "no cut into a longer word", cand: "x := fo", suffix: "foo()", single: true, want: "x := fo"},
		{name: "word overlap cut", cand: "return err", suffix: "err != nil", single: true, want: "return "},
		{name: "single line cut", cand: "x + 1\ny := 2", single: true, want: "x + 1"},
		{name: "single line starting with newline", cand: "\nfoo", single: true, want: ""},
		{name: "repeated line", cand: "a := 1\nx++\nx++\nx++\nx++", want: "a := 1\nx++"},
		{name: "repeated line group", cand: "if a {\n}\nif a {\n}\nif a {\n}", want: "if a {\n}"},
		{name: "repeated unit in a line", cand: "x := foo.foo.foo.foo.bar", want: "x := foo."},
		{name: "two repeats kept", cand: "x++\nx++", want: "x++\nx++"},
		{name: "blank lines are not a loop", cand: "a\n\n\n\nb", want: "a\n\n\n\nb"},
		{name: "closing brackets are not a loop", cand: "f(g(h(x)))", want: "f(g(h(x)))"},
		{name: "colour is not a loop", cand: "c := \"#ffffff\"", want: "c := \"#ffffff\""},
		{name: "a closer the cursor's line opened kept", cand: "4s[0], float64s[1]}", suffix: "\n\t\t}\n}\n", before: "\t\tp = [2]float64{float6", want: "4s[0], float64s[1]}"},
		{name: "next line's closer cut", cand: "x++\n\t}", suffix: "\n\t}\n}\n", before: "\t\t", want: "x++"},
		{name: "next line at another indent kept", cand: "    if a:\n        return False", suffix: "\n    return False\n", want: "    if a:\n        return False"},
		{name: "brackets in strings do not count", cand: "        if c == '(':\n            x += 1\n        elif c == ')':", suffix: "        elif c == ')':\n", ahead: true, want: "        if c == '(':\n            x += 1"},
		{name: "another indent is no overlap", cand: "            return True\n        return False", suffix: "    return False\n", ahead: true, want: "            return True\n        return False"},
		{name: "lines ahead of code", cand: "    x = 1\n    return x\n", suffix: "    return x\n", ahead: true, want: "    x = 1"},
		{name: "lines ahead: trailing blanks", cand: "    x = 1  \n", suffix: "    return x\n", ahead: true, want: "    x = 1"},
		{name: "lines ahead: premature closer", cand: "\tif x {\n\t}", suffix: "\t\ty++\n\t}\n", ahead: true, want: "\tif x {"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := postprocess(tt.cand, tt.suffix, mode{single: tt.single, ahead: tt.ahead, before: tt.before}); got != tt.want {
				t.Errorf("postprocess(%q, %q, %v) = %q, want %q", tt.cand, tt.suffix, tt.single, got, tt.want)
			}
		})
	}
}

func TestDecideMode(t *testing.T) {
	tests := []struct {
		name       string
		doc        string // "|" marks the cursor
		lang       string
		wantSingle bool
		wantEnd    string // the text the item replaces
		wantAhead  bool   // whole lines ahead of the code after the cursor
	}{
		{name: "empty line", doc: "func f() {\n\t|\n}\n", lang: "go", wantSingle: false},
		{name: "empty document", doc: "|", lang: "go", wantSingle: false},
		{name: "code follows", doc: "x := |foo()\n", lang: "go", wantSingle: true},
		{name: "code follows at column 0", doc: "|    return x\n", lang: "python", wantAhead: true},
		{name: "code follows the indent", doc: "\t|return x\n", lang: "go", wantAhead: true},
		{name: "a closer follows at column 0", doc: "d = {\n    'a': 1,\n|    }\n", lang: "python", wantAhead: true},
		{name: "end of a code line", doc: "x := |\n", lang: "go", wantSingle: true},
		{name: "after a brace", doc: "func f() {|\n", lang: "go", wantSingle: false},
		{name: "after a paren with a closer", doc: "f(|)\n", lang: "go", wantSingle: false, wantEnd: ")"},
		{name: "python colon", doc: "def f():|\n", lang: "python", wantSingle: false},
		{name: "colon outside python", doc: "case 1:|\n", lang: "go", wantSingle: true},
		{name: "closers only", doc: "x := f(a, |)\n", lang: "go", wantSingle: true, wantEnd: ")"},
		{name: "closers and spaces", doc: "x := f(g(|) );\n", lang: "go", wantSingle: false, wantEnd: ") );"},
		{name: "closers after code", doc: "x := f(a|) );\n", lang: "go", wantSingle: true, wantEnd: ") );"},
		{name: "quote closer", doc: "s := \"|\"\n", lang: "go", wantSingle: true, wantEnd: "\""},
		{name: "closers before crlf", doc: "f(a, |)\r\nx", lang: "go", wantSingle: true, wantEnd: ")"},
		{name: "closers at end of file", doc: "f(a, |)", lang: "go", wantSingle: true, wantEnd: ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := strings.Index(tt.doc, "|")
			text := tt.doc[:at] + tt.doc[at+1:]
			m := decideMode(text, at, tt.lang)
			if m.single != tt.wantSingle || m.ahead != tt.wantAhead {
				t.Errorf("single, ahead = %v, %v, want %v, %v", m.single, m.ahead, tt.wantSingle, tt.wantAhead)
			}
			if got := text[at:m.end]; got != tt.wantEnd || m.closers != tt.wantEnd {
				t.Errorf("replaces %q (closers %q), want %q", got, m.closers, tt.wantEnd)
			}
		})
	}
}

func TestFinish(t *testing.T) {
	tests := []struct {
		name, cand, closers, want string
		ahead                     bool
		indent                    string
	}{
		{name: "no closers", cand: "x", want: "x"},
		{name: "put back", cand: "a, b", closers: ")", want: "a, b)"},
		{name: "candidate closes", cand: "a, b)", closers: ")", want: "a, b)"},
		{name: "own parens do not close", cand: "g(x)", closers: ")", want: "g(x))"},
		{name: "lines ahead end their line", cand: "x := 1", ahead: true, indent: "\t", want: "x := 1\n\t"},
		{name: "partly closed", cand: `hello", x`, closers: `")`, want: `hello", x)`},
		{name: "spacing kept when nothing closes", cand: "a", closers: ") );", want: "a) );"},
		{name: "rest after partial close", cand: "a)", closers: ") );", want: "a) );"},
		{name: "all closed, trailing blanks dropped", cand: "a)", closers: ")  ", want: "a)"},
		{name: "multi-line body", cand: "\n\treturn 1\n", closers: "}", want: "\n\treturn 1\n}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := finish(tt.cand, mode{closers: tt.closers, ahead: tt.ahead, before: tt.indent}); got != tt.want {
				t.Errorf("finish(%q, %q) = %q, want %q", tt.cand, tt.closers, got, tt.want)
			}
		})
	}
}

// FuzzPostprocess checks that post-processing never panics, leaves no
// special tokens, no newline in single-line mode, no whitespace-only
// result, keeps valid UTF-8 valid and never grows the text.
func FuzzPostprocess(f *testing.F) {
	f.Add("x + 1<|endoftext|>", ")\n", true)
	f.Add("\treturn x\n}\n", "\n}\n", false)
	f.Add("foo.foo.foo.foo", "", false)
	f.Add("é<|fim_pad|>é", "é", true)
	f.Add("a\r\nb\r\n\r\n", "b", false)
	f.Fuzz(func(t *testing.T, cand, suffix string, single bool) {
		out := postprocess(cand, suffix, mode{single: single})
		if out == "" {
			return
		}
		if strings.TrimSpace(out) == "" {
			t.Fatalf("whitespace-only result %q", out)
		}
		if single && strings.Contains(out, "\n") {
			t.Fatalf("single-line result %q has a newline", out)
		}
		for _, tok := range append(append([]string{"<|fim_"}, endTokens...), padTokens...) {
			if strings.Contains(out, tok) {
				t.Fatalf("result %q keeps %q", out, tok)
			}
		}
		if utf8.ValidString(cand) && utf8.ValidString(suffix) && !utf8.ValidString(out) {
			t.Fatalf("result %q is not valid UTF-8", out)
		}
		if len(out) > len(cand) {
			t.Fatalf("result %q longer than the candidate %q", out, cand)
		}
	})
}
