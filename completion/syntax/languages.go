// Package syntax parses source code with tree-sitter for the completion
// layer: it checks whether a candidate adds syntax errors to the buffer
// (trimming it to a prefix that does not), finds identifiers used near the
// cursor, and finds their definitions in other files. Languages without a
// grammar here get a bracket-balance check.
package syntax

import (
	"strings"
	"sync"
	"sync/atomic"

	sitter "github.com/smacker/go-tree-sitter"
	"github.com/smacker/go-tree-sitter/c"
	"github.com/smacker/go-tree-sitter/cpp"
	"github.com/smacker/go-tree-sitter/golang"
	"github.com/smacker/go-tree-sitter/java"
	"github.com/smacker/go-tree-sitter/javascript"
	"github.com/smacker/go-tree-sitter/python"
	"github.com/smacker/go-tree-sitter/rust"
	"github.com/smacker/go-tree-sitter/typescript/tsx"
	"github.com/smacker/go-tree-sitter/typescript/typescript"
)

// grammar is one tree-sitter language, loaded on first use.
type grammar struct {
	name     string // canonical name: "go", "python", "javascript", "typescript", "tsx", "rust", "c", "cpp", "java"
	load     func() *sitter.Language
	indented bool // blocks end where the indentation does, not at a bracket
	// reserved holds the language's reserved words, and identifiers the
	// node types of names: the bundled grammars predate tree-sitter's
	// reserved words and take a keyword where no keyword fits for a name
	// (`return nil, return` is a return of two values to tree-sitter-go),
	// so the validator counts such a name as an error itself. Each list is
	// checked against a corpus of valid code (TestReservedNamesInValidCode).
	reserved    map[string]bool
	identifiers map[string]bool
}

var (
	goGrammar = &grammar{name: "go", load: sync.OnceValue(golang.GetLanguage),
		// Not map and func: the grammar parses an unnamed parameter of map
		// or func type as a name followed by an index or a call.
		reserved: words("break case chan const continue default defer else fallthrough for go goto if " +
			"import interface package range return select struct switch type var"),
		identifiers: words("identifier field_identifier type_identifier package_identifier label_name")}
	pythonGrammar = &grammar{name: "python", load: sync.OnceValue(python.GetLanguage), indented: true,
		reserved: words("False None True and as assert async await break class continue def del elif else " +
			"except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield"),
		identifiers: words("identifier")}
	jsGrammar = &grammar{name: "javascript", load: sync.OnceValue(javascript.GetLanguage),
		// Not default: `export { default }` names it.
		reserved: words("break case catch class const continue debugger delete do else export extends " +
			"false finally for function if import in instanceof new null return super switch this throw true try " +
			"typeof var void while with"),
		identifiers: words("identifier")}
	tsGrammar   = &grammar{name: "typescript", load: sync.OnceValue(typescript.GetLanguage)}
	tsxGrammar  = &grammar{name: "tsx", load: sync.OnceValue(tsx.GetLanguage)}
	rustGrammar = &grammar{name: "rust", load: sync.OnceValue(rust.GetLanguage)}
	cGrammar    = &grammar{name: "c", load: sync.OnceValue(c.GetLanguage),
		// Statement and declaration keywords only: type keywords stand
		// alone as types (`unsigned;`), and macros redefine qualifiers
		// (`#define restrict __restrict__`).
		reserved: words("break case continue default do else enum extern for goto if return sizeof static " +
			"struct switch typedef union while"),
		identifiers: words("identifier field_identifier type_identifier statement_identifier")}
	cppGrammar  = &grammar{name: "cpp", load: sync.OnceValue(cpp.GetLanguage)}
	javaGrammar = &grammar{name: "java", load: sync.OnceValue(java.GetLanguage)}
)

// words returns the set of the space-separated words in s.
func words(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(s) {
		m[w] = true
	}
	return m
}

// byID maps LSP language ids (and a few common aliases) to grammars.
var byID = map[string]*grammar{
	"go": goGrammar, "golang": goGrammar,
	"python":     pythonGrammar,
	"javascript": jsGrammar, "javascriptreact": jsGrammar, "jsx": jsGrammar,
	"typescript":      tsGrammar,
	"typescriptreact": tsxGrammar, "tsx": tsxGrammar,
	"rust": rustGrammar,
	"c":    cGrammar,
	"cpp":  cppGrammar, "c++": cppGrammar, "cuda-cpp": cppGrammar,
	"java": javaGrammar,
}

// Grammar returns the canonical name of the tree-sitter grammar used for an
// LSP language id ("go", "tsx", ...), or "" when there is none and the
// bracket-balance check applies.
func Grammar(languageID string) string {
	if g := byID[strings.ToLower(languageID)]; g != nil {
		return g.name
	}
	return ""
}

func lookup(languageID string) *grammar { return byID[strings.ToLower(languageID)] }

// openTrees and openParsers count tree-sitter objects not yet closed; tests
// check they return to zero.
var openTrees, openParsers atomic.Int64

// newParser returns a parser for g; close it with closeParser.
func newParser(g *grammar) *sitter.Parser {
	p := sitter.NewParser()
	openParsers.Add(1)
	p.SetLanguage(g.load())
	return p
}

func closeParser(p *sitter.Parser) {
	p.Close()
	openParsers.Add(-1)
}

func closeTree(t *sitter.Tree) {
	t.Close()
	openTrees.Add(-1)
}
