package lsp

import (
	"context"

	"go.lsp.dev/jsonrpc2"
)

// inlineCompletion answers textDocument/inlineCompletion (LSP 3.18): items
// with insertText and a range on the cursor's line. An invoked request may
// get several items; an automatic one gets the best.
func (s *Server) inlineCompletion(ctx context.Context, req *jsonrpc2.Request) (any, error) {
	var p InlineCompletionParams
	if err := decode(req, &p); err != nil {
		return nil, err
	}
	invoked := p.Context.TriggerKind == InlineTriggerInvoked
	list := InlineCompletionList{Items: []InlineCompletionItem{}}
	pr := s.prepare(ctx, p.TextDocument.URI, p.Position, invoked)
	if pr == nil {
		return reply(list)
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
		list.Items = append(list.Items, InlineCompletionItem{InsertText: it.Insert, Range: &r})
	}
	return reply(list)
}
