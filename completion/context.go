package completion

import (
	"cmp"
	"context"
	"hash/fnv"
	"slices"
	"strings"
	"sync"

	"github.com/dfill/dfill/completion/syntax"
	"github.com/dfill/dfill/fim"
)

// Limits on the context gathered for a prompt.
const (
	identRadius     = 2048    // bytes around the cursor whose identifiers are looked up
	maxOtherDocs    = 20      // open documents searched for definitions
	maxOtherBytes   = 1 << 20 // bytes of each other document searched
	maxDefSnippets  = 8       // definitions offered to the prompt
	maxEditsPerURI  = 3       // recently edited chunks kept per document
	maxEditURIs     = 16      // documents whose edits are kept
	editContext     = 2       // lines kept above and below an edit
	maxEditBytes    = 600     // bytes of one edited chunk
	nearCursorLines = 100     // edits this close to the cursor are already in the prompt
	maxDeclCache    = 32      // documents whose declarations are kept
)

// edit is a recently edited chunk of a document.
type edit struct {
	firstLine, lastLine int // lines of the chunk in the document when it was edited
	text                string
	name                string // the document's file path, or its URI when it has none
}

// editRing keeps the recent edits of a few documents.
type editRing struct {
	// mu guards the fields below.
	mu    sync.Mutex
	byURI map[string][]edit // oldest first
	order []string          // URIs, least recently edited first
}

// add records an edit of text that wrote [start, end); path is the
// document's file path ("" when its URI names no file).
func (r *editRing) add(uri, path, text string, start, end int) {
	start = min(max(start, 0), len(text))
	end = min(max(end, start), len(text))
	first := strings.Count(text[:start], "\n")
	last := first + strings.Count(text[start:end], "\n")
	// The chunk: the edited lines and editContext lines above and below.
	lo := start
	for n := 0; lo > 0; lo-- {
		if text[lo-1] == '\n' {
			if n == editContext {
				break
			}
			n++
		}
	}
	hi := end
	for n := 0; hi < len(text); hi++ {
		if text[hi] == '\n' {
			if n == editContext {
				break
			}
			n++
		}
	}
	chunk := strings.TrimRight(text[lo:hi], "\r\n")
	if len(chunk) > maxEditBytes {
		chunk = chunk[:strings.LastIndexByte(chunk[:maxEditBytes], '\n')+1]
	}
	e := edit{firstLine: first, lastLine: last, text: chunk, name: cmp.Or(path, uri)}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byURI == nil {
		r.byURI = make(map[string][]edit)
	}
	edits := r.byURI[uri]
	// Typing on along one region replaces its chunk rather than adding one.
	if n := len(edits); n > 0 && first <= edits[n-1].lastLine+editContext && last >= edits[n-1].firstLine-editContext {
		edits = edits[:n-1]
	}
	if strings.TrimSpace(chunk) != "" {
		edits = append(edits, e)
	}
	if len(edits) > maxEditsPerURI {
		edits = edits[len(edits)-maxEditsPerURI:]
	}
	r.byURI[uri] = edits
	r.order = append(slices.DeleteFunc(r.order, func(u string) bool { return u == uri }), uri)
	if len(r.order) > maxEditURIs {
		delete(r.byURI, r.order[0])
		r.order = r.order[1:]
	}
}

// forget drops the edits of uri.
func (r *editRing) forget(uri string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byURI, uri)
	r.order = slices.DeleteFunc(r.order, func(u string) bool { return u == uri })
}

// snippets returns recent edits as prompt snippets, most recent first,
// leaving out those of uri within nearCursorLines of the cursor's line
// (the prompt holds them already); line returns that line.
func (r *editRing) snippets(uri string, line func() int) []fim.Snippet {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []fim.Snippet
	cursor := -1
	for i := len(r.order) - 1; i >= 0; i-- {
		u := r.order[i]
		edits := r.byURI[u]
		for j := len(edits) - 1; j >= 0; j-- {
			e := edits[j]
			if u == uri {
				if cursor < 0 {
					cursor = line()
				}
				if e.lastLine >= cursor-nearCursorLines && e.firstLine <= cursor+nearCursorLines {
					continue
				}
			}
			out = append(out, fim.Snippet{Path: e.name, Text: e.text})
		}
	}
	return out
}

// declCache keeps the declarations of other documents, keyed by URI and a
// hash of their text, so that a document is parsed once per version.
type declCache struct {
	// mu guards the fields below.
	mu      sync.Mutex
	entries map[string]declEntry
	order   []string // least recently stored first
}

type declEntry struct {
	hash  uint64
	decls []syntax.Definition
}

// get returns the declarations of doc, parsing it when its text changed.
func (d *declCache) get(ctx context.Context, doc Document, lang string) ([]syntax.Definition, error) {
	text := doc.Text
	if len(text) > maxOtherBytes {
		text = text[:strings.LastIndexByte(text[:maxOtherBytes], '\n')+1]
	}
	h := fnv.New64a()
	h.Write([]byte(lang))
	h.Write([]byte{0})
	h.Write([]byte(text))
	sum := h.Sum64()
	d.mu.Lock()
	e, ok := d.entries[doc.URI]
	d.mu.Unlock()
	if ok && e.hash == sum {
		return e.decls, nil
	}
	decls, err := syntax.Declarations(ctx, lang, []byte(text))
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.entries == nil {
		d.entries = make(map[string]declEntry)
	}
	if _, ok := d.entries[doc.URI]; !ok {
		d.order = append(d.order, doc.URI)
	}
	d.entries[doc.URI] = declEntry{hash: sum, decls: decls}
	if len(d.order) > maxDeclCache {
		delete(d.entries, d.order[0])
		d.order = d.order[1:]
	}
	return decls, nil
}

// forget drops the declarations of uri.
func (d *declCache) forget(uri string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.entries, uri)
	d.order = slices.DeleteFunc(d.order, func(u string) bool { return u == uri })
}

// definitionSnippets returns the definitions, in other open documents, of
// the identifiers used near the cursor, those of the nearest identifiers
// first.
func (c *Completer) definitionSnippets(ctx context.Context, req Request, lang, text string, off int) []fim.Snippet {
	if len(req.Others) == 0 {
		return nil
	}
	lo, hi := max(0, off-identRadius), min(len(text), off+identRadius)
	names, err := syntax.Identifiers(ctx, lang, []byte(text[lo:hi]), off-lo, identRadius)
	if err != nil || len(names) == 0 {
		return nil
	}
	rank := make(map[string]int, len(names))
	for i, n := range names {
		rank[n] = i
	}
	type found struct {
		rank int
		s    fim.Snippet
	}
	var all []found
	for i, doc := range req.Others {
		if i == maxOtherDocs || ctx.Err() != nil {
			break
		}
		name := cmp.Or(doc.Path, doc.URI)
		dl := languageOf(doc.LanguageID, name)
		if syntax.Grammar(dl) == "" {
			continue
		}
		decls, err := c.decls.get(ctx, doc, dl)
		if err != nil {
			continue
		}
		for _, d := range decls {
			if r, ok := rank[d.Name]; ok {
				all = append(all, found{r, fim.Snippet{Path: name, Text: d.Text}})
			}
		}
	}
	slices.SortStableFunc(all, func(a, b found) int { return a.rank - b.rank })
	out := make([]fim.Snippet, 0, min(len(all), maxDefSnippets))
	for _, f := range all {
		if len(out) == maxDefSnippets {
			break
		}
		// A declaration of several names ("var a, b int") once.
		if !slices.Contains(out, f.s) {
			out = append(out, f.s)
		}
	}
	return out
}

// languageOf returns the LSP language id of a document: id when set,
// otherwise guessed from its path.
func languageOf(id, path string) string {
	if id != "" {
		return id
	}
	return fim.LanguageFromPath(path)
}
