package fim

import (
	"strings"
	"testing"
)

// lines counts newlines: a token counter that is easy to reason about in
// tables (a budget of n keeps n whole lines).
func lines(s string) int { return strings.Count(s, "\n") }

func TestBuild(t *testing.T) {
	doc := "l1\nl2\nl3\nl4 cur|sor\nl5\nl6\nl7\n"
	at := strings.Index(doc, "|")
	doc = doc[:at] + doc[at+1:]
	tests := []struct {
		name       string
		in         Input
		budget     Budget
		count      func(string) int
		wantPrefix string
		wantSuffix string
		wantCRLF   bool
	}{
		{
			name:       "everything fits",
			in:         Input{Text: doc, Offset: at},
			budget:     Budget{Prefix: 100, Suffix: 100},
			count:      lines,
			wantPrefix: "l1\nl2\nl3\nl4 cur",
			wantSuffix: "sor\nl5\nl6\nl7\n",
		},
		{
			name:       "nearest lines first",
			in:         Input{Text: doc, Offset: at},
			budget:     Budget{Prefix: 1, Suffix: 2},
			count:      lines,
			wantPrefix: "l3\nl4 cur",
			wantSuffix: "sor\nl5\n",
		},
		{
			name:       "partial lines always kept",
			in:         Input{Text: doc, Offset: at},
			budget:     Budget{Prefix: 0, Suffix: 0},
			count:      lines,
			wantPrefix: "l4 cur",
			wantSuffix: "sor", // the newline is the one token the counter sees
		},
		{
			name:       "unused suffix budget flows to the prefix",
			in:         Input{Text: "a\nb\nc\nd", Offset: 7},
			budget:     Budget{Prefix: 1, Suffix: 2},
			count:      lines,
			wantPrefix: "a\nb\nc\nd",
			wantSuffix: "",
		},
		{
			name:       "CRLF normalised",
			in:         Input{Text: "a\r\nb\r\nc\r\nd", Offset: 4},
			budget:     Budget{Prefix: 10, Suffix: 10},
			count:      lines,
			wantPrefix: "a\nb",
			wantSuffix: "\nc\nd",
			wantCRLF:   true,
		},
		{
			name:       "offset inside CRLF moves before it",
			in:         Input{Text: "a\r\nb", Offset: 2},
			budget:     Budget{Prefix: 10, Suffix: 10},
			count:      lines,
			wantPrefix: "a",
			wantSuffix: "\nb",
			wantCRLF:   true,
		},
		{
			name:       "offset inside a rune moves to its start",
			in:         Input{Text: "xé y", Offset: 2},
			budget:     Budget{Prefix: 10, Suffix: 10},
			count:      lines,
			wantPrefix: "x",
			wantSuffix: "é y",
		},
		{
			name:       "offset past the end is clamped",
			in:         Input{Text: "abc", Offset: 99},
			budget:     Budget{Prefix: 10, Suffix: 10},
			wantPrefix: "abc",
		},
		{
			name:       "negative offset is clamped",
			in:         Input{Text: "abc", Offset: -5},
			budget:     Budget{Prefix: 10, Suffix: 10},
			wantSuffix: "abc",
		},
		{
			name:       "long partial line cut far side first",
			in:         Input{Text: strings.Repeat("x", 40) + "yyyy|zzzz" + strings.Repeat("w", 40), Offset: 44},
			budget:     Budget{Prefix: 1, Suffix: 1},
			wantPrefix: "xxxyyyy", // 7 bytes: 1 token at len/4
			wantSuffix: "|zzzzww",
		},
		{
			name:   "empty document",
			in:     Input{},
			budget: Budget{Prefix: 10, Suffix: 10},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Build(tt.in, tt.budget, tt.count)
			if got := p.Prefix[p.ContextLen:]; got != tt.wantPrefix {
				t.Errorf("prefix = %q, want %q", got, tt.wantPrefix)
			}
			if p.Suffix != tt.wantSuffix {
				t.Errorf("suffix = %q, want %q", p.Suffix, tt.wantSuffix)
			}
			if p.CRLF != tt.wantCRLF {
				t.Errorf("CRLF = %v, want %v", p.CRLF, tt.wantCRLF)
			}
		})
	}
}

func TestSnippets(t *testing.T) {
	snips := []Snippet{
		{Path: "a/b.go", Text: "func A() {}"},
		{Path: "big.go", Text: strings.Repeat("x\n", 50)},
		{Path: "c.go", Text: "type C int\r\n"},
	}
	tests := []struct {
		name    string
		lang    string
		path    string
		budget  int
		want    string
		wantLen bool
	}{
		{name: "go header, whole snippets, oversize skipped", lang: "go", budget: 6,
			want: "// a/b.go\nfunc A() {}\n// c.go\ntype C int\n"},
		{name: "python comment from path", path: "x.py", budget: 6,
			want: "# a/b.go\nfunc A() {}\n# c.go\ntype C int\n"},
		{name: "block comment language", lang: "html", budget: 6,
			want: "<!-- a/b.go -->\nfunc A() {}\n<!-- c.go -->\ntype C int\n"},
		{name: "no budget", lang: "go", budget: 0, want: ""},
		{name: "only the first fits", lang: "go", budget: 2, want: "// a/b.go\nfunc A() {}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Build(Input{Text: "x := 1\n", Offset: 5, LanguageID: tt.lang, Path: tt.path, Snippets: snips},
				Budget{Prefix: 10, Suffix: 10, Context: tt.budget}, lines)
			if got := p.Prefix[:p.ContextLen]; got != tt.want {
				t.Errorf("context = %q, want %q", got, tt.want)
			}
			if got := p.Prefix[p.ContextLen:]; got != "x := " {
				t.Errorf("prefix after context = %q", got)
			}
		})
	}
}

func TestRestore(t *testing.T) {
	tests := []struct {
		name string
		crlf bool
		in   string
		want string
	}{
		{name: "lf document unchanged", in: "a\nb", want: "a\nb"},
		{name: "crlf document", crlf: true, in: "a\nb\n", want: "a\r\nb\r\n"},
		{name: "already crlf not doubled", crlf: true, in: "a\r\nb\n", want: "a\r\nb\r\n"},
		{name: "single line", crlf: true, in: "abc", want: "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Prompt{CRLF: tt.crlf}).Restore(tt.in); got != tt.want {
				t.Errorf("Restore(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestLanguageFromPath(t *testing.T) {
	tests := []struct{ name, path, want string }{
		{name: "go", path: "/x/y.go", want: "go"},
		{name: "upper ext", path: "Y.PY", want: "python"},
		{name: "tsx", path: "a.tsx", want: "typescriptreact"},
		{name: "makefile", path: "dir/Makefile", want: "makefile"},
		{name: "windows path", path: `C:\x\y.rs`, want: "rust"},
		{name: "c++", path: "a.c++", want: "cpp"},
		{name: "cuda", path: "k.cu", want: "cuda-cpp"},
		{name: "unknown", path: "a.unknown", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LanguageFromPath(tt.path); got != tt.want {
				t.Errorf("LanguageFromPath(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

// FuzzBuild checks that Build never panics; that the prefix is a suffix of
// the text before the cursor and the suffix a prefix of the text after it,
// once both are normalised as the design promises (LF line endings, and a
// space-indented Go buffer shown with tabs, IndentUnit spaces each); that
// Restore gives the suffix back with the buffer's own indentation; and that
// budgets hold under a len/4 counter.
func FuzzBuild(f *testing.F) {
	f.Add("package main\n\nfunc main() {\n\tx := 1\n}\n", 30, 8, 4, 4)
	f.Add("a\r\nb\r\n", 2, 0, 0, 0)
	f.Add("é\xff\xe2\x82", 2, 1, 1, 1)
	f.Add("", 5, -1, -1, 3)
	f.Fuzz(func(t *testing.T, text string, off, pre, suf, ctx int) {
		pre, suf, ctx = pre%1000, suf%1000, ctx%1000
		in := Input{Text: text, Offset: off, LanguageID: "go",
			Snippets: []Snippet{{Path: "p.go", Text: text[:len(text)/2]}, {Path: "q.go", Text: "x"}}}
		b := Budget{Prefix: pre, Suffix: suf, Context: ctx}
		p := Build(in, b, ApproxTokens)
		c := ClampOffset(text, off)
		if c != p.Offset || c < 0 || c > len(text) {
			t.Fatalf("offset %d clamped to %d (prompt %d)", off, c, p.Offset)
		}
		before := strings.ReplaceAll(text[:c], "\r\n", "\n")
		after := strings.ReplaceAll(text[c:], "\r\n", "\n")
		if u := p.IndentUnit; u > 0 {
			// Restore writes one line ending, the document's: a text
			// that mixes them (or has a CR not before LF) does not
			// round-trip.
			crlf := strings.Count(text, "\r\n")
			oneEnding := strings.Count(text, "\r") == crlf && (crlf == 0 || crlf == strings.Count(text, "\n"))
			if oneEnding && !strings.HasPrefix(text[c:], p.Restore(p.Suffix)) {
				t.Fatalf("restored suffix %q is not a prefix of %q", p.Restore(p.Suffix), text[c:])
			}
			atStart := before == "" || strings.HasSuffix(before, "\n")
			before, after = tabIndent(before, u, true), tabIndent(after, u, atStart)
		}
		prefix := p.Prefix[p.ContextLen:]
		if !strings.HasSuffix(before, prefix) {
			t.Fatalf("prefix %q is not a suffix of %q", prefix, before)
		}
		if !strings.HasPrefix(after, p.Suffix) {
			t.Fatalf("suffix %q is not a prefix of %q", p.Suffix, after)
		}
		b.Prefix, b.Suffix, b.Context = max(b.Prefix, 0), max(b.Suffix, 0), max(b.Context, 0)
		if n := ApproxTokens(p.Suffix); n > b.Suffix {
			t.Fatalf("suffix takes %d tokens, budget %d", n, b.Suffix)
		}
		if n := ApproxTokens(p.Prefix[:p.ContextLen]); n > b.Context {
			t.Fatalf("context takes %d tokens, budget %d", n, b.Context)
		}
		if n := ApproxTokens(prefix); n > b.Prefix+b.Suffix+b.Context {
			t.Fatalf("prefix takes %d tokens, budget %d", n, b.Prefix+b.Suffix+b.Context)
		}
	})
}

func BenchmarkBuildLarge(b *testing.B) {
	text := strings.Repeat("\tx := strconv.Itoa(i) + \"abc\"\n", 1<<19) // ~16 MiB
	in := Input{Text: text, Offset: len(text) / 2, LanguageID: "go"}
	for b.Loop() {
		Build(in, Budget{Prefix: 1500, Suffix: 500, Context: 500}, ApproxTokens)
	}
}
