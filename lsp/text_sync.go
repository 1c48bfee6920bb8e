package lsp

import (
	"context"

	"go.lsp.dev/protocol"
	"go.uber.org/zap"
)

// The text synchronisation notifications run on the read loop, so they
// apply in wire order and a completion request sees every edit sent before
// it.

// DidOpen stores a newly opened document.
func (s *Server) DidOpen(ctx context.Context, p *protocol.DidOpenTextDocumentParams) error {
	d := s.docs.open(p.TextDocument, s.positionEncoding())
	s.completer.DidChange(d.uri, d.path, d.text(), 0, len(d.text()))
	return nil
}

// DidChange applies incremental or full changes to an open document.
func (s *Server) DidChange(ctx context.Context, p *protocol.DidChangeTextDocumentParams) error {
	uri := string(p.TextDocument.URI)
	d := s.docs.get(uri)
	if d == nil {
		s.log.Warn("didChange for a document that is not open", zap.String("uri", uri))
		return nil
	}
	if p.TextDocument.Version <= d.version && len(p.ContentChanges) > 0 { // Neovim 0.7 repeats a version with no changes
		s.log.Warn("didChange does not increase the version",
			zap.String("uri", uri), zap.Int32("have", d.version), zap.Int32("got", p.TextDocument.Version))
	}
	enc := s.positionEncoding()
	text, wrote, skipped := applyChanges(d.text(), enc, p.ContentChanges)
	for _, err := range skipped {
		s.log.Warn("edit does not apply", zap.String("uri", uri), zap.Error(err))
	}
	next := *d
	next.version = p.TextDocument.Version
	next.mapper = NewMapper(text, enc)
	s.docs.put(&next)
	s.completer.DidChange(uri, d.path, text, wrote.start, wrote.end)
	return nil
}

// DidClose forgets a document and cancels its pending completions.
func (s *Server) DidClose(ctx context.Context, p *protocol.DidCloseTextDocumentParams) error {
	uri := string(p.TextDocument.URI)
	if !s.docs.close(uri) {
		s.log.Warn("didClose for a document that is not open", zap.String("uri", uri))
	}
	s.mu.Lock()
	for k, pc := range s.latest {
		if k.uri == uri {
			pc.cancel(errCancelled)
			delete(s.latest, k)
		}
	}
	s.mu.Unlock()
	s.completer.DidClose(uri)
	return nil
}

// positionEncoding returns the negotiated position encoding.
func (s *Server) positionEncoding() protocol.PositionEncodingKind {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.encoding
}
