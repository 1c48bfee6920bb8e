package lsp

import (
	"context"

	"go.lsp.dev/protocol"
)

// InlineCompletion answers textDocument/inlineCompletion (LSP 3.18): items
// with insertText and a range on the cursor's line. An invoked request may
// get several items; an automatic one gets the best.
func (s *Server) InlineCompletion(ctx context.Context, p *protocol.InlineCompletionParams) (protocol.InlineCompletionResult, error) {
	invoked := p.Context.TriggerKind == protocol.InlineCompletionTriggerKindInvoked
	list := &protocol.InlineCompletionList{Items: []protocol.InlineCompletionItem{}}
	pr := s.prepare(ctx, protocol.MethodTextDocumentInlineCompletion, p.TextDocument, p.Position, invoked)
	if pr == nil {
		return list, nil
	}
	res, err := s.complete(ctx, pr)
	if err != nil {
		return nil, err
	}
	for i, it := range res.Items {
		if i > 0 && !invoked {
			break
		}
		r := pr.doc.mapper.Range(it.Start, it.End)
		list.Items = append(list.Items, protocol.InlineCompletionItem{InsertText: protocol.String(it.Insert), Range: &r})
	}
	return list, nil
}
