package lsp

import (
	"context"
	"fmt"
	"strings"

	"go.lsp.dev/jsonrpc2"
)

// completion answers textDocument/completion for clients without inline
// completion: one item per candidate whose textEdit inserts the infill,
// labelled with its first line and documented with the whole text.
func (s *Server) completion(ctx context.Context, req *jsonrpc2.Request) (any, error) {
	var p CompletionParams
	if err := decode(req, &p); err != nil {
		return nil, err
	}
	invoked := p.Context != nil && p.Context.TriggerKind == CompletionTriggerInvoked
	// The list is incomplete: typing on asks again rather than filtering.
	list := CompletionList{IsIncomplete: true, Items: []CompletionItem{}}
	pr := s.prepare(ctx, p.TextDocument.URI, p.Position, invoked)
	if pr == nil {
		return reply(list)
	}
	res, err := s.complete(ctx, pr)
	if err != nil {
		return nil, err
	}
	for i, it := range res.Items {
		label := firstLine(it.Insert)
		if label == "" {
			continue
		}
		list.Items = append(list.Items, CompletionItem{
			Label:  label,
			Kind:   CompletionItemKindText,
			Detail: fmt.Sprintf("dfill %.0f%%", 100*it.Confidence),
			Documentation: &MarkupContent{
				Kind:  "markdown",
				Value: "```" + pr.doc.languageID + "\n" + it.Insert + "\n```",
			},
			TextEdit:         &TextEdit{Range: pr.doc.mapper.Range(it.Start, it.End), NewText: it.Insert},
			InsertTextFormat: InsertTextFormatPlainText,
			SortText:         fmt.Sprintf("%04d", i),
		})
	}
	return reply(list)
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
