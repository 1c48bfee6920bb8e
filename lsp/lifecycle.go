package lsp

import (
	"context"
	"slices"

	"go.lsp.dev/protocol"
	"go.uber.org/zap"
)

// Initialize negotiates the position encoding, records the client's
// capabilities and applies its initializationOptions.
func (s *Server) Initialize(ctx context.Context, p *protocol.InitializeParams) (*protocol.InitializeResult, error) {
	enc := protocol.PositionEncodingKindUTF16
	if g := p.Capabilities.General; g != nil && slices.Contains(g.PositionEncodings, protocol.PositionEncodingKindUTF8) {
		enc = protocol.PositionEncodingKindUTF8
	}
	cfg, problems := mergeSettings(s.config(), s.opts.Config, p.InitializationOptions, false)

	s.mu.Lock()
	s.state = stateInitialized
	s.encoding = enc
	s.caps = p.Capabilities
	s.mu.Unlock()
	s.setConfig(cfg)

	client := p.ClientInfo.Name
	if v, ok := p.ClientInfo.Version.Get(); ok {
		client += " " + v
	}
	s.log.Info("initialize", zap.String("client", client), zap.String("positionEncoding", string(enc)),
		zap.Bool("inlineCompletion", s.clientHasInlineCompletion()))
	s.reportSettings("initializationOptions", problems)

	incremental := protocol.TextDocumentSyncKindIncremental
	return &protocol.InitializeResult{
		Capabilities: protocol.ServerCapabilities{
			PositionEncoding:         enc,
			TextDocumentSync:         &protocol.TextDocumentSyncOptions{OpenClose: ptr(true), Change: &incremental},
			InlineCompletionProvider: protocol.Boolean(true),
			CompletionProvider:       &protocol.CompletionOptions{},
		},
		ServerInfo: protocol.ServerInfo{Name: "dfill", Version: protocol.NewOptional(s.opts.Version)},
	}, nil
}

// Initialized pulls the workspace configuration, when the client offers it,
// and then loads the model, off the read loop: completions that arrive
// while it loads wait for it (or for their cancellation).
func (s *Server) Initialized(ctx context.Context, p *protocol.InitializedParams) error {
	if s.loadBegun.Swap(true) {
		return nil // a client that sends initialized twice
	}
	go func() {
		defer s.firstLoadDone.Do(func() { close(s.firstLoad) })
		s.pullConfiguration(s.ctx)
		s.loadModel(s.ctx)
	}()
	return nil
}

// Shutdown stops serving requests; exit then ends the session with status 0.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.state = stateShutdown
	for _, p := range s.latest {
		p.cancel(errCancelled)
	}
	s.mu.Unlock()
	return nil
}

// Exit ends the session.
func (s *Server) Exit(ctx context.Context) error {
	s.exitOnce.Do(func() { close(s.exited) })
	return nil
}

// clientHasInlineCompletion reports whether the client declared the
// textDocument.inlineCompletion capability.
func (s *Server) clientHasInlineCompletion() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	td := s.caps.TextDocument
	return td != nil && td.InlineCompletion != nil
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }
