// Package api serves a diffusion model over HTTP (`dfill http`): fill-in-
// the-middle completions in the shape of Inception's Mercury API and
// Mistral's Codestral (POST /v1/fim/completions) and of OpenAI's legacy
// completions with a suffix (POST /v1/completions), streamed as
// Server-Sent Events when asked, with Mercury's `diffusing` extension that
// streams each denoising step's whole text; GET /v1/models, /healthz and
// /metrics (Prometheus).
//
// Up to Options.Batch requests generate at once, denoised together in one
// forward per step (FromEngineBatched); the others wait in a bounded
// queue, and a request that finds it full is answered 429 with
// Retry-After. Every request has a deadline
// (504 when it passes), a client that disconnects cancels its generation
// at the next denoising step, and Serve drains in-flight requests before
// it returns.
package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/dfill/dfill/engine"
)

// Model is what the server needs of a model: *engine.Model through
// FromEngine, or a fake in tests.
type Model interface {
	// Name is the model's id, as requests name it and /v1/models lists it.
	Name() string
	// Infill fills the span of opt.Lengths[0] tokens between p's prefix
	// and suffix, calling onStep after each denoising step, and stops with
	// ctx's error at the step after ctx is done.
	Infill(ctx context.Context, p engine.Prompt, opt engine.Options, onStep func(engine.Step)) ([]engine.Candidate, error)
	// CountTokens returns how many model tokens s takes.
	CountTokens(s string) int
	// ContextTokens is the model's context length in tokens.
	ContextTokens() int
}

// FromEngine returns m as the server's Model.
func FromEngine(m *engine.Model) Model { return engineModel{m} }

type engineModel struct{ *engine.Model }

func (m engineModel) CountTokens(s string) int { return len(m.Tokenizer.EncodePlain(s)) }

// TokenTexts decodes each token of ids on its own; special tokens (end,
// pad) are left out.
func (m engineModel) TokenTexts(ids []int32) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !m.Tokenizer.IsSpecial(id) {
			out = append(out, m.Tokenizer.Decode([]int32{id}))
		}
	}
	return out
}
func (m engineModel) ContextTokens() int { return m.Config.Context }

// Defaults of the Options fields whose zero value means "the default".
const (
	DefaultMaxTokens        = 256     // Options.MaxTokens
	DefaultRequestMaxTokens = 32      // Options.DefaultMaxTokens
	DefaultMaxBodyBytes     = 1 << 20 // Options.MaxBodyBytes
	DefaultTimeout          = 60 * time.Second
	DefaultShutdownTimeout  = 30 * time.Second
)

// Options configure a Server.
type Options struct {
	// APIKey, when not empty, is the bearer token every request but
	// /healthz must carry (Authorization: Bearer KEY).
	APIKey string
	// Batch is how many requests generate at once (0 or 1: one at a
	// time); with a Model from FromEngineBatched they are denoised together.
	Batch int
	// QueueSize is how many requests may wait for the model while one
	// generates; one more finds the queue full (429). Zero: none wait.
	QueueSize int
	// MaxTokens is the most max_tokens a request may ask for (0:
	// DefaultMaxTokens), and DefaultMaxTokens what a request that leaves
	// max_tokens out gets (0: DefaultRequestMaxTokens).
	MaxTokens, DefaultMaxTokens int
	// MaxBodyBytes is the largest request body accepted (0:
	// DefaultMaxBodyBytes); a larger one is answered 413.
	MaxBodyBytes int64
	// Timeout is each request's deadline, waiting in the queue included
	// (0: DefaultTimeout); a request past it is answered 504.
	Timeout time.Duration
	// ShutdownTimeout is how long Serve lets in-flight requests finish
	// once its context is done (0: DefaultShutdownTimeout); those still
	// running then are cancelled.
	ShutdownTimeout time.Duration
	// EngineOptions returns the sampler settings for a span of maxTokens
	// (schedule, steps, cache); the request sets Lengths, Temperature,
	// TopP and Seed. Nil: the engine's defaults.
	EngineOptions func(maxTokens int) engine.Options
	// Logger receives one line per request (never prompt text or keys
	// above debug level). Nil: no logs.
	Logger *zap.Logger
}

// withDefaults fills the zero fields that have a default.
func (o Options) withDefaults() Options {
	if o.MaxTokens <= 0 {
		o.MaxTokens = DefaultMaxTokens
	}
	if o.DefaultMaxTokens <= 0 {
		o.DefaultMaxTokens = min(DefaultRequestMaxTokens, o.MaxTokens)
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.QueueSize < 0 {
		o.QueueSize = 0
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}

// Server answers the API's requests with one model.
type Server struct {
	opt     Options
	log     *zap.Logger
	keyHash *[sha256.Size]byte // of Options.APIKey; nil: no key required
	metrics *metrics
	queue   *queue
	handler http.Handler

	model atomic.Pointer[loadedModel] // nil until SetModel

	// handlers counts the requests inside a handler, so that Serve returns
	// only when none can still be using the model.
	handlers sync.WaitGroup
}

type loadedModel struct {
	Model
	since time.Time // when SetModel was called
}

// New returns a server with no model yet: until SetModel, /healthz and
// completions answer 503.
func New(opt Options) *Server {
	opt = opt.withDefaults()
	s := &Server{opt: opt, log: opt.Logger, metrics: newMetrics()}
	if opt.APIKey != "" {
		h := sha256.Sum256([]byte(opt.APIKey))
		s.keyHash = &h
	}
	s.queue = newQueue(max(opt.Batch, 1), opt.QueueSize, s.metrics.queueDepth.Set)
	s.handler = s.routes()
	return s
}

// SetModel makes m the model the server answers with.
func (s *Server) SetModel(m Model) {
	s.model.Store(&loadedModel{Model: m, since: time.Now()})
	s.metrics.modelInfo.Reset()
	s.metrics.modelInfo.WithLabelValues(m.Name()).Set(1)
	s.metrics.modelLoaded.Set(1)
	s.log.Info("model ready", zap.String("model", m.Name()), zap.Int("context", m.ContextTokens()))
}

// current returns the model, or nil while none is set.
func (s *Server) current() Model {
	if l := s.model.Load(); l != nil {
		return l.Model
	}
	return nil
}

// Handler returns the server's routes as one http.Handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers requests on ln until ctx is done, then stops accepting
// connections, lets the requests in flight finish within
// Options.ShutdownTimeout, cancels those still running after that, and
// returns when no handler is running. It returns nil after a clean
// shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Requests outlive ctx (a signal) until the grace period ends.
	base, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	hs := &http.Server{
		Handler:           s.handler,
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       s.opt.Timeout, // a body sent slowly holds no handler past the deadline
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		cancelRequests()
		hs.Close()
		s.handlers.Wait()
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	s.log.Info("shutting down: finishing requests in flight", zap.Duration("within", s.opt.ShutdownTimeout))
	grace, cancel := context.WithTimeout(context.Background(), s.opt.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(grace)
	if err != nil {
		cancelRequests()
		hs.Close()
		err = fmt.Errorf("shutdown: requests still running after %s were cancelled: %w", s.opt.ShutdownTimeout, err)
	}
	if serveErr := <-served; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	s.handlers.Wait()
	return err
}
