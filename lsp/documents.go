package lsp

import (
	"fmt"
	"sort"
	"sync"

	"go.lsp.dev/protocol"
	"go.lsp.dev/uri"

	"github.com/dfill/dfill/completion"
)

// document is one open document. A document value is never modified after
// it is stored: an edit stores a new value, so a handler can keep a snapshot
// while later edits arrive.
type document struct {
	uri        string
	path       string // file path of a file: URI, or ""
	languageID string
	version    int32
	mapper     *Mapper // text and its line index, in the negotiated encoding
}

func (d *document) text() string { return d.mapper.Text() }

// documents is the store of open documents, keyed by URI.
type documents struct {
	// mu guards docs.
	mu   sync.Mutex
	docs map[string]*document
}

func newDocuments() *documents {
	return &documents{docs: make(map[string]*document)}
}

// open stores a newly opened document, replacing one with the same URI.
func (s *documents) open(item protocol.TextDocumentItem, encoding protocol.PositionEncodingKind) *document {
	d := &document{
		uri:        string(item.URI),
		path:       filePath(item.URI),
		languageID: string(item.LanguageID),
		version:    item.Version,
		mapper:     NewMapper(item.Text, encoding),
	}
	s.mu.Lock()
	s.docs[d.uri] = d
	s.mu.Unlock()
	return d
}

// get returns the current snapshot of uri, or nil if it is not open.
func (s *documents) get(uri string) *document {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.docs[uri]
}

// close forgets uri and reports whether it was open.
func (s *documents) close(uri string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.docs[uri]
	delete(s.docs, uri)
	return ok
}

// put stores d as the current snapshot of its URI.
func (s *documents) put(d *document) {
	s.mu.Lock()
	s.docs[d.uri] = d
	s.mu.Unlock()
}

// others returns the open documents other than uri, in URI order, for
// cross-file context.
func (s *documents) others(uri string) []completion.Document {
	s.mu.Lock()
	out := make([]completion.Document, 0, len(s.docs))
	for u, d := range s.docs {
		if u != uri {
			out = append(out, completion.Document{URI: u, Path: d.path, LanguageID: d.languageID, Text: d.text()})
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].URI < out[j].URI })
	return out
}

// filePath returns the file path a file: URI names, or "" for other URIs.
func filePath(u uri.URI) string {
	if !u.IsFile() {
		return ""
	}
	return u.FsPath()
}

// span is a byte range [start, end) of a text.
type span struct{ start, end int }

// applyChanges applies LSP content changes to text in order and returns the
// new text and the byte span of the new text the changes wrote (covering all
// of them). Positions are in the given encoding and clamp as Mapper.Offset
// clamps. A change whose range starts after it ends does not apply: it is
// skipped and reported in skipped, and the later changes still apply.
func applyChanges(text string, encoding protocol.PositionEncodingKind, changes []protocol.TextDocumentContentChangeEvent) (newText string, wrote span, skipped []error) {
	wrote = span{-1, -1}
	for i, change := range changes {
		var c *protocol.TextDocumentContentChangePartial
		switch ch := change.(type) {
		case *protocol.TextDocumentContentChangeWholeDocument:
			text = ch.Text
			wrote = span{0, len(text)}
			continue
		case *protocol.TextDocumentContentChangePartial:
			c = ch
		default:
			skipped = append(skipped, fmt.Errorf("change %d: neither a range edit nor a whole document", i))
			continue
		}
		if before(c.Range.End, c.Range.Start) {
			skipped = append(skipped, fmt.Errorf("change %d: range %d:%d-%d:%d starts after it ends",
				i, c.Range.Start.Line, c.Range.Start.Character, c.Range.End.Line, c.Range.End.Character))
			continue
		}
		start, end := NewMapper(text, encoding).Offsets(c.Range)
		text = text[:start] + c.Text + text[end:]
		wrote = cover(wrote, start, end, len(c.Text))
	}
	if wrote.start < 0 {
		wrote = span{0, 0}
	}
	return text, wrote, skipped
}

// cover returns the span, in the text after an edit that replaced [s, e)
// with n bytes, that covers both w (a span before the edit; start -1 means
// none) and the edit's new bytes.
func cover(w span, s, e, n int) span {
	if w.start < 0 {
		return span{s, s + n}
	}
	move := func(p int) int {
		switch {
		case p <= s:
			return p
		case p >= e:
			return p - (e - s) + n
		default:
			return s
		}
	}
	return span{min(move(w.start), s), max(move(w.end), s+n)}
}
