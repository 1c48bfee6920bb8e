package lsp

import (
	"context"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.lsp.dev/protocol"

	"github.com/dfill/dfill/completion"
)

// Completion answers textDocument/completion for clients without inline
// completion, one item per candidate. Clients filter items against the word
// before the cursor (eglot, VS Code), so an item's edit starts at the start
// of that word and re-inserts it, its filterText begins with it, and its
// label reads as the line will. A request without a context is an explicit
// one (Neovim's omnifunc sends none).
func (s *Server) Completion(ctx context.Context, p *protocol.CompletionParams) (protocol.CompletionResult, error) {
	list := &protocol.CompletionList{IsIncomplete: true, Items: []protocol.CompletionItem{}}
	if !s.completionItemsOn() {
		list.IsIncomplete = false
		return list, nil
	}
	kind := p.Context.TriggerKind
	invoked := kind == 0 || kind == protocol.CompletionTriggerKindInvoked
	pr := s.prepare(ctx, protocol.MethodTextDocumentCompletion, p.TextDocument, p.Position, invoked)
	if pr == nil {
		return list, nil
	}
	res, err := s.complete(ctx, pr)
	if err != nil {
		return nil, err
	}
	// The list is incomplete: typing on asks again rather than filtering.
	list.Items = completionItems(pr.doc, res.Items)
	return list, nil
}

// completionItemsOn reports whether plain completion items are served: the
// completionItems setting, where "auto" means off for a client that shows
// inline completions (its suggest widget is for its other servers).
func (s *Server) completionItemsOn() bool {
	switch s.config().CompletionItems {
	case "always":
		return true
	case "never":
		return false
	}
	return !s.clientHasInlineCompletion()
}

// completionItems turns the Completer's items into LSP completion items
// with distinct labels, in rank order.
func completionItems(doc *document, items []completion.Item) []protocol.CompletionItem {
	text := doc.text()
	out := make([]protocol.CompletionItem, 0, len(items))
	seen := make(map[string]bool)
	for i, it := range items {
		ws := wordStart(text, it.Start)
		word := text[ws:it.Start]
		newText := word + it.Insert
		result := resultingLines(text, ws, it.End, newText)
		label := itemLabel(result, newText)
		if label == "" {
			continue
		}
		for n, base := 2, label; seen[label]; n++ {
			label = fmt.Sprintf("%s (%d)", base, n)
		}
		seen[label] = true
		filter := word + strings.TrimLeft(firstLine(newText[len(word):]), " \t")
		out = append(out, protocol.CompletionItem{
			Label:  label,
			Kind:   protocol.CompletionItemKindText,
			Detail: protocol.NewOptional(fmt.Sprintf("dfill %.0f%%", 100*it.Score)),
			Documentation: &protocol.MarkupContent{
				Kind:  protocol.MarkupKindMarkdown,
				Value: "```" + doc.languageID + "\n" + result + "\n```",
			},
			TextEdit:         &protocol.TextEdit{Range: doc.mapper.Range(ws, it.End), NewText: newText},
			InsertTextFormat: protocol.InsertTextFormatPlainText,
			FilterText:       protocol.NewOptional(filter),
			SortText:         protocol.NewOptional(fmt.Sprintf("%04d", i)),
		})
	}
	return out
}

// wordStart returns the offset where the word (letters, digits, '_') that
// ends at off in text begins; off when no word ends there.
func wordStart(text string, off int) int {
	for off > 0 {
		r, size := utf8.DecodeLastRuneInString(text[:off])
		if r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			break
		}
		off -= size
	}
	return off
}

// resultingLines returns the lines that text[start:end] replaced by insert
// turns the edited lines into.
func resultingLines(text string, start, end int, insert string) string {
	ls := strings.LastIndexByte(text[:start], '\n') + 1
	le := len(text)
	if i := strings.IndexByte(text[end:], '\n'); i >= 0 {
		le = end + i
	}
	return strings.TrimRight(text[ls:start]+insert+text[end:le], "\r")
}

// itemLabel is how an item inserting insert reads in a completion menu,
// from the lines it results in (resultingLines): its first line as the line
// will read (the code before the cursor included), or its first non-blank
// line when the insert starts a new line, and " …" when more lines follow.
func itemLabel(result, insert string) string {
	lines := strings.Split(strings.TrimRight(result, " \t\r\n"), "\n")
	label := ""
	if strings.TrimSpace(firstLineRaw(insert)) != "" {
		label = strings.TrimSpace(lines[0])
		lines = lines[1:]
	} else {
		lines = lines[1:] // the cursor's line, as it was
		for len(lines) > 0 && label == "" {
			label = strings.TrimSpace(lines[0])
			lines = lines[1:]
		}
	}
	if label == "" {
		return ""
	}
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			return label + " …"
		}
	}
	return label
}

// firstLineRaw returns s up to its first newline.
func firstLineRaw(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// firstLine returns the first non-blank line of s, trimmed.
func firstLine(s string) string {
	for line := range strings.Lines(s) {
		if t := strings.TrimSpace(line); t != "" {
			return t
		}
	}
	return ""
}
