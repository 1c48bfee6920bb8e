package api

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dfill/dfill/engine"
)

// errDeadline is the cause of a request context past Options.Timeout.
var errDeadline = errors.New("request deadline passed")

// complete answers POST /v1/fim/completions and /v1/completions: one
// completion of the text between prompt and suffix, whole or streamed.
func (s *Server) complete(w http.ResponseWriter, r *http.Request) error {
	m := s.current()
	if m == nil {
		return &apiError{Status: http.StatusServiceUnavailable, RetryAfter: 5, Type: typeUnavailable, Code: "model_loading",
			Message: "the model is still loading"}
	}
	req, err := readRequest(w, r, s.opt.MaxBodyBytes)
	if err != nil {
		return err
	}
	j, err := s.validate(req, m)
	if err != nil {
		return err
	}
	s.log.Debug("completion request", zap.Int("prompt_bytes", len(j.prompt.Prefix)), zap.Int("suffix_bytes", len(j.prompt.Suffix)),
		zap.Int("max_tokens", j.maxTokens), zap.Int("stops", len(j.stops)), zap.Bool("stream", j.stream), zap.Bool("diffusing", j.diffusing))

	ctx, cancel := context.WithTimeoutCause(r.Context(), s.opt.Timeout, errDeadline)
	defer cancel()
	release, err := s.queue.acquire(ctx)
	if err != nil {
		return s.failed(ctx, err)
	}
	defer release()
	s.metrics.running.Inc()
	defer s.metrics.running.Dec()

	a := answer{
		head: completion{ID: "cmpl-" + rand.Text(), Object: "text_completion", Created: time.Now().Unix(), Model: m.Name()},
		usage: usage{PromptTokens: min(m.CountTokens(j.prompt.Prefix)+m.CountTokens(j.prompt.Suffix),
			m.ContextTokens()-j.maxTokens)},
	}
	if j.stream {
		return s.stream(ctx, w, m, j, a)
	}
	start := time.Now()
	res, err := generate(ctx, m, j, nil)
	if err != nil {
		return s.failed(ctx, err)
	}
	s.counted(res, time.Since(start))
	c := a.final(res)
	if c.Dfill, err = extend(ctx, j, res); err != nil {
		return s.failed(ctx, err)
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// answer is what every part of one answer shares.
type answer struct {
	head  completion // id, object, created, model
	usage usage      // prompt tokens
}

// chunk returns a completion of text; finish is "" until the last one.
func (a answer) chunk(text, finish string) completion {
	c := a.head
	ch := choice{Text: text}
	if finish != "" {
		ch.FinishReason = &finish
	}
	c.Choices = []choice{ch}
	return c
}

// final returns the whole answer of res.
func (a answer) final(res result) completion {
	c := a.chunk(res.text, res.finish)
	c.Usage = a.totals(res)
	return c
}

// totals returns the usage of an answer of res.
func (a answer) totals(res result) *usage {
	u := a.usage
	u.CompletionTokens = res.tokens
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return &u
}

// stream answers j as Server-Sent Events: chunks of text as the span's
// start is committed (or, with diffusing, each step's whole text), a last
// chunk with the finish reason, a usage chunk when asked for, and
// `data: [DONE]`. An error after the first event is sent as an event of
// its own, without [DONE].
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, m Model, j job, a answer) error {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // no proxy buffering
	w.WriteHeader(http.StatusOK)
	ev := &events{w: w, rc: http.NewResponseController(w)}

	var sent string // the text sent so far, without diffusing
	onStep := func(st engine.Step, committed string) {
		if j.diffusing {
			ev.send(a.chunk(st.Text, ""))
			return
		}
		if next := streamable(committed, j.stops); len(next) > len(sent) && strings.HasPrefix(next, sent) {
			ev.send(a.chunk(next[len(sent):], ""))
			sent = next
		}
	}
	start := time.Now()
	res, err := generate(ctx, m, j, onStep)
	if err != nil {
		err = s.failed(ctx, err)
		if !errors.Is(err, errClientGone) {
			ev.send(envelope{asAPIError(err)})
		}
		return err
	}
	s.counted(res, time.Since(start))
	rest := res.text
	if !j.diffusing {
		var ok bool
		if rest, ok = strings.CutPrefix(res.text, sent); !ok {
			// Not reached while the engine never re-masks a token.
			s.log.Warn("streamed text is not a prefix of the answer", zap.Int("sent_bytes", len(sent)), zap.Int("answer_bytes", len(res.text)))
			rest = ""
		}
	}
	last := a.chunk(rest, res.finish)
	if last.Dfill, err = extend(ctx, j, res); err != nil {
		err = s.failed(ctx, err)
		ev.send(envelope{asAPIError(err)})
		return err
	}
	ev.send(last)
	if j.includeUsage {
		c := a.head
		c.Choices, c.Usage = []choice{}, a.totals(res)
		ev.send(c)
	}
	ev.done()
	return nil
}

// events writes Server-Sent Events, each flushed to the client at once.
// After a write fails (the client went away) it writes nothing more.
type events struct {
	w   io.Writer
	rc  *http.ResponseController
	err error
}

// send writes v as one `data:` event.
func (e *events) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		e.err = err
	}
	e.write("data: " + string(b) + "\n\n")
}

// done ends the stream as OpenAI's does.
func (e *events) done() { e.write("data: [DONE]\n\n") }

func (e *events) write(s string) {
	if e.err != nil {
		return
	}
	if _, e.err = io.WriteString(e.w, s); e.err == nil {
		e.err = e.rc.Flush()
	}
}

// failed returns the error to answer for err, which ended a request whose
// context is ctx: 429 when the queue is full, 504 past the deadline,
// errClientGone when the client went away, 400 for options the engine
// refuses, and err itself (a 500) otherwise.
func (s *Server) failed(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, errQueueFull):
		return &apiError{Status: http.StatusTooManyRequests, RetryAfter: s.queue.retryAfter(), Type: typeRateLimit, Code: "queue_full",
			Message: fmt.Sprintf("the server is busy: %d requests are waiting for the model; retry later", s.opt.QueueSize)}
	case errors.Is(context.Cause(ctx), errDeadline):
		return &apiError{Status: http.StatusGatewayTimeout, Type: typeTimeout, Code: "timeout",
			Message: fmt.Sprintf("the request did not finish within the server's %s deadline", s.opt.Timeout)}
	case ctx.Err() != nil:
		return errClientGone
	case errors.Is(err, engine.ErrBadOptions):
		return badRequest("", "invalid_value", "%v", err)
	}
	return err
}

// counted records a finished generation of res that took took.
func (s *Server) counted(res result, took time.Duration) {
	s.metrics.tokens.Add(float64(res.tokens))
	if took > 0 {
		s.metrics.tokensPerSecond.Observe(float64(res.tokens) / took.Seconds())
	}
	s.log.Debug("generated", zap.Int("tokens", res.tokens), zap.Int("steps", res.steps), zap.String("finish", res.finish),
		zap.Duration("took", took))
}

// models answers GET /v1/models: the one model served, once loaded.
func (s *Server) models(w http.ResponseWriter, _ *http.Request) error {
	list := modelList{Object: "list", Data: []modelInfo{}}
	if l := s.model.Load(); l != nil {
		list.Data = append(list.Data, modelInfo{ID: l.Name(), Object: "model", Created: l.since.Unix(), OwnedBy: "dfill",
			ContextLength: l.ContextTokens()})
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// healthz answers GET /healthz: 200 once the model serves, 503 while it
// loads.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	m := s.current()
	if m == nil {
		writeJSON(w, http.StatusServiceUnavailable, health{Status: "loading"})
		return nil
	}
	writeJSON(w, http.StatusOK, health{Status: "ok", Model: m.Name()})
	return nil
}
