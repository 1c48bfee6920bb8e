package lsp

import (
	"context"

	"go.lsp.dev/jsonrpc2"
	"go.uber.org/zap"
)

// The text synchronisation notifications run on the read loop, so they
// apply in wire order and a completion request sees every edit sent before
// it.

// didOpen stores a newly opened document.
func (s *Server) didOpen(ctx context.Context, req *jsonrpc2.Request) (any, error) {
	var p DidOpenTextDocumentParams
	if err := decode(req, &p); err != nil {
		return nil, err
	}
	d := s.docs.open(p.TextDocument, s.positionEncoding())
	s.completer.DidChange(d.uri, d.text(), 0, len(d.text()))
	return nil, nil
}

// didChange applies incremental or full changes to an open document.
func (s *Server) didChange(ctx context.Context, req *jsonrpc2.Request) (any, error) {
	var p DidChangeTextDocumentParams
	if err := decode(req, &p); err != nil {
		return nil, err
	}
	uri := p.TextDocument.URI
	d := s.docs.get(uri)
	if d == nil {
		s.log.Warn("didChange for a document that is not open", zap.String("uri", uri))
		return nil, nil
	}
	if p.TextDocument.Version <= d.version {
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
	s.completer.DidChange(uri, text, wrote.start, wrote.end)
	return nil, nil
}

// didClose forgets a document and cancels its pending completion.
func (s *Server) didClose(ctx context.Context, req *jsonrpc2.Request) (any, error) {
	var p DidCloseTextDocumentParams
	if err := decode(req, &p); err != nil {
		return nil, err
	}
	uri := p.TextDocument.URI
	if !s.docs.close(uri) {
		s.log.Warn("didClose for a document that is not open", zap.String("uri", uri))
	}
	s.mu.Lock()
	if pc := s.latest[uri]; pc != nil {
		pc.cancel(errCancelled)
		delete(s.latest, uri)
	}
	s.mu.Unlock()
	s.completer.DidClose(uri)
	return nil, nil
}

// positionEncoding returns the negotiated position encoding.
func (s *Server) positionEncoding() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.encoding
}
