package syntax

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// noLeaks fails t if a tree or parser opened during the test is not closed.
func noLeaks(t *testing.T) {
	t.Helper()
	trees, parsers := openTrees.Load(), openParsers.Load()
	t.Cleanup(func() {
		if n := openTrees.Load() - trees; n != 0 {
			t.Errorf("%d trees left open", n)
		}
		if n := openParsers.Load() - parsers; n != 0 {
			t.Errorf("%d parsers left open", n)
		}
	})
}

// cursor splits a document marked with "|" into the text and the offset.
func cursor(doc string) ([]byte, int) {
	i := strings.Index(doc, "|")
	return []byte(doc[:i] + doc[i+1:]), i
}

func TestLanguageTable(t *testing.T) {
	tests := []struct{ name, id, path, wantGrammar, wantID string }{
		{name: "go", id: "go", path: "a.go", wantGrammar: "go", wantID: "go"},
		{name: "python", id: "python", path: "a.py", wantGrammar: "python", wantID: "python"},
		{name: "jsx", id: "javascriptreact", path: "a.jsx", wantGrammar: "javascript", wantID: "javascriptreact"},
		{name: "typescript", id: "typescript", path: "a.ts", wantGrammar: "typescript", wantID: "typescript"},
		{name: "tsx", id: "typescriptreact", path: "a.tsx", wantGrammar: "tsx", wantID: "typescriptreact"},
		{name: "rust", id: "rust", path: "a.rs", wantGrammar: "rust", wantID: "rust"},
		{name: "c", id: "c", path: "a.h", wantGrammar: "c", wantID: "c"},
		{name: "cpp", id: "cpp", path: "a.cpp", wantGrammar: "cpp", wantID: "cpp"},
		{name: "java", id: "java", path: "A.java", wantGrammar: "java", wantID: "java"},
		{name: "unknown", id: "cobol", path: "a.cbl", wantGrammar: "", wantID: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Grammar(tt.id); got != tt.wantGrammar {
				t.Errorf("Grammar(%q) = %q, want %q", tt.id, got, tt.wantGrammar)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	noLeaks(t)
	const goDoc = "package p\n\nfunc f(x int) int {\n\t|\n}\n"
	tests := []struct {
		name   string
		lang   string
		doc    string
		insert string
		ok     bool
		parsed bool
	}{
		{name: "go statement", lang: "go", doc: goDoc, insert: "return x + 1", ok: true, parsed: true},
		{name: "go block", lang: "go", doc: goDoc, insert: "if x > 0 {\n\t\treturn x\n\t}\n\treturn 0", ok: true, parsed: true},
		{name: "go unclosed block", lang: "go", doc: goDoc, insert: "if x > 0 {\n\t\treturn x", ok: false, parsed: true},
		{name: "go stray paren", lang: "go", doc: goDoc, insert: "return x)", ok: false, parsed: true},
		{name: "go completes a broken line", lang: "go", doc: "package p\n\nfunc f() {\n\tg(|\n}\n", insert: "1, 2)", ok: true, parsed: true},
		{name: "go closes an open call", lang: "go", doc: "package p\n\nfunc f() {\n\tx := foo(|\n}\n", insert: "1, 2)", ok: true, parsed: true},
		{name: "go error elsewhere kept", lang: "go", doc: "package p\n\nfunc g() {\n\ty := \n}\n\nfunc f() {\n\t|\n}\n", insert: "return", ok: true, parsed: true},
		{name: "go mid identifier", lang: "go", doc: "package p\n\nfunc f() {\n\tfmt.Pri|\n}\n", insert: "ntln(1)", ok: true, parsed: true},
		{name: "go stray closer after an incomplete line", lang: "go", doc: "package p\n\nvar y = |\n", insert: "f(1))", ok: false, parsed: true},
		{name: "go completes an incomplete line", lang: "go", doc: "package p\n\nvar y = |\n", insert: "f(1)", ok: true, parsed: true},
		{name: "go keyword as a value", lang: "go", doc: goDoc, insert: "return x, return", ok: false, parsed: true},
		{name: "go keyword as a field", lang: "go", doc: goDoc, insert: "return x.range", ok: false, parsed: true},
		{name: "go keyword in a string", lang: "go", doc: goDoc, insert: `return len("return")`, ok: true, parsed: true},
		// Junk on a line that was already broken: the candidate's own text
		// lies inside an error node of the result, so it is refused even
		// though it adds no error the window did not have.
		{name: "go junk after a selector", lang: "go", doc: "package p\n\nfunc f() {\n\tfmt.|\n}\n", insert: " :=1 != 1 != 1", ok: false, parsed: true},
		{name: "go junk comparison", lang: "go", doc: "package p\n\nfunc f() {\n\tfmt.|\n}\n", insert: " !=\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t true", ok: false, parsed: true},
		{name: "go junk operators", lang: "go", doc: "package p\n\nfunc f() error {\n\tif x := g(); |\n\treturn nil\n}\n", insert: "err, * * * * * *", ok: false, parsed: true},
		{name: "go repairs a broken line", lang: "go", doc: "package p\n\nfunc f() {\n\tfmt.|\n}\n", insert: "Println(1)", ok: true, parsed: true},
		{name: "python", lang: "python", doc: "def f(x):\n    |\n", insert: "return x + 1", ok: true, parsed: true},
		{name: "python keyword as a value", lang: "python", doc: "def f(x):\n    |\n", insert: "return x, pass", ok: false, parsed: true},
		{name: "python bad", lang: "python", doc: "def f(x):\n    |\n", insert: "return (x +", ok: false, parsed: true},
		{name: "javascript", lang: "javascript", doc: "function f(x) {\n  |\n}\n", insert: "return x + 1;", ok: true, parsed: true},
		{name: "javascript bad", lang: "javascript", doc: "function f(x) {\n  |\n}\n", insert: "return x +;}", ok: false, parsed: true},
		{name: "javascript keyword as a value", lang: "javascript", doc: "function f(x) {\n  |\n}\n", insert: "return x + while;", ok: false, parsed: true},
		{name: "javascript keyword as a property", lang: "javascript", doc: "function f(x) {\n  |\n}\n", insert: "return x.default;", ok: true, parsed: true},
		{name: "jsx", lang: "javascriptreact", doc: "const A = () => |;\n", insert: "<div>{x}</div>", ok: true, parsed: true},
		{name: "typescript", lang: "typescript", doc: "function f(x: number): number {\n  |\n}\n", insert: "return x as number;", ok: true, parsed: true},
		{name: "tsx", lang: "typescriptreact", doc: "const A = (p: P) => |;\n", insert: "<b>{p.x}</b>", ok: true, parsed: true},
		{name: "rust", lang: "rust", doc: "fn f(x: i32) -> i32 {\n    |\n}\n", insert: "x + 1", ok: true, parsed: true},
		{name: "rust bad", lang: "rust", doc: "fn f(x: i32) -> i32 {\n    |\n}\n", insert: "let y = ;", ok: false, parsed: true},
		{name: "c", lang: "c", doc: "int f(int x) {\n\t|\n}\n", insert: "return x + 1;", ok: true, parsed: true},
		{name: "c keyword as a value", lang: "c", doc: "int f(int x) {\n\t|\n}\n", insert: "return x + case;", ok: false, parsed: true},
		{name: "cpp", lang: "cpp", doc: "int f(int x) {\n\t|\n}\n", insert: "return std::max(x, 1);", ok: true, parsed: true},
		{name: "java", lang: "java", doc: "class A {\n  int f(int x) {\n    |\n  }\n}\n", insert: "return x + 1;", ok: true, parsed: true},
		{name: "java bad", lang: "java", doc: "class A {\n  int f(int x) {\n    |\n  }\n}\n", insert: "return x + 1; }}", ok: false, parsed: true},
		{name: "brackets balanced", lang: "lua", doc: "f(|\n", insert: "a, {b})", ok: true},
		{name: "brackets keep old imbalance", lang: "lua", doc: "f(|\n", insert: "a, b", ok: true},
		{name: "brackets new imbalance", lang: "lua", doc: "f(|\n", insert: "a])", ok: false},
	}
	var v Validator
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, at := cursor(tt.doc)
			got, err := v.Check(context.Background(), tt.lang, doc, at, at, tt.insert)
			if err != nil {
				t.Fatal(err)
			}
			if got.OK != tt.ok || got.Parsed != tt.parsed {
				t.Errorf("Check(%q) = %+v, want OK %v, Parsed %v", tt.insert, got, tt.ok, tt.parsed)
			}
		})
	}
}

func TestCheckReplacesRange(t *testing.T) {
	noLeaks(t)
	doc, at := cursor("package p\n\nvar x = f(|)\n")
	var v Validator
	// Replacing the closing paren to the end of the line needs the
	// candidate to close it again.
	end := at + 1
	tests := []struct {
		name   string
		insert string
		ok     bool
	}{
		{name: "closes again", insert: "1, 2)", ok: true},
		{name: "drops the closer", insert: "1, 2", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Check(context.Background(), "go", doc, at, end, tt.insert)
			if err != nil {
				t.Fatal(err)
			}
			if got.OK != tt.ok {
				t.Errorf("Check(%q) = %+v, want OK %v", tt.insert, got, tt.ok)
			}
		})
	}
}

func TestOutOfRange(t *testing.T) {
	noLeaks(t)
	var v Validator
	tests := []struct {
		name       string
		doc        string
		start, end int
	}{
		{name: "empty", doc: "", start: 0, end: 0},
		{name: "past the end", doc: "package p\n", start: 100, end: 200},
		{name: "negative", doc: "package p\n", start: -3, end: -1},
		{name: "end before start", doc: "package p\n", start: 5, end: 2},
		{name: "invalid utf-8", doc: "package p\n\xff\xfe", start: 11, end: 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := v.Check(context.Background(), "go", []byte(tt.doc), tt.start, tt.end, "var x = 1\n"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCancelled(t *testing.T) {
	noLeaks(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var v Validator
	_, err := v.Check(ctx, "go", []byte("package p\n"), 0, 0, "")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Check with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestWindow(t *testing.T) {
	doc := []byte(strings.Repeat("0123456789\n", 100)) // 100 lines of 11 bytes
	tests := []struct {
		name           string
		start, end     int
		lines, bytes   int
		wantWS, wantWE int
	}{
		{name: "whole document fits", start: 550, end: 550, lines: 1000, bytes: 1 << 20, wantWS: 0, wantWE: 1100},
		{name: "lines bound", start: 550, end: 550, lines: 4, bytes: 1 << 20, wantWS: 550 - 2*11, wantWE: 550 + 3*11},
		{name: "bytes bound", start: 550, end: 550, lines: 1000, bytes: 50, wantWS: 550 - 2*11, wantWE: 550 + 2*11},
		{name: "mid-line cursor", start: 555, end: 556, lines: 2, bytes: 1 << 20, wantWS: 539, wantWE: 572},
		{name: "at the start", start: 0, end: 0, lines: 2, bytes: 1 << 20, wantWS: 0, wantWE: 22},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, we := window(doc, tt.start, tt.end, tt.lines, tt.bytes)
			if ws != tt.wantWS || we != tt.wantWE {
				t.Errorf("window = [%d,%d), want [%d,%d)", ws, we, tt.wantWS, tt.wantWE)
			}
			if ws > tt.start || we < tt.end {
				t.Errorf("window [%d,%d) does not hold [%d,%d)", ws, we, tt.start, tt.end)
			}
		})
	}
}

// TestValidatorWindow checks the session's window: DefaultLinesBefore
// lines before the range; after it, the rest of its last line and
// DefaultLinesAfter more, or on to the next line in column 0 when one is
// near; each side cut at a line within its byte budget.
func TestValidatorWindow(t *testing.T) {
	body := strings.Repeat("\tx := 1\n", 200) // 200 indented lines of 8 bytes
	begin := func(v Validator, doc string, at int) *Session {
		t.Helper()
		s, err := v.Begin(context.Background(), "go", []byte(doc), at, at)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}
	lines := func(b []byte) int { return strings.Count(string(b), "\n") }

	s := begin(Validator{}, body, 100*8)
	if lines(s.head) != DefaultLinesBefore || lines(s.tail) != DefaultLinesAfter+1 {
		t.Errorf("window holds %d lines before and %d after, want %d and %d", lines(s.head), lines(s.tail), DefaultLinesBefore, DefaultLinesAfter+1)
	}
	// A "}" in column 0 ten lines past the window ends it.
	doc := body[:130*8] + "}\n" + body[130*8:]
	s = begin(Validator{}, doc, 100*8)
	if !strings.HasSuffix(string(s.tail), "\n}\n") || lines(s.tail) != 31 {
		t.Errorf("window after the range = %d lines ending %q, want 31 ending in the \"}\" line", lines(s.tail), s.tail[max(0, len(s.tail)-10):])
	}
	s = begin(Validator{BytesBefore: 70, BytesAfter: 35}, body, 100*8)
	if len(s.head) != 64 || len(s.tail) != 32 {
		t.Errorf("byte-bound window holds %d bytes before and %d after, want 64 and 32", len(s.head), len(s.tail))
	}
}

// TestWindowCutHidesNoError checks the ways a window cut used to hide a
// candidate's error: a stray "}" that closes a function early, where the
// function's own "}" comes after DefaultLinesAfter lines (the window goes
// on to it); a block opened or closed in a function longer than the window
// can reach; and a window whose head starts inside a raw string (a shorter
// head is used).
func TestWindowCutHidesNoError(t *testing.T) {
	noLeaks(t)
	ctx := context.Background()
	var v Validator
	body := strings.Repeat("\tx++\n", 30)
	doc := "package p\n\nfunc f() {\n\tx := 0\n\n" + body + "}\n"
	at := strings.Index(doc, "\n\n\tx++") + 1
	if got, err := v.Check(ctx, "go", []byte(doc), at, at, "}\n"); err != nil || got.OK {
		t.Errorf("stray } before a 30-line body: %+v, %v; want rejected", got, err)
	}
	if got, err := v.Check(ctx, "go", []byte(doc), at, at, "\tx = 1\n"); err != nil || !got.OK {
		t.Errorf("a statement there: %+v, %v; want accepted", got, err)
	}

	// In a function too long for the window to reach its end, a candidate
	// that opens or closes a block is not accepted; a balanced one is.
	long := "package p\n\nfunc f() {\n\tif x {\n\n\t}\n" + strings.Repeat("\tx++\n", 120) + "}\n"
	at = strings.Index(long, "{\n\n") + 2
	for insert, want := range map[string]bool{"\t\tif x != 0 {": false, "\t}\n": false, "\t\tx = f(1, []int{2})": true, "\t\ts := \"{\"": true} {
		if got, err := v.Check(ctx, "go", []byte(long), at, at, insert); err != nil || got.OK != want {
			t.Errorf("%q in a long function: %+v, %v; want OK %v", insert, got, err, want)
		}
	}

	// A Go label in column 0 is not the end of the function: a "}" before
	// it closes the function early.
	labeled := "package p\n\nfunc f() {\n\t// fast path\n\n" + strings.Repeat("\tx++\n", 20) + "again:\n" + strings.Repeat("\tx--\n", 60) + "}\n"
	at = strings.Index(labeled, "path\n") + 5
	if got, err := v.Check(ctx, "go", []byte(labeled), at, at, "}\n"); err != nil || got.OK {
		t.Errorf("} before a label: %+v, %v; want rejected", got, err)
	}

	// Where the window holds the whole function, closing a block the user
	// left open is accepted.
	open := "package p\n\nfunc f(x bool) {\n\tif x {\n\t\t\n}\n"
	at = strings.Index(open, "\t\t\n") + 2
	if got, err := v.Check(ctx, "go", []byte(open), at, at, "return\n\t}"); err != nil || !got.OK {
		t.Errorf("closing an open block: %+v, %v; want accepted", got, err)
	}

	// "}, {" in column 0 ends an element of a long composite literal, not
	// the literal: an element left open before it is rejected. The window
	// starts inside the literal, where its parse is one error around the
	// range, so a balanced field is not accepted either (a string without
	// its comma got through that way).
	elem := "}, {\n\tName: \"b\",\n\tIn:   \"c\",\n"
	elems := strings.Repeat(elem, 200) // longer than maxWideLines
	lit := "package p\n\nvar tests = []test{{\n\tName: \"a\",\n\tIn:   \"b\",\n\t\n" + elems + "}}\n"
	at = strings.Index(lit, "\t\n") + 1
	for insert, want := range map[string]bool{"{\"(\"": false, "Out:  \"c\",": false} {
		if got, err := v.Check(ctx, "go", []byte(lit), at, at, insert); err != nil || got.OK != want {
			t.Errorf("%q in a long composite literal: %+v, %v; want OK %v", insert, got, err, want)
		}
	}

	// A shorter head that starts inside an earlier element's multi-line raw
	// string leaves the rest of the window one error, which hides what a
	// candidate does: an element left open is still rejected.
	raw := "}, {\n\tName: \"r\",\n\tIn: `x\ny\nz\nw`,\n\tOut: [][]string{{\"a\"}},\n"
	hid := "package p\n\nvar tests = []test{{\n\tName: \"a\",\n" + strings.Repeat(elem, 6) + raw + "}, {\n\tName: \"b\",\n\t\n\tOut: [][]string{\n\t\t{\"a\"},\n\t},\n" + elems + "}}\n"
	at = strings.Index(hid, "\"b\",\n\t\n") + len("\"b\",\n\t")
	for insert, want := range map[string]bool{"{": false, "In: \"q\",": false} {
		if got, err := v.Check(ctx, "go", []byte(hid), at, at, insert); err != nil || got.OK != want {
			t.Errorf("%q after a raw string in a long composite literal: %+v, %v; want OK %v", insert, got, err, want)
		}
	}

	// Where the whole literal is near enough to be parsed (see widen), a
	// balanced field is accepted and an element left open is not.
	short := "package p\n\nvar tests = []test{{\n\tName: \"a\",\n\tIn:   \"b\",\n\t\n" + strings.Repeat(elem, 60) + "}}\n"
	at = strings.Index(short, "\t\n") + 1
	for insert, want := range map[string]bool{"{\"(\"": false, "Out:  \"c\",": true} {
		if got, err := v.Check(ctx, "go", []byte(short), at, at, insert); err != nil || got.OK != want {
			t.Errorf("%q in a composite literal of 180 lines: %+v, %v; want OK %v", insert, got, err, want)
		}
	}

	data := strings.Repeat("x,y,z,\n", 60)
	doc = "package p\n\nvar data = `\n" + data + "`\n\nfunc g() {\n\n}\n\nfunc h() {}\n"
	at = strings.Index(doc, "func g() {\n") + len("func g() {\n")
	if got, err := v.Check(ctx, "go", []byte(doc), at, at, "\t}\n"); err != nil || got.OK {
		t.Errorf("stray } after a raw string: %+v, %v; want rejected", got, err)
	}
	if got, err := v.Check(ctx, "go", []byte(doc), at, at, "\tg()\n"); err != nil || !got.OK {
		t.Errorf("a call there: %+v, %v; want accepted", got, err)
	}
}

func TestLargeDocument(t *testing.T) {
	noLeaks(t)
	if testing.Short() {
		t.Skip("builds a 20 MB document")
	}
	var sb strings.Builder
	sb.WriteString("package p\n\n")
	for sb.Len() < 20<<20 {
		sb.WriteString("func f() {\n\tx := 1\n\t_ = x\n}\n\n")
	}
	// An error far from the cursor is outside the window.
	sb.WriteString("func broken( {\n")
	doc := []byte(sb.String())
	at := len(doc) / 2
	at = strings.LastIndex(string(doc[:at]), "\tx := 1\n") + len("\tx := 1\n")
	var v Validator
	got, err := v.Check(context.Background(), "go", doc, at, at, "\ty := 2\n")
	if err != nil {
		t.Fatal(err)
	}
	// The window's cut edges may count an error or two, the same with and
	// without the candidate.
	if !got.OK || got.Before > 2 {
		t.Errorf("Check in a 20 MB document = %+v, want OK with at most the window's edge errors", got)
	}
}

func TestIdentifiers(t *testing.T) {
	noLeaks(t)
	tests := []struct {
		name   string
		lang   string
		doc    string
		radius int
		want   []string
	}{
		{name: "go nearest first", lang: "go", radius: 200,
			doc:  "package p\n\nfunc f(pt geo.Point) {\n\td := geo.Dist(pt, |)\n}\n",
			want: []string{"pt", "Dist", "geo", "Point"}},
		{name: "radius bounds", lang: "go", radius: 30,
			doc:  "package p\n\nfunc alpha() {}\n\n\n\n\n\n\nfunc beta() { gamma(|) }\n",
			want: []string{"gamma", "beta"}},
		{name: "strings and comments skipped", lang: "python", radius: 200,
			doc:  "# hello world\nvalue = \"text\"\nresult = compute(|value)\n",
			want: []string{"value", "compute", "result"}},
		{name: "no grammar: words", lang: "lua", radius: 100,
			doc:  "local total = add(|first, second)\n",
			want: []string{"first", "add", "total", "second", "local"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, at := cursor(tt.doc)
			got, err := Identifiers(context.Background(), tt.lang, doc, at, tt.radius)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Identifiers = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDefinitions(t *testing.T) {
	noLeaks(t)
	tests := []struct {
		name  string
		file  string
		lang  string
		names []string
		want  []string // the first line of each definition's text
	}{
		{name: "go", file: "defs.go", lang: "go",
			names: []string{"Point", "Dist", "Add", "Meters", "Scale", "Origin", "missing"},
			want: []string{"// Point is a point in the plane.", "Meters float64", "const Scale = 2",
				"var Origin = Point{}", "// Dist returns the distance between p and q.", "func (p Point) Add(q Point) Point {"}},
		{name: "python", file: "defs.py", lang: "python", names: []string{"Point", "norm", "dist", "helper"},
			want: []string{"class Point:", "def norm(self):", "def dist(p, q):", "@decorated"}},
		{name: "javascript", file: "defs.js", lang: "javascript", names: []string{"dist", "Point", "norm", "other", "App"},
			want: []string{"export function dist(p, q) {", "class Point {", "norm() { return Math.hypot(this.x, this.y); }",
				"const scale = 2, other = 3;", "const App = () => <div>hi</div>;"}},
		{name: "typescript", file: "defs.ts", lang: "typescript", names: []string{"dist", "Point", "Shape", "Meters", "Color", "scale"},
			want: []string{"export function dist(p: Point, q: Point): number {", "export class Point {",
				"interface Shape { area(): number }", "type Meters = number;", "enum Color { Red, Green }", "export const scale = 2;"}},
		{name: "tsx", file: "defs.ts", lang: "typescriptreact", names: []string{"Meters"},
			want: []string{"type Meters = number;"}},
		{name: "rust", file: "defs.rs", lang: "rust", names: []string{"Point", "Shape", "norm", "dist", "Area", "SCALE"},
			want: []string{"pub struct Point {", "pub enum Shape { Circle(f64), Square(f64) }", "impl Point {",
				"pub fn norm(&self) -> f64 { (self.x * self.x + self.y * self.y).sqrt() }",
				"pub fn dist(p: &Point, q: &Point) -> f64 {", "trait Area { fn area(&self) -> f64; }", "const SCALE: i32 = 2;"}},
		{name: "c", file: "defs.c", lang: "c", names: []string{"SCALE", "point", "point_t", "buf", "dist"},
			want: []string{"#define SCALE 2", "struct point {", "typedef struct point point_t;", "static double *buf;",
				"double dist(struct point p, struct point q) {"}},
		{name: "cpp", file: "defs.cpp", lang: "cpp", names: []string{"Point", "norm", "dist", "len"},
			want: []string{"class Point {", "double norm() const { return std::hypot(x, y); }",
				"double dist(const Point &p, const Point &q) {", "double Point::len() const { return norm(); }"}},
		{name: "java", file: "defs.java", lang: "java", names: []string{"Point", "norm", "Shape", "Color", "x"},
			want: []string{"public class Point {", "double x, y;", "public Point(double x, double y) { this.x = x; this.y = y; }",
				"public double norm() {", "interface Shape { double area(); }", "enum Color { RED, GREEN }"}},
		{name: "no grammar", file: "defs.go", lang: "lua", names: []string{"Point"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := os.ReadFile("testdata/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			defs, err := Definitions(context.Background(), tt.lang, src, tt.names)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range defs {
				got = append(got, strings.SplitN(d.Text, "\n", 2)[0])
				if !strings.Contains(string(src[d.Start:d.End]), d.Name) {
					t.Errorf("definition %q: range [%d,%d) does not hold the name", d.Name, d.Start, d.End)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Definitions first lines =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestDefinitionShortened(t *testing.T) {
	noLeaks(t)
	src := "package p\n\nfunc Long() {\n" + strings.Repeat("\tx := 1\n", 100) + "}\n"
	defs, err := Definitions(context.Background(), "go", []byte(src), []string{"Long"})
	if err != nil || len(defs) != 1 {
		t.Fatalf("Definitions = %v, %v; want one", defs, err)
	}
	text := defs[0].Text
	if n := strings.Count(text, "\n"); n != maxDefinitionLine || !strings.HasSuffix(text, "\n...") ||
		!strings.HasPrefix(text, "func Long() {\n") {
		t.Errorf("long definition kept as %q (%d newlines)", text, n)
	}
}

func BenchmarkCheckLarge(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("package p\n\n")
	for sb.Len() < 20<<20 {
		sb.WriteString("func f() {\n\tx := 1\n\t_ = x\n}\n\n")
	}
	doc := []byte(sb.String())
	at := strings.LastIndex(string(doc[:len(doc)/2]), "\tx := 1\n") + len("\tx := 1\n")
	var v Validator
	for b.Loop() {
		if _, err := v.Check(context.Background(), "go", doc, at, at, "\ty := 2\n"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestIncrementalMatchesFresh checks the session's incremental reparse (an
// edited copy of the window's tree) against a parse from scratch of the
// same text, for random ranges replaced by random snippets in several
// grammars: both find errors or neither does, and both find errors in the
// inserted text or neither does. (Where there are errors, recovery may
// count them differently; a 20-fold run of this test found no case where
// the two disagree on these.)
func TestIncrementalMatchesFresh(t *testing.T) {
	noLeaks(t)
	docs := map[string]string{
		"go":         "package p\n\nimport \"fmt\"\n\nfunc f(xs []int) (int, error) {\n\tsum := 0\n\tfor _, x := range xs {\n\t\tif x < 0 {\n\t\t\treturn 0, fmt.Errorf(\"negative %d\", x)\n\t\t}\n\t\tsum += x\n\t}\n\treturn sum, nil\n}\n",
		"python":     "def f(xs):\n    total = 0\n    for x in xs:\n        if x < 0:\n            raise ValueError(x)\n        total += x\n    return total\n",
		"typescript": "export function f(xs: number[]): number {\n  let sum = 0;\n  for (const x of xs) {\n    if (x < 0) { throw new Error(`neg ${x}`); }\n    sum += x;\n  }\n  return sum;\n}\n",
		"rust":       "fn f(xs: &[i32]) -> Result<i32, String> {\n    let mut sum = 0;\n    for x in xs {\n        if *x < 0 { return Err(format!(\"neg {}\", x)); }\n        sum += x;\n    }\n    Ok(sum)\n}\n",
	}
	snippets := []string{"", "x", ")", "}", "{", "\n", "return 1\n", "if a {\n\tb()\n}\n", "(1, 2", "\"str", "// c\n", "foo(bar[1])", "  ", "}\n}\n", "é"}
	rng := rand.New(rand.NewPCG(3, 4))
	ctx := context.Background()
	for lang, doc := range docs {
		for range 150 {
			start := rng.IntN(len(doc) + 1)
			end := min(len(doc), start+rng.IntN(12))
			insert := snippets[rng.IntN(len(snippets))] + snippets[rng.IntN(len(snippets))]
			var v Validator
			s, err := v.Begin(ctx, lang, []byte(doc), start, end)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.count([]byte(insert))
			ws, tail := start-len(s.head), len(s.tail)
			s.Close()
			if err != nil {
				t.Fatal(err)
			}
			// The same window, edited, parsed from scratch.
			edited := doc[:start] + insert + doc[end:]
			fresh, err := begin(ctx, lang, []byte(edited), ws, start, start+len(insert), start+len(insert)+tail)
			if err != nil {
				t.Fatal(err)
			}
			want := fresh.before
			fresh.Close()
			if (got.total() == 0) != (want.total() == 0) || (got.inside == 0) != (want.inside == 0) {
				t.Errorf("%s: %q replacing [%d, %d): incremental %+v, fresh %+v", lang, insert, start, end, got, want)
			}
		}
	}
}

// TestWindowInStdlibLiteral checks completions the embedded model proposed
// on the standard library's encoding/csv tests, which added syntax errors
// that the window did not show: "{" left open in an element of a composite
// literal hundreds of lines long, after an element with a multi-line raw
// string (a short head then started inside it and the rest of the window
// parsed as one error), and a string without its comma in another element.
// No window short of the literal shows the range's syntax; the file is
// small enough to be parsed whole (MaxWholeBytes), so a whole field is
// accepted and the broken ones are not. It reads the file from GOROOT.
func TestWindowInStdlibLiteral(t *testing.T) {
	noLeaks(t)
	src, err := os.ReadFile(filepath.Join(runtime.GOROOT(), "src", "encoding", "csv", "reader_test.go"))
	if err != nil {
		t.Skipf("no Go source tree: %v", err)
	}
	const line = `	Input: "§a,§b,§c\n\n¶§d,§e,§f\n\n",` // the first such line: "BlankLine"
	at := bytes.Index(src, []byte(line))
	if at < 0 {
		t.Skip("encoding/csv/reader_test.go has changed")
	}
	doc := append(bytes.Clone(src[:at+1]), src[at+len(line):]...)
	var v Validator
	for insert, want := range map[string]bool{"{": false, `" "`: false, `Input: "x",`: true} {
		if got, err := v.Check(context.Background(), "go", doc, at+1, at+1, insert); err != nil || got.OK != want {
			t.Errorf("%q: %+v, %v; want OK %v", insert, got, err, want)
		}
	}
}

// BenchmarkCheckWhole measures a session that widens the window to the
// whole document (TestWindowInStdlibLiteral's, 19 KiB) beside one in the
// default window of the same file (a statement in a function): Begin (run
// while the model generates) and one candidate's Check.
func BenchmarkCheckWhole(b *testing.B) {
	src, err := os.ReadFile(filepath.Join(runtime.GOROOT(), "src", "encoding", "csv", "reader_test.go"))
	if err != nil {
		b.Skipf("no Go source tree: %v", err)
	}
	const line = `	Input: "§a,§b,§c\n\n¶§d,§e,§f\n\n",`
	at := bytes.Index(src, []byte(line))
	fn := bytes.Index(src, []byte("\tr := NewReader(&nTimes")) // in a function
	if at < 0 || fn < 0 {
		b.Skip("encoding/csv/reader_test.go has changed")
	}
	whole := append(bytes.Clone(src[:at+1]), src[at+len(line):]...)
	for _, bc := range []struct {
		name   string
		doc    []byte
		at     int
		insert string
	}{
		{"whole", whole, at + 1, `Input: "x",`},
		{"window", src, fn, "\tx := 1\n"},
	} {
		var v Validator
		b.Run(bc.name+"/begin", func(b *testing.B) {
			for b.Loop() {
				s, err := v.Begin(context.Background(), "go", bc.doc, bc.at, bc.at)
				if err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
		})
		b.Run(bc.name+"/check", func(b *testing.B) {
			s, err := v.Begin(context.Background(), "go", bc.doc, bc.at, bc.at)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			for b.Loop() {
				if got, err := s.Check(bc.insert); err != nil || !got.OK {
					b.Fatal(got, err)
				}
			}
		})
	}
}

// TestReservedNamesInValidCode parses valid code of each language with a
// list of reserved words (grammar.reserved) and checks that no name node
// in it is one: the Go standard library, and where this machine has them
// Python's, npm's JavaScript and the C headers, a sample of each.
// pythonStdlib returns the directory of Python's standard library, or "".
func pythonStdlib() string {
	out, err := exec.Command("python3", "-c", `import sysconfig; print(sysconfig.get_paths()["stdlib"])`).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// npmSource returns the directory of npm's own JavaScript sources, or "".
func npmSource() string {
	bin, err := exec.LookPath("npm")
	if err != nil {
		return ""
	}
	cli, err := filepath.EvalSymlinks(bin) // .../npm/bin/npm-cli.js
	if err != nil {
		return ""
	}
	return filepath.Dir(filepath.Dir(cli))
}

func TestReservedNamesInValidCode(t *testing.T) {
	noLeaks(t)
	corpora := []struct{ lang, dir, ext, from string }{
		{"go", filepath.Join(runtime.GOROOT(), "src"), ".go", "Go"},
		{"python", pythonStdlib(), ".py", "python3"},
		{"javascript", npmSource(), ".js", "npm"},
		{"c", "/usr/include", ".h", "libc6-dev (gcc's)"},
	}
	const every = 30 // the sample: every thirtieth file
	for _, c := range corpora {
		t.Run(c.lang, func(t *testing.T) {
			g := lookup(c.lang)
			p := newParser(g)
			defer closeParser(p)
			files, seen := 0, 0
			err := filepath.WalkDir(c.dir, func(path string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() || !strings.HasSuffix(path, c.ext) || strings.Contains(path, "testdata") {
					return nil
				}
				if seen++; seen%every != 0 {
					return nil
				}
				src, err := os.ReadFile(path)
				if err != nil {
					return nil
				}
				tree, err := p.ParseCtx(context.Background(), nil, src)
				if err != nil {
					return err
				}
				openTrees.Add(1)
				defer closeTree(tree)
				if root := tree.RootNode(); !root.HasError() { // valid to the grammar, so valid code
					files++
					for _, at := range reservedNames(g, root, src, 0, uint32(len(src)), nil) {
						t.Errorf("%s: a reserved word as a name: %q", path, src[at:min(int(at)+40, len(src))])
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if files == 0 {
				t.Fatalf("no valid %s files under %q: install %s (make deps does)", c.ext, c.dir, c.from)
			}
			t.Logf("%d files", files)
		})
	}
}

// TestBracketsInBrokenCode checks a candidate that closes blocks early in
// a function the user left broken (the line that opened a closure is
// missing): error recovery keeps the error where it was, so only a
// candidate that repairs the function may change its brackets.
func TestBracketsInBrokenCode(t *testing.T) {
	doc := "package p\n\nfunc A(b *testing.B) {\n\tfor i := 0; i < b.N; i++ {\n\t\tSplit(s, sep)\n\t}\n}\n\n" +
		"func B(b *testing.B) {\n\ts := Repeat(\"@\", 8*1024)\n\tfor j := 8; j <= 30; j++ {\n\t\tfor _, k := range []int{1, 16, 4097} {\n\t\t\ts := s[:k]\n\t\t\tn := (1 << j) / k\n\t\t\tif n == 0 {\n\t\t\t\tcontinue\n\t\t\t}\n\t\t\t|\n" +
		"\t\t\t\tfor i := 0; i < b.N; i++ {\n\t\t\t\t\tRepeat(s, n)\n\t\t\t\t}\n\t\t\t\tb.SetBytes(int64(n * len(s)))\n\t\t\t})\n\t\t}\n\t}\n}\n"
	at := strings.Index(doc, "|")
	doc = doc[:at] + doc[at+1:]
	var v Validator
	for insert, want := range map[string]bool{
		"}\n\t\t\t}": false,
		`b.Run(fmt.Sprintf("%d/%d", 1<<j, k), func(b *testing.B) {`: true,
	} {
		if got, err := v.Check(context.Background(), "go", []byte(doc), at, at, insert); err != nil || got.OK != want {
			t.Errorf("%q: %+v, %v; want OK %v", insert, got, err, want)
		}
	}
}
