package lsp

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/dfill/dfill/completion"
)

// errNoLoader is the load error of a server started without a Loader.
var errNoLoader = errors.New("no model loader")

// loadModel loads the model the configuration names, reporting progress to
// the client while it loads and a message the user must act on when it
// fails. The server keeps serving either way; without a model completions
// answer with no items. Loads are serialised; when the settings changed
// during a load, the newer model is loaded next.
func (s *Server) loadModel(ctx context.Context) {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	for ctx.Err() == nil {
		cfg := s.config().modelConfig()
		if s.loaded && cfg == s.loadedCfg {
			return
		}
		s.loadOne(ctx, cfg)
	}
}

// loadOne loads cfg and installs it. s.loadMu is held.
func (s *Server) loadOne(ctx context.Context, cfg ModelConfig) {
	name := cfg.Model
	if name == "" {
		name = "the embedded model"
	}
	if cfg.Backend == "remote" {
		name = cfg.Remote.URL
	}
	end := s.beginProgress(ctx, "dfill: loading model", name)
	var (
		gen     completion.Generator
		release func()
		err     = errNoLoader
	)
	if s.opts.Loader != nil {
		gen, release, err = s.opts.Loader(ctx, cfg)
	}
	if err == nil && gen == nil {
		err = errors.New("the loader returned no model")
	}
	s.loaded, s.loadedCfg = true, cfg
	if err != nil {
		if ctx.Err() != nil {
			end("cancelled")
			return
		}
		s.log.Error("loading model", zap.String("model", name), zap.Error(err))
		end("failed")
		s.swap(nil, nil, "", err)
		s.showMessage(MessageError, fmt.Sprintf("dfill: cannot load model %s: %v (completions are off until it loads)", name, err))
		return
	}
	s.log.Info("model loaded", zap.String("model", gen.Name()), zap.String("backend", cfg.Backend))
	s.swap(gen, release, gen.Name(), nil)
	end("loaded " + gen.Name())
}

// swap installs gen (nil: none) and releases the previous generator once no
// completion uses it. s.loadMu is held.
func (s *Server) swap(gen completion.Generator, release func(), name string, loadErr error) {
	s.completer.SetGenerator(gen)
	s.genMu.Lock() // waits for completions that may still use the old one
	old := s.release
	s.release, s.modelName, s.modelErr = release, name, loadErr
	s.genMu.Unlock()
	if old != nil {
		old()
	}
}

// unload releases the model at the end of the session.
func (s *Server) unload() {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	s.swap(nil, nil, "", nil)
}

// beginProgress starts a $/progress report, when the client supports it,
// and returns the function that ends it.
func (s *Server) beginProgress(ctx context.Context, title, message string) (end func(message string)) {
	s.mu.Lock()
	supported := s.caps.Window.WorkDoneProgress
	s.progressSeq++
	token := fmt.Sprintf("dfill-%d", s.progressSeq)
	s.mu.Unlock()
	if !supported {
		return func(string) {}
	}
	if err := s.call(ctx, "window/workDoneProgress/create", WorkDoneProgressCreateParams{Token: token}, nil); err != nil {
		s.log.Debug("no progress", zap.Error(err))
		return func(string) {}
	}
	s.notify(ctx, "$/progress", ProgressParams{Token: token, Value: WorkDoneProgressBegin{Kind: "begin", Title: title, Message: message}})
	return func(message string) {
		s.notify(context.WithoutCancel(ctx), "$/progress", ProgressParams{Token: token, Value: WorkDoneProgressEnd{Kind: "end", Message: message}})
	}
}
