package syntax

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	sitter "github.com/smacker/go-tree-sitter"
)

// Limits on the context this file finds.
const (
	maxIdentifiers    = 64      // names Identifiers returns
	maxDefinitionSrc  = 1 << 20 // bytes of another file Definitions parses
	maxDefinitionLine = 12      // lines of a long definition kept
	maxDefinitionText = 1200    // bytes of a long definition kept
	maxDefinitionNest = 8       // how deep Definitions looks for nested ones
)

// Identifiers returns the identifiers used within radius bytes of offset
// in src (a document in languageID), nearest the cursor first, each once.
// Names of one character are left out. Languages without a grammar are
// scanned for identifier-shaped words.
func Identifiers(ctx context.Context, languageID string, src []byte, offset, radius int) ([]string, error) {
	offset = min(max(offset, 0), len(src))
	radius = max(radius, 0)
	ws, we := window(src, offset, offset, 1<<30, 2*radius)
	win := src[ws:we]
	cursor := offset - ws

	type hit struct {
		name string
		dist int
	}
	var hits []hit
	add := func(name string, start, end int) {
		if len(name) < 2 {
			return
		}
		d := 0
		if end < cursor {
			d = cursor - end
		} else if start > cursor {
			d = start - cursor
		}
		hits = append(hits, hit{name, d})
	}

	if g := lookup(languageID); g != nil {
		p := newParser(g)
		defer closeParser(p)
		t, err := p.ParseCtx(ctx, nil, win)
		if err != nil {
			return nil, fmt.Errorf("syntax: identifiers in %s (%d bytes): %w", languageID, len(win), err)
		}
		openTrees.Add(1)
		defer closeTree(t)
		c := sitter.NewTreeCursor(t.RootNode())
		defer c.Close()
		for {
			n := c.CurrentNode()
			if n.ChildCount() == 0 && n.IsNamed() && strings.HasSuffix(n.Type(), "identifier") {
				s, e := int(n.StartByte()), int(n.EndByte())
				add(string(win[s:e]), s, e)
			}
			if c.GoToFirstChild() {
				continue
			}
			for !c.GoToNextSibling() {
				if !c.GoToParent() {
					goto done
				}
			}
		}
	done:
	} else {
		for i := 0; i < len(win); {
			if !isIdentStart(win[i]) {
				i++
				continue
			}
			j := i + 1
			for j < len(win) && (isIdentStart(win[j]) || win[j] >= '0' && win[j] <= '9') {
				j++
			}
			add(string(win[i:j]), i, j)
			i = j
		}
	}

	slices.SortStableFunc(hits, func(a, b hit) int { return a.dist - b.dist })
	seen := make(map[string]bool, len(hits))
	var names []string
	for _, h := range hits {
		if !seen[h.name] {
			seen[h.name] = true
			names = append(names, h.name)
			if len(names) == maxIdentifiers {
				break
			}
		}
	}
	return names, nil
}

func isIdentStart(b byte) bool {
	return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= 0x80
}

// Definition is a declaration found in a file.
type Definition struct {
	Name string
	// Text is the declaration's source (with the comment right above it);
	// a long one keeps its first lines and ends in a line "...".
	Text       string
	Start, End int // byte range of the whole declaration in the source
}

// Definitions returns the declarations of src (a file in languageID) named
// by one of names; see Declarations.
func Definitions(ctx context.Context, languageID string, src []byte, names []string) ([]Definition, error) {
	if len(names) == 0 {
		return nil, nil
	}
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	return declarations(ctx, languageID, src, want)
}

// Declarations returns the top-level declarations of src (a file in
// languageID), with methods and members of types declared there, in source
// order: functions, methods, types, classes, constants and variables, as
// each grammar calls them. Only the first MiB of src is read. A language
// without a grammar has none.
func Declarations(ctx context.Context, languageID string, src []byte) ([]Definition, error) {
	return declarations(ctx, languageID, src, nil)
}

// declarations returns the declarations of src named in want (nil: all).
func declarations(ctx context.Context, languageID string, src []byte, want map[string]bool) ([]Definition, error) {
	g := lookup(languageID)
	if g == nil {
		return nil, nil
	}
	if len(src) > maxDefinitionSrc {
		cut := bytes.LastIndexByte(src[:maxDefinitionSrc], '\n') + 1
		src = src[:cut]
	}
	p := newParser(g)
	defer closeParser(p)
	t, err := p.ParseCtx(ctx, nil, src)
	if err != nil {
		return nil, fmt.Errorf("syntax: definitions in %s (%d bytes): %w", languageID, len(src), err)
	}
	openTrees.Add(1)
	defer closeTree(t)

	var defs []Definition
	type key struct {
		start, end int
		name       string
	}
	seen := map[key]bool{}
	var walk func(n *sitter.Node, depth int)
	walk = func(n *sitter.Node, depth int) {
		for i := 0; i < int(n.NamedChildCount()); i++ {
			ch := n.NamedChild(i)
			names, show, descend := declared(g, ch, src)
			for _, name := range names {
				if want != nil && !want[name] {
					continue
				}
				start, end := withComments(show, src), int(show.EndByte())
				if seen[key{start, end, name}] {
					continue
				}
				seen[key{start, end, name}] = true
				defs = append(defs, Definition{Name: name, Text: shorten(src[start:end]), Start: start, End: end})
			}
			if descend && depth < maxDefinitionNest {
				walk(ch, depth+1)
			}
		}
	}
	walk(t.RootNode(), 0)
	slices.SortStableFunc(defs, func(a, b Definition) int { return a.Start - b.Start })
	return defs, ctx.Err()
}

// declared returns the names n declares, the node to show for it (n or a
// wrapper such as a decorator or an export), and whether declarations
// nested in n are of interest (class bodies, impl blocks, namespaces).
func declared(g *grammar, n *sitter.Node, src []byte) (names []string, show *sitter.Node, descend bool) {
	name := func(field string) []string {
		if f := n.ChildByFieldName(field); f != nil {
			return []string{f.Content(src)}
		}
		return nil
	}
	show = n
	switch g {
	case goGrammar:
		switch n.Type() {
		case "function_declaration", "method_declaration":
			return name("name"), n, false
		case "type_spec", "type_alias":
			return name("name"), single(n, "type", src), false
		case "const_spec", "var_spec":
			return fieldAll(n, "name", src), single(n, strings.TrimSuffix(n.Type(), "_spec"), src), false
		case "type_declaration", "const_declaration", "var_declaration":
			return nil, n, true
		}
	case pythonGrammar:
		switch n.Type() {
		case "function_definition":
			return name("name"), decorated(n), false
		case "class_definition":
			return name("name"), decorated(n), true
		case "decorated_definition", "block":
			return nil, n, true
		}
	case jsGrammar, tsGrammar, tsxGrammar:
		switch n.Type() {
		case "function_declaration", "generator_function_declaration", "function_signature",
			"interface_declaration", "type_alias_declaration", "enum_declaration",
			"method_definition", "method_signature", "abstract_method_signature", "public_field_definition":
			return name("name"), exported(n), false
		case "class_declaration", "abstract_class_declaration":
			return name("name"), exported(n), true
		case "variable_declarator":
			if p := n.Parent(); p != nil {
				show = exported(p)
			}
			if f := n.ChildByFieldName("name"); f != nil && f.Type() == "identifier" {
				return []string{f.Content(src)}, show, false
			}
			return nil, show, false
		case "export_statement", "class_body", "lexical_declaration", "variable_declaration",
			"interface_body", "ambient_declaration", "internal_module", "module", "statement_block":
			return nil, n, n.Type() != "statement_block" || isModuleBody(n)
		}
	case rustGrammar:
		switch n.Type() {
		case "function_item", "function_signature_item", "struct_item", "enum_item", "union_item",
			"type_item", "const_item", "static_item", "macro_definition":
			return name("name"), n, false
		case "trait_item", "mod_item":
			return name("name"), n, true
		case "impl_item":
			t := n.ChildByFieldName("type")
			for t != nil && t.Type() != "type_identifier" {
				t = t.ChildByFieldName("type")
			}
			if t == nil {
				return nil, n, true
			}
			return []string{t.Content(src)}, n, true
		case "declaration_list":
			return nil, n, true
		}
	case cGrammar, cppGrammar:
		switch n.Type() {
		case "function_definition":
			return declaratorName(n, src), n, false
		case "struct_specifier", "union_specifier", "enum_specifier", "class_specifier":
			if n.ChildByFieldName("body") == nil {
				return nil, n, false
			}
			return name("name"), n, true
		case "type_definition":
			return declaratorName(n, src), n, false
		case "preproc_def", "preproc_function_def":
			return name("name"), n, false
		case "declaration", "field_declaration":
			// A global variable or a member (a method declared in a class).
			return declaratorName(n, src), n, true
		case "namespace_definition", "declaration_list", "field_declaration_list", "template_declaration",
			"linkage_specification", "preproc_ifdef", "preproc_if", "preproc_else":
			return nil, n, true
		}
	case javaGrammar:
		switch n.Type() {
		case "method_declaration", "constructor_declaration":
			return name("name"), n, false
		case "class_declaration", "interface_declaration", "enum_declaration", "record_declaration",
			"annotation_type_declaration":
			return name("name"), n, true
		case "field_declaration", "constant_declaration":
			return fieldNames(n, "declarator", src), n, false
		case "class_body", "interface_body", "enum_body", "enum_body_declarations":
			return nil, n, true
		}
	}
	return nil, n, false
}

// single returns the declaration around a Go spec when it is the only one
// in it ("type T int" rather than just "T int"); otherwise the spec.
func single(spec *sitter.Node, keyword string, src []byte) *sitter.Node {
	if p := spec.Parent(); p != nil && p.NamedChildCount() == 1 && strings.HasPrefix(p.Content(src), keyword) {
		return p
	}
	return spec
}

// decorated returns a Python definition's decorated_definition wrapper.
func decorated(n *sitter.Node) *sitter.Node {
	if p := n.Parent(); p != nil && p.Type() == "decorated_definition" {
		return p
	}
	return n
}

// exported returns a JavaScript declaration's export_statement wrapper.
func exported(n *sitter.Node) *sitter.Node {
	if p := n.Parent(); p != nil && p.Type() == "export_statement" {
		return p
	}
	return n
}

// isModuleBody reports whether a statement_block is the body of a
// TypeScript namespace or module (whose declarations are visible outside).
func isModuleBody(n *sitter.Node) bool {
	p := n.Parent()
	return p != nil && (p.Type() == "internal_module" || p.Type() == "module")
}

// fieldAll returns the text of every child of n in field.
func fieldAll(n *sitter.Node, field string, src []byte) []string {
	var out []string
	for i := 0; i < int(n.ChildCount()); i++ {
		if n.FieldNameForChild(i) == field {
			out = append(out, n.Child(i).Content(src))
		}
	}
	return out
}

// fieldNames returns the "name" of every child of n in field (Java
// variable declarators).
func fieldNames(n *sitter.Node, field string, src []byte) []string {
	var out []string
	for i := 0; i < int(n.ChildCount()); i++ {
		if n.FieldNameForChild(i) != field {
			continue
		}
		if nm := n.Child(i).ChildByFieldName("name"); nm != nil {
			out = append(out, nm.Content(src))
		}
	}
	return out
}

// declaratorName follows a C/C++ declarator chain (pointer, function,
// array, init declarators, qualified names) to the declared name.
func declaratorName(n *sitter.Node, src []byte) []string {
	var out []string
	for i := 0; i < int(n.ChildCount()); i++ {
		if n.FieldNameForChild(i) != "declarator" {
			continue
		}
		d := n.Child(i)
		for range 16 {
			switch d.Type() {
			case "identifier", "field_identifier", "type_identifier", "destructor_name", "operator_name":
				out = append(out, d.Content(src))
			case "qualified_identifier":
				if nm := d.ChildByFieldName("name"); nm != nil {
					d = nm
					continue
				}
			default:
				if next := d.ChildByFieldName("declarator"); next != nil {
					d = next
					continue
				}
			}
			break
		}
	}
	return out
}

// withComments returns where n starts, moved up over the comments on the
// lines right above it.
func withComments(n *sitter.Node, src []byte) int {
	start, row := int(n.StartByte()), n.StartPoint().Row
	for c := n.PrevNamedSibling(); c != nil && strings.Contains(c.Type(), "comment"); c = c.PrevNamedSibling() {
		if c.EndPoint().Row+1 < row {
			break
		}
		start, row = int(c.StartByte()), c.StartPoint().Row
	}
	return start
}

// shorten keeps the first lines of a long definition.
func shorten(text []byte) string {
	s := string(text)
	cut := len(s)
	for i, n := 0, 0; i < len(s); i++ {
		if s[i] == '\n' {
			if n++; n == maxDefinitionLine {
				cut = i
				break
			}
		}
	}
	if cut > maxDefinitionText {
		cut = strings.LastIndexByte(s[:maxDefinitionText], '\n')
		if cut < 0 {
			cut = maxDefinitionText
			for cut > 0 && !utf8.RuneStart(s[cut]) {
				cut--
			}
		}
	}
	if cut == len(s) {
		return s
	}
	return strings.TrimRight(s[:cut], " \t\r\n") + "\n..."
}
