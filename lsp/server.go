// Package lsp is dfill's language server: it speaks the Language Server
// Protocol over a JSON-RPC stream with go.lsp.dev/protocol's types, keeps
// the open documents (incremental sync, position mapping in one place), and
// turns inline completion and completion requests into completion.Requests.
// Protocol types stop here: nothing below this package sees them.
package lsp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"
	"go.uber.org/zap"

	"github.com/dfill/dfill/completion"
)

// ModelConfig says which model a Loader should load.
type ModelConfig struct {
	// Model is the GGUF path (empty: the embedded model) for the cpu
	// backend; for the remote one, the name messages give the served
	// model (Remote.Model, or Remote.URL).
	Model   string
	Backend string // cpu or remote
	// Remote says which served model the remote backend asks; it is the
	// zero value for the other backends, so that a remote setting changed
	// while they run loads nothing again.
	Remote RemoteConfig
}

// Loader loads the model cfg names. release frees what the generator holds;
// the server calls it once no request uses the generator any more. The
// server never imports the engine: cmd/dfill passes a Loader, tests a fake.
// A Loader should return soon after ctx is cancelled; the server does not
// wait for one that does not (it releases what such a load returns later).
type Loader func(ctx context.Context, cfg ModelConfig) (gen completion.Generator, release func(), err error)

// Options configure a Server.
type Options struct {
	Logger *zap.Logger      // nil: no logs
	Level  *zap.AtomicLevel // the logger's level, changed by the logLevel setting; may be nil
	Loader Loader           // nil: no model; completions answer with no items
	// Config holds the defaults (from the command line) that the client's
	// settings overlay.
	Config  Config
	Version string // reported in serverInfo
}

// completer is what the server needs of a completion.Completer.
type completer interface {
	SetGenerator(gen completion.Generator)
	SetOptions(opts completion.Options)
	DidChange(uri, path, text string, start, end int)
	DidClose(uri string)
	Complete(ctx context.Context, req completion.Request) (completion.Result, error)
}

// server state in the LSP lifecycle.
type lifecycle int

const (
	stateNew lifecycle = iota
	stateInitialized
	stateShutdown
)

// Server is one LSP session over one connection. It implements
// protocol.Server for the methods dfill serves; the others answer
// MethodNotFound.
type Server struct {
	protocol.UnimplementedServer

	log       *zap.Logger
	opts      Options
	conn      jsonrpc2.Conn
	client    protocol.Client
	ctx       context.Context // the session's lifetime; cancelled on exit
	completer completer
	docs      *documents
	stats     stats

	exited   chan struct{}
	exitOnce sync.Once

	// firstLoad is closed when the session's first model load ends (with a
	// model or without); loadBegun says initialized started it. A request
	// that comes while it runs waits for it rather than answering nothing:
	// VS Code asks again only at the next keystroke.
	firstLoad     chan struct{}
	firstLoadDone sync.Once
	loadBegun     atomic.Bool

	// mu guards the fields below.
	mu          sync.Mutex
	state       lifecycle
	encoding    protocol.PositionEncodingKind
	caps        protocol.ClientCapabilities
	cfg         Config
	calls       map[jsonrpc2.ID]context.CancelCauseFunc // in-flight incoming calls
	latest      map[pendingKey]*pendingCompletion       // newest completion request per document and method
	progressSeq int
	// failure is what the last completion failure the user was told of
	// comes down to (failureKey); "" after a completion succeeds.
	failure string

	// genMu is held for reading by each completion while it runs and for
	// writing while a model swap waits to release the old generator.
	genMu sync.RWMutex

	// loadMu serialises model loads; it guards the fields below.
	loadMu    sync.Mutex
	loaded    bool
	loadedCfg ModelConfig
	release   func()
	modelName string
	modelErr  error
}

// Serve runs an LSP session over rwc until the client sends exit, closes the
// stream, or ctx is cancelled. exitCode is 0 when the client sent shutdown
// before exit and 1 otherwise (the process exit status LSP asks for). err
// reports a broken stream, not bad messages: those are answered and
// skipped.
func Serve(ctx context.Context, rwc io.ReadWriteCloser, opts Options) (exitCode int, err error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := newServer(ctx, opts)
	st := newStream(rwc, s.log)
	s.conn = jsonrpc2.NewConn(st, jsonrpc2.WithCodec(codec{}))
	s.client = protocol.ClientDispatcher(s.conn)
	s.conn.Go(ctx, s.handler())

	select {
	case <-s.exited:
	case <-st.ended:
		err = io.EOF
	case <-s.conn.Done():
		err = s.conn.Err()
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.mu.Lock()
	exitCode = 1
	if s.state == stateShutdown {
		exitCode = 0
	}
	s.mu.Unlock()

	cancel() // stops in-flight completions and model loads
	closed := make(chan struct{})
	go func() {
		s.conn.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		// A reader blocked on a stream that cannot be interrupted (a
		// blocking stdin) never returns; the process is about to exit.
		s.log.Warn("connection did not close in time")
	}
	s.unload()
	return exitCode, err
}

func newServer(ctx context.Context, opts Options) *Server {
	s := &Server{
		log:       opts.Logger,
		opts:      opts,
		ctx:       ctx,
		docs:      newDocuments(),
		exited:    make(chan struct{}),
		firstLoad: make(chan struct{}),
		encoding:  protocol.PositionEncodingKindUTF16,
		cfg:       opts.Config,
		calls:     make(map[jsonrpc2.ID]context.CancelCauseFunc),
		latest:    make(map[pendingKey]*pendingCompletion),
	}
	s.completer = completion.New(nil, s.cfg.completionOptions(), s.log.Named("completion"))
	s.stats.init()
	return s
}

// codec encodes params and results with go.lsp.dev/protocol's Marshal and
// Unmarshal, which know LSP's union types; raw messages pass through. (The
// package's own codec is unexported: only its NewServer installs it, and
// NewServer would take the dispatch chain out of the server's hands.)
type codec struct{}

func (codec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case jsonrpc2.RawMessage:
		if m == nil {
			return []byte("null"), nil
		}
		return m, nil
	case nil:
		return []byte("null"), nil
	}
	return protocol.Marshal(v)
}

func (codec) Unmarshal(data []byte, v any) error {
	if p, ok := v.(*jsonrpc2.RawMessage); ok {
		*p = append(jsonrpc2.RawMessage(nil), data...)
		return nil
	}
	return protocol.Unmarshal(data, v)
}

// handler is the request chain, outermost first: recover (a panic becomes
// an InternalError) → log → cancel ($/cancelRequest and the call's own
// context) → lifecycle → dispatch to the typed methods. The async step
// belongs to the handlers that need it (completions call async once they
// hold a snapshot of the document), so notifications that change
// documents apply in wire order and a slow completion never blocks them.
// The reply is the return value.
func (s *Server) handler() jsonrpc2.Handler {
	return s.recoverPanics(s.logRequests(s.cancellable(s.admit(s.dispatch()))))
}

// dispatch decodes each LSP method's params into go.lsp.dev/protocol's
// types and calls the Server's method of that name; dfill's own methods,
// and $/ ones without params (which the LSP dispatcher cannot decode), go
// to Request.
func (s *Server) dispatch() jsonrpc2.Handler {
	typed := protocol.ServerHandler(s, nil)
	return func(ctx context.Context, req *jsonrpc2.Request) (any, error) {
		m := req.Method()
		if strings.HasPrefix(m, "dfill/") || strings.HasPrefix(m, "$/") && len(req.Params()) == 0 {
			return s.Request(ctx, strings.Clone(m), nil)
		}
		return typed(ctx, req)
	}
}

// recoverPanics turns a panic in a handler into an InternalError (or a log
// line for a notification); the server keeps serving.
func (s *Server) recoverPanics(next jsonrpc2.Handler) jsonrpc2.Handler {
	return func(ctx context.Context, req *jsonrpc2.Request) (result any, err error) {
		name, isCall := strings.Clone(req.Method()), req.IsCall()
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("handler panicked", zap.String("method", name), zap.Any("panic", r), zap.Stack("stack"))
				result, err = nil, nil
				if isCall {
					err = jsonrpc2.Errorf(jsonrpc2.InternalError, "%s: internal error: %v", name, r)
				}
			}
		}()
		return next(ctx, req)
	}
}

// logRequests logs each call at debug level and each failed notification;
// a notification's error goes no further (it would end the connection).
func (s *Server) logRequests(next jsonrpc2.Handler) jsonrpc2.Handler {
	return func(ctx context.Context, req *jsonrpc2.Request) (any, error) {
		name, isCall, id := strings.Clone(req.Method()), req.IsCall(), req.ID()
		start := time.Now()
		result, err := next(ctx, req)
		if isCall {
			if ce := s.log.Check(zap.DebugLevel, "request"); ce != nil {
				ce.Write(zap.String("method", name), zap.Stringer("id", idString{id}),
					zap.Duration("took", time.Since(start)), zap.Error(err))
			}
			return result, err
		}
		if err != nil {
			level := zap.WarnLevel
			if isMethodNotFound(err) {
				level = zap.DebugLevel // a notification dfill has no use for
			}
			s.log.Check(level, "notification failed").Write(zap.String("method", name), zap.Error(err))
		}
		return nil, nil
	}
}

// isMethodNotFound reports whether err says a method is not served.
func isMethodNotFound(err error) bool {
	var w *jsonrpc2.Error
	return errors.As(err, &w) && w.Code == jsonrpc2.MethodNotFound
}

// callKey is the context key of an incoming call's cancel function.
type callKey struct{}

// requestKey is the context key of jsonrpc2's per-request context.
type requestKey struct{}

// cancellable runs each call under a context of the session's lifetime
// that $/cancelRequest (or a newer request, see prepare) cancels, and maps
// the outcome to the error the client sees. $/cancelRequest itself stops
// here.
func (s *Server) cancellable(next jsonrpc2.Handler) jsonrpc2.Handler {
	return func(ctx context.Context, req *jsonrpc2.Request) (any, error) {
		if req.Method() == protocol.MethodCancelRequest {
			return nil, s.cancelRequest(req)
		}
		// The request's own context is pooled by jsonrpc2 and dies with
		// the handler, so nothing may derive from it (a derived context
		// watches its parent from another goroutine). Work runs under a
		// context of the session's lifetime; the request context is kept
		// only for async.
		reqCtx := ctx
		ctx = context.WithValue(jsonrpc2.DetachContext(ctx), requestKey{}, reqCtx)
		if !req.IsCall() {
			return next(ctx, req)
		}
		id := req.ID()
		ctx, cancel := context.WithCancelCause(ctx)
		ctx = context.WithValue(ctx, callKey{}, cancel)
		s.mu.Lock()
		s.calls[id] = cancel
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.calls, id)
			s.mu.Unlock()
			cancel(nil)
		}()
		result, err := next(ctx, req)
		return result, wireError(ctx, req.Method(), err)
	}
}

// cancelRequest cancels the in-flight call $/cancelRequest names; the call
// then answers RequestCancelled.
func (s *Server) cancelRequest(req *jsonrpc2.Request) error {
	var p protocol.CancelParams
	if err := protocol.Unmarshal(req.Params(), &p); err != nil {
		return fmt.Errorf("$/cancelRequest: %w", err)
	}
	var id jsonrpc2.ID
	switch v := p.ID.(type) {
	case protocol.Integer:
		id = jsonrpc2.NewNumberID(int64(v))
	case protocol.String:
		id = jsonrpc2.NewStringID(string(v))
	default:
		return fmt.Errorf("$/cancelRequest: id %v is neither a number nor a string", p.ID)
	}
	s.mu.Lock()
	cancel := s.calls[id]
	s.mu.Unlock()
	if cancel != nil {
		cancel(errCancelled)
	}
	return nil
}

// admit checks the lifecycle: before initialize only initialize and exit
// are served; after shutdown only exit.
func (s *Server) admit(next jsonrpc2.Handler) jsonrpc2.Handler {
	return func(ctx context.Context, req *jsonrpc2.Request) (any, error) {
		name, isCall := req.Method(), req.IsCall()
		s.mu.Lock()
		state := s.state
		s.mu.Unlock()
		switch {
		case name == protocol.MethodExit || name == protocol.MethodInitialize && state == stateNew:
		case state == stateNew:
			if isCall {
				return nil, jsonrpc2.NewError(jsonrpc2.ServerNotInitialized, "server not initialized")
			}
			return nil, errors.New("dropped before initialize")
		case state == stateShutdown:
			if isCall {
				return nil, jsonrpc2.Errorf(jsonrpc2.InvalidRequest, "%s after shutdown", name)
			}
			return nil, errors.New("dropped after shutdown")
		case name == protocol.MethodInitialize:
			return nil, jsonrpc2.NewError(jsonrpc2.InvalidRequest, "initialize sent twice")
		}
		return next(ctx, req)
	}
}

// Request serves the methods outside LSP: dfill/stats. Other calls answer
// MethodNotFound; other notifications, $/ ones included, are ignored.
func (s *Server) Request(ctx context.Context, method string, params any) (any, error) {
	switch method {
	case methodStats:
		return s.statsSnapshot(), nil
	}
	if _, isCall := ctx.Value(callKey{}).(context.CancelCauseFunc); !isCall {
		return nil, nil
	}
	return nil, jsonrpc2.Errorf(jsonrpc2.MethodNotFound, "method not found: %s", method)
}

// errSuperseded is the cancel cause of a completion replaced by a newer one.
var errSuperseded = errors.New("superseded by a newer request")

// errCancelled is the cancel cause of $/cancelRequest.
var errCancelled = errors.New("cancelled by the client")

// wireError maps a handler error to the JSON-RPC error the client sees:
// cancelled requests answer RequestCancelled, params that
// do not decode InvalidParams.
func wireError(ctx context.Context, method string, err error) error {
	if err == nil {
		return nil
	}
	var w *jsonrpc2.Error
	switch {
	case errors.Is(err, jsonrpc2.ErrParse):
		return jsonrpc2.Errorf(jsonrpc2.InvalidParams, "%s: params: %v", method, err)
	case errors.As(err, &w) && w.Code == protocol.CodeRequestCancelled:
		return requestCancelled(ctx)
	case errors.As(err, &w):
		return err
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		return requestCancelled(ctx)
	}
	return jsonrpc2.NewError(jsonrpc2.InternalError, err.Error())
}

// requestCancelled is the RequestCancelled error of a call whose context
// was cancelled, saying why.
func requestCancelled(ctx context.Context) error {
	msg := "request cancelled"
	if cause := context.Cause(ctx); cause != nil && cause != context.Canceled {
		msg = cause.Error()
	}
	return jsonrpc2.NewError(protocol.CodeRequestCancelled, msg)
}

// async releases the read loop so the rest of the handler runs concurrently
// with the messages after it. It must be called at most once per request.
func async(ctx context.Context) {
	if reqCtx, ok := ctx.Value(requestKey{}).(context.Context); ok {
		jsonrpc2.Async(reqCtx)
	}
}

// notify sends one of dfill's notifications to the client, logging a
// failure.
func (s *Server) notify(ctx context.Context, name string, params any) {
	if err := s.conn.Notify(ctx, name, params); err != nil {
		s.log.Debug("notification not sent", zap.String("method", name), zap.Error(err))
	}
}

// showMessage tells the user something they must act on.
func (s *Server) showMessage(typ protocol.MessageType, msg string) {
	if err := s.client.ShowMessage(s.ctx, &protocol.ShowMessageParams{Type: typ, Message: msg}); err != nil {
		s.log.Debug("window/showMessage not sent", zap.Error(err))
	}
}

// config returns the current configuration.
func (s *Server) config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// idString formats a jsonrpc2.ID for logs.
type idString struct{ id jsonrpc2.ID }

func (i idString) String() string { return fmt.Sprintf("%v", i.id) }
