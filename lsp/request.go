package lsp

import (
	"context"
	"errors"
	"time"

	"go.lsp.dev/protocol"
	"go.uber.org/zap"

	"github.com/dfill/dfill/completion"
)

// pendingKey names the newest completion request of one method for one
// document. A newer request supersedes the older one of the same method
// only: VS Code sends a completion and an inline completion for each
// keystroke, and neither may cancel the other. Two requests of different
// methods at the same place share one generation through the Completer
// (the second finds the first's answer in its cache).
type pendingKey struct {
	uri    string
	method string
}

// pendingCompletion is the newest completion request of one pendingKey.
type pendingCompletion struct {
	cancel context.CancelCauseFunc
}

// prepared is a completion request resolved against a snapshot of its
// document, on the read loop, before the handler goes async.
type prepared struct {
	doc     *document
	req     completion.Request
	key     pendingKey
	pending *pendingCompletion
	// history records the steps of every span, for the final dfill/denoise
	// notification.
	history spanHistory
}

// spanHistory is the text after each step of each span of a generation.
type spanHistory map[int][]string

func (h *spanHistory) add(st completion.Step) {
	if *h == nil {
		*h = make(spanHistory)
	}
	(*h)[st.Span] = append((*h)[st.Span], st.Text)
}

// prepare snapshots the document, maps the position to a byte offset and
// supersedes the previous request of the same method for the document. It
// returns nil when the document is not open or the position lies outside
// it (a client whose copy is out of sync would put an answer in the wrong
// place).
func (s *Server) prepare(ctx context.Context, method string, td protocol.TextDocumentIdentifier, pos protocol.Position, invoked bool) *prepared {
	uri := string(td.URI)
	doc := s.docs.get(uri)
	if doc == nil {
		s.log.Debug("completion for a document that is not open", zap.String("uri", uri))
		return nil
	}
	if !doc.mapper.Contains(pos) {
		s.log.Debug("completion outside the document", zap.String("uri", uri),
			zap.Uint32("line", pos.Line), zap.Int("lines", doc.mapper.Lines()))
		return nil
	}
	off := doc.mapper.Offset(pos)
	cancel, _ := ctx.Value(callKey{}).(context.CancelCauseFunc)
	if cancel == nil {
		cancel = func(error) {}
	}
	key := pendingKey{uri: uri, method: method}
	pc := &pendingCompletion{cancel: cancel}
	s.mu.Lock()
	if old := s.latest[key]; old != nil {
		old.cancel(errSuperseded)
	}
	s.latest[key] = pc
	denoise := s.cfg.DenoiseNotifications
	s.mu.Unlock()

	p := &prepared{
		doc:     doc,
		key:     key,
		pending: pc,
		req: completion.Request{
			URI:        uri,
			Path:       doc.path,
			LanguageID: doc.languageID,
			Text:       doc.text(),
			Offset:     off,
			Invoked:    invoked,
			Others:     s.docs.others(uri),
		},
	}
	if denoise {
		at := doc.mapper.Position(off)
		p.req.OnStep = func(st completion.Step) {
			p.history.add(st)
			if st.Span == max(st.Spans, 1)-1 { // live: the longest span
				s.notify(ctx, methodDenoise, &DenoiseParams{URI: uri, Position: at, Step: st.Step, Steps: st.Steps, Text: st.Text})
			}
		}
	}
	return p
}

// completionFailed tells the user once of a failure a completion ended in
// (a remote server unreachable, refusing the key, overloaded), and again
// only after a completion has succeeded or the failure has changed: the
// same failure on every keystroke is logged at debug level.
func (s *Server) completionFailed(p *prepared, err error) {
	key := failureKey(err)
	s.mu.Lock()
	told := s.failure == key
	s.failure = key
	s.mu.Unlock()
	if told {
		s.log.Debug("completion failed", zap.String("uri", p.req.URI), zap.Int("offset", p.req.Offset), zap.Error(err))
		return
	}
	s.log.Warn("completion failed", zap.String("uri", p.req.URI), zap.Int("offset", p.req.Offset), zap.Error(err))
	s.showMessage(protocol.MessageTypeWarning, "dfill: completion failed: "+err.Error())
}

// failureKey returns what err comes down to: the message of the error at
// the end of its chain, taking the last of several wrapped errors (a remote
// backend waiting after a failure wraps the wait and then the failure).
func failureKey(err error) string {
	for {
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			if next := u.Unwrap(); next != nil {
				err = next
				continue
			}
		case interface{ Unwrap() []error }:
			if es := u.Unwrap(); len(es) > 0 {
				err = es[len(es)-1]
				continue
			}
		}
		return err.Error()
	}
}

// complete releases the read loop and asks the Completer. Without a model
// the result is empty, and so is that of a request a newer one superseded;
// a request the client cancelled returns an error that answers
// RequestCancelled; other failures are logged and answer no items, since
// an editor cannot do anything with them.
func (s *Server) complete(ctx context.Context, p *prepared) (completion.Result, error) {
	async(ctx)
	defer func() {
		s.mu.Lock()
		if s.latest[p.key] == p.pending {
			delete(s.latest, p.key)
		}
		s.mu.Unlock()
	}()

	start := time.Now()
	res, err := s.run(ctx, p.req)
	took := time.Since(start)

	switch {
	case errors.Is(context.Cause(ctx), errSuperseded):
		// A superseded request answers nothing rather than an error: the
		// client did not cancel it, and Neovim drops a RequestCancelled
		// answer without telling the code that made the request.
		s.stats.cancel()
		return completion.Result{}, nil
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		s.stats.cancel()
		if err == nil {
			err = context.Cause(ctx)
		}
		return completion.Result{}, err
	case errors.Is(err, completion.ErrNoModel):
		return completion.Result{}, nil
	case err != nil:
		s.completionFailed(p, err)
		return completion.Result{}, nil
	}
	s.mu.Lock()
	s.failure = ""
	s.mu.Unlock()
	s.stats.add(took, res.Timings.Generate+res.Timings.Wait, res.Cached)
	s.stats.last(took)
	if p.req.OnStep != nil && !res.Cached {
		s.notifyFinal(ctx, p, res)
	}
	if ce := s.log.Check(zap.DebugLevel, "completion"); ce != nil {
		ce.Write(zap.String("uri", p.req.URI), zap.String("method", p.key.method), zap.Int("offset", p.req.Offset), zap.Int("items", len(res.Items)),
			zap.Bool("cached", res.Cached), zap.Int("span", res.Span), zap.Int("steps", res.Steps), zap.Duration("took", took), zap.Duration("prompt", res.Timings.Prompt),
			zap.Duration("generate", res.Timings.Generate), zap.Duration("validate", res.Timings.Validate))
	}
	return res, nil
}

// notifyFinal sends the last dfill/denoise notification of a completion:
// the answer, and the steps of the span it came from (of the longest when
// nothing passed).
func (s *Server) notifyFinal(ctx context.Context, p *prepared, res completion.Result) {
	answer, span := "", len(p.history)-1
	if len(res.Items) > 0 {
		answer, span = res.Items[0].Insert, res.Items[0].Span
	}
	steps := p.history[span]
	s.notify(ctx, methodDenoise, &DenoiseParams{URI: p.req.URI, Position: p.doc.mapper.Position(p.req.Offset),
		Step: len(steps), Steps: len(steps), Text: answer, Final: true, History: steps})
}

// run calls the Completer while holding the generator for reading (a
// model swap waits for it). It returns as soon as ctx is cancelled: a
// generator notices cancellation only between steps, and the client should
// hear RequestCancelled at once rather than when the step ends. A panic in
// the Completer is re-raised on the handler's goroutine, where the request
// chain turns it into an InternalError.
func (s *Server) run(ctx context.Context, req completion.Request) (completion.Result, error) {
	type outcome struct {
		res   completion.Result
		err   error
		panic any
	}
	if s.loadBegun.Load() {
		select {
		case <-s.firstLoad:
		case <-ctx.Done():
			return completion.Result{}, context.Cause(ctx)
		}
	}
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		defer func() {
			if o.panic = recover(); o.panic != nil {
				s.log.Error("completer panicked", zap.Any("panic", o.panic), zap.Stack("stack"))
			}
			done <- o
		}()
		s.genMu.RLock()
		defer s.genMu.RUnlock()
		o.res, o.err = s.completer.Complete(ctx, req)
	}()
	select {
	case o := <-done:
		if o.panic != nil {
			panic(o.panic)
		}
		return o.res, o.err
	case <-ctx.Done():
		return completion.Result{}, context.Cause(ctx)
	}
}
