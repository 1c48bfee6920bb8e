package lsp

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"

	"go.lsp.dev/jsonrpc2"
	"go.uber.org/zap"
)

// initialize negotiates the position encoding, records the client's
// capabilities and applies its initializationOptions.
func (s *Server) initialize(ctx context.Context, req *jsonrpc2.Request) (any, error) {
	var p InitializeParams
	if err := decode(req, &p); err != nil {
		return nil, err
	}
	enc := EncodingUTF16
	if slices.Contains(p.Capabilities.General.PositionEncodings, EncodingUTF8) {
		enc = EncodingUTF8
	}
	cfg, cfgErr := mergeSettings(s.config(), p.InitializationOptions)

	s.mu.Lock()
	s.state = stateInitialized
	s.encoding = enc
	s.caps = p.Capabilities
	s.mu.Unlock()
	s.setConfig(cfg)

	client := ""
	if p.ClientInfo != nil {
		client = p.ClientInfo.Name + " " + p.ClientInfo.Version
	}
	s.log.Info("initialize", zap.String("client", client), zap.String("positionEncoding", enc))
	if cfgErr != nil {
		s.log.Warn("initializationOptions", zap.Error(cfgErr))
		s.showMessage(MessageWarning, "dfill: "+cfgErr.Error())
	}
	return reply(InitializeResult{
		Capabilities: ServerCapabilities{
			PositionEncoding:         enc,
			TextDocumentSync:         TextDocumentSyncOptions{OpenClose: true, Change: SyncIncremental},
			InlineCompletionProvider: true,
			CompletionProvider:       &CompletionOptions{},
		},
		ServerInfo: ServerInfo{Name: "dfill", Version: s.opts.Version},
	})
}

// initialized pulls the workspace configuration, when the client offers it,
// and then loads the model, off the read loop: completions that arrive
// before the model is ready answer with no items.
func (s *Server) initialized(ctx context.Context, req *jsonrpc2.Request) (any, error) {
	go func() {
		s.pullConfiguration(s.ctx)
		s.loadModel(s.ctx)
	}()
	return nil, nil
}

// shutdown stops serving requests; exit then ends the session with status 0.
func (s *Server) shutdown(ctx context.Context, req *jsonrpc2.Request) (any, error) {
	s.mu.Lock()
	s.state = stateShutdown
	for _, p := range s.latest {
		p.cancel(errCancelled)
	}
	s.mu.Unlock()
	return nil, nil
}

// exit ends the session.
func (s *Server) exit(ctx context.Context, req *jsonrpc2.Request) (any, error) {
	s.exitOnce.Do(func() { close(s.exited) })
	return nil, nil
}

// cancelRequest cancels the in-flight call with the given id; the call then
// answers RequestCancelled.
func (s *Server) cancelRequest(ctx context.Context, req *jsonrpc2.Request) (any, error) {
	var p CancelParams
	if err := decode(req, &p); err != nil {
		return nil, err
	}
	id, ok := parseID(p.ID)
	if !ok {
		return nil, nil
	}
	s.mu.Lock()
	cancel := s.calls[id]
	s.mu.Unlock()
	if cancel != nil {
		cancel(errCancelled)
	}
	return nil, nil
}

// parseID decodes a JSON-RPC id (a number or a string).
func parseID(raw []byte) (jsonrpc2.ID, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return jsonrpc2.ID{}, false
	}
	switch v := v.(type) {
	case string:
		return jsonrpc2.NewStringID(v), true
	case json.Number:
		n, err := v.Int64()
		if err != nil {
			return jsonrpc2.ID{}, false
		}
		return jsonrpc2.NewNumberID(n), true
	}
	return jsonrpc2.ID{}, false
}
