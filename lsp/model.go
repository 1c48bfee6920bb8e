package lsp

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.lsp.dev/protocol"
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
	report, end := s.beginProgress(ctx, "dfill: loading model", name)
	gen, release, err := s.callLoader(withLoadProgress(ctx, name, report), cfg)
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
		s.showMessage(protocol.MessageTypeError, fmt.Sprintf("dfill: cannot load model %s: %v (completions are off until it loads)", name, err))
		return
	}
	s.log.Info("model loaded", zap.String("model", gen.Name()), zap.String("backend", cfg.Backend))
	s.swap(gen, release, gen.Name(), nil)
	end("loaded " + gen.Name())
}

// callLoader runs the Loader and returns its result, or ctx's error as soon
// as ctx is cancelled: a load that blocks (a model path on a stale network
// mount) must not hold up shutdown. What such a load returns later is
// released at once.
func (s *Server) callLoader(ctx context.Context, cfg ModelConfig) (completion.Generator, func(), error) {
	if s.opts.Loader == nil {
		return nil, nil, errNoLoader
	}
	type loaded struct {
		gen     completion.Generator
		release func()
		err     error
	}
	done := make(chan loaded, 1)
	go func() {
		var l loaded
		defer func() {
			if r := recover(); r != nil {
				l = loaded{err: fmt.Errorf("the loader panicked: %v", r)}
			}
			done <- l
		}()
		l.gen, l.release, l.err = s.opts.Loader(ctx, cfg)
	}()
	select {
	case l := <-done:
		return l.gen, l.release, l.err
	case <-ctx.Done():
		go func() {
			if l := <-done; l.err == nil && l.release != nil {
				l.release()
			}
		}()
		return nil, nil, ctx.Err()
	}
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
func (s *Server) beginProgress(ctx context.Context, title, message string) (report func(message string, percent uint32), end func(message string)) {
	s.mu.Lock()
	w := s.caps.Window
	supported := w != nil && w.WorkDoneProgress != nil && *w.WorkDoneProgress
	s.progressSeq++
	token := fmt.Sprintf("dfill-%d", s.progressSeq)
	s.mu.Unlock()
	if !supported {
		return func(string, uint32) {}, func(string) {}
	}
	// The report starts once the client has answered the create request,
	// on a goroutine of its own: a client that answers late, or never,
	// must not hold up what is being reported.
	begun := make(chan bool, 1)
	go func() {
		err := s.client.WorkDoneProgressCreate(ctx, &protocol.WorkDoneProgressCreateParams{Token: protocol.String(token)})
		if err != nil {
			s.log.Debug("no progress", zap.Error(err))
			begun <- false
			return
		}
		s.progress(ctx, token, &protocol.WorkDoneProgressBegin{Kind: "begin", Title: title, Message: &message})
		begun <- true
	}()
	// Reports and the end wait for the begin, in order: one goroutine
	// sends them all.
	sends := make(chan func(), 64)
	go func() {
		ok := <-begun
		for send := range sends {
			if ok {
				send()
			}
		}
	}()
	var once sync.Once
	ended := false
	var mu sync.Mutex
	report = func(message string, percent uint32) {
		mu.Lock()
		defer mu.Unlock()
		if ended {
			return
		}
		select {
		case sends <- func() {
			s.progress(context.WithoutCancel(ctx), token, &protocol.WorkDoneProgressReport{Kind: "report", Message: &message, Percentage: &percent})
		}:
		default: // a client that reads slowly misses a report, not the end
		}
	}
	end = func(message string) {
		once.Do(func() {
			mu.Lock()
			ended = true // no report is sent after this
			mu.Unlock()
			go func() { // the buffer may be full of reports a slow client has not taken
				sends <- func() {
					s.progress(context.WithoutCancel(ctx), token, &protocol.WorkDoneProgressEnd{Kind: "end", Message: &message})
				}
				close(sends)
			}()
		})
	}
	return report, end
}

// loadProgressKey is the context key of withLoadProgress's reporter.
type loadProgressKey struct{}

// withLoadProgress returns ctx carrying a reporter of a download the
// Loader makes (LoadProgress), shown in the load's $/progress as the
// share of name done, at most once per percent.
func withLoadProgress(ctx context.Context, name string, report func(string, uint32)) context.Context {
	var mu sync.Mutex
	last := -1
	f := func(done, total int64) {
		if total <= 0 {
			return
		}
		pct := int(min(done*100/total, 100))
		mu.Lock()
		defer mu.Unlock()
		if pct == last {
			return
		}
		last = pct
		report(fmt.Sprintf("downloading %s: %d of %d MB", name, done>>20, total>>20), uint32(pct))
	}
	return context.WithValue(ctx, loadProgressKey{}, f)
}

// LoadProgress returns the reporter a Loader calls with the bytes done and
// in all of a download it makes (a model pulled from the Hugging Face
// Hub): the server shows it in the load's $/progress. Outside a load it
// does nothing.
func LoadProgress(ctx context.Context) func(done, total int64) {
	if f, ok := ctx.Value(loadProgressKey{}).(func(done, total int64)); ok {
		return f
	}
	return func(int64, int64) {}
}

// progress sends one $/progress notification.
func (s *Server) progress(ctx context.Context, token string, value any) {
	raw, err := protocol.Marshal(value)
	if err == nil {
		err = s.client.Progress(ctx, &protocol.ProgressParams{Token: protocol.String(token), Value: raw})
	}
	if err != nil {
		s.log.Debug("$/progress not sent", zap.Error(err))
	}
}
