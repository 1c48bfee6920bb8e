// Package lsp is dfill's language server: it speaks the Language Server
// Protocol over a JSON-RPC stream, keeps the open documents (incremental
// sync, position mapping in one place), and turns inline completion and
// completion requests into completion.Requests. Protocol types stop here:
// nothing below this package sees them.
package lsp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"go.lsp.dev/jsonrpc2"
	"go.uber.org/zap"

	"github.com/dfill/dfill/completion"
)

// RequestCancelled is the LSP error code for a request that was cancelled
// by $/cancelRequest or superseded by a newer request for the same document.
const RequestCancelled jsonrpc2.Code = -32800

// ModelConfig says which model a Loader should load.
type ModelConfig struct {
	Model   string // GGUF path; empty means the default (embedded) model
	Backend string // cpu, cuda or remote
	Remote  RemoteConfig
}

// Loader loads the model cfg names. release frees what the generator holds;
// the server calls it once no request uses the generator any more. The
// server never imports the engine: cmd/dfill passes a Loader, tests a fake.
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
	DidChange(uri, text string, start, end int)
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

// Server is one LSP session over one connection.
type Server struct {
	log       *zap.Logger
	opts      Options
	conn      jsonrpc2.Conn
	ctx       context.Context // the session's lifetime; cancelled on exit
	completer completer
	docs      *documents
	stats     stats
	methods   map[string]method

	exited   chan struct{}
	exitOnce sync.Once

	// mu guards the fields below.
	mu          sync.Mutex
	state       lifecycle
	exitCode    int
	encoding    string
	caps        ClientCapabilities
	cfg         Config
	calls       map[jsonrpc2.ID]context.CancelCauseFunc // in-flight incoming calls
	latest      map[string]*pendingCompletion           // newest completion request per URI
	progressSeq int

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

// method handles one LSP method. For notifications the result is dropped
// and an error is only logged.
type method func(ctx context.Context, req *jsonrpc2.Request) (any, error)

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
	s.conn = jsonrpc2.NewConn(newStream(rwc, s.log))
	s.conn.Go(ctx, s.handle)

	select {
	case <-s.exited:
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
		log:      opts.Logger,
		opts:     opts,
		ctx:      ctx,
		docs:     newDocuments(),
		exited:   make(chan struct{}),
		encoding: EncodingUTF16,
		cfg:      opts.Config,
		calls:    make(map[jsonrpc2.ID]context.CancelCauseFunc),
		latest:   make(map[string]*pendingCompletion),
	}
	s.completer = completion.New(nil, s.cfg.completionOptions(), s.log.Named("completion"))
	s.stats.init()
	s.methods = map[string]method{
		"initialize":                       s.initialize,
		"initialized":                      s.initialized,
		"shutdown":                         s.shutdown,
		"exit":                             s.exit,
		"$/cancelRequest":                  s.cancelRequest,
		"textDocument/didOpen":             s.didOpen,
		"textDocument/didChange":           s.didChange,
		"textDocument/didClose":            s.didClose,
		"textDocument/inlineCompletion":    s.inlineCompletion,
		"textDocument/completion":          s.completion,
		"workspace/didChangeConfiguration": s.didChangeConfiguration,
		"dfill/stats":                      s.statsRequest,
	}
	return s
}

// callKey is the context key of an incoming call's cancel function.
type callKey struct{}

// requestKey is the context key of jsonrpc2's per-request context.
type requestKey struct{}

// handle is the request chain: recover → log → cancel → dispatch. The async
// step belongs to the handlers that need it (completions call s.async once
// they hold a snapshot of the document), so notifications that change
// documents apply in wire order and a slow completion never blocks them.
// The reply is the return value.
func (s *Server) handle(ctx context.Context, req *jsonrpc2.Request) (result any, err error) {
	name := req.Method() // the frame it borrows from is never reused
	isCall := req.IsCall()
	id := req.ID()
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("handler panicked", zap.String("method", name), zap.Any("panic", r), zap.Stack("stack"))
			result, err = nil, nil
			if isCall {
				err = jsonrpc2.Errorf(jsonrpc2.InternalError, "%s: internal error: %v", name, r)
			}
		}
		if isCall {
			if ce := s.log.Check(zap.DebugLevel, "request"); ce != nil {
				ce.Write(zap.String("method", name), zap.Stringer("id", idString{id}),
					zap.Duration("took", time.Since(start)), zap.Error(err))
			}
		} else if err != nil {
			s.log.Warn("notification failed", zap.String("method", name), zap.Error(err))
			err = nil // a notification error would end the connection
		}
	}()

	// The request's own context is pooled by jsonrpc2 and dies with the
	// handler, so nothing may derive from it (a derived context watches its
	// parent from another goroutine). Work runs under a context of the
	// session's lifetime; the request context is kept only for async.
	reqCtx := ctx
	ctx = context.WithValue(jsonrpc2.DetachContext(ctx), requestKey{}, reqCtx)
	if isCall {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
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
	}

	if err := s.admit(name, isCall); err != nil {
		return nil, err
	}
	h, ok := s.methods[name]
	if !ok {
		if !isCall {
			return nil, nil // unknown notifications, $/ ones included, are ignored
		}
		return nil, jsonrpc2.Errorf(jsonrpc2.MethodNotFound, "method not found: %s", name)
	}
	result, err = h(ctx, req)
	if isCall {
		err = wireError(ctx, err)
	}
	return result, err
}

// admit checks the lifecycle: before initialize only initialize and exit
// are served; after shutdown only exit.
func (s *Server) admit(name string, isCall bool) error {
	s.mu.Lock()
	state := s.state
	s.mu.Unlock()
	switch {
	case name == "exit" || name == "initialize" && state == stateNew:
		return nil
	case state == stateNew:
		if isCall {
			return jsonrpc2.NewError(jsonrpc2.ServerNotInitialized, "server not initialized")
		}
		return errors.New("dropped before initialize")
	case state == stateShutdown:
		if isCall {
			return jsonrpc2.Errorf(jsonrpc2.InvalidRequest, "%s after shutdown", name)
		}
		return errors.New("dropped after shutdown")
	case name == "initialize":
		return jsonrpc2.NewError(jsonrpc2.InvalidRequest, "initialize sent twice")
	}
	return nil
}

// errSuperseded is the cancel cause of a completion replaced by a newer one.
var errSuperseded = errors.New("superseded by a newer request")

// errCancelled is the cancel cause of $/cancelRequest.
var errCancelled = errors.New("cancelled by the client")

// wireError maps a handler error to the JSON-RPC error the client sees:
// cancelled and superseded requests answer RequestCancelled.
func wireError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var w *jsonrpc2.Error
	switch {
	case errors.As(err, &w):
		return err
	case errors.Is(err, completion.ErrSuperseded):
		return jsonrpc2.NewError(RequestCancelled, errSuperseded.Error())
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		msg := "request cancelled"
		if cause := context.Cause(ctx); cause != nil && cause != context.Canceled {
			msg = cause.Error()
		}
		return jsonrpc2.NewError(RequestCancelled, msg)
	}
	return jsonrpc2.NewError(jsonrpc2.InternalError, err.Error())
}

// async releases the read loop so the rest of the handler runs concurrently
// with the messages after it. It must be called at most once per request.
func async(ctx context.Context) {
	if reqCtx, ok := ctx.Value(requestKey{}).(context.Context); ok {
		jsonrpc2.Async(reqCtx)
	}
}

// decode unmarshals a request's params into v.
func decode(req *jsonrpc2.Request, v any) error {
	p := req.Params()
	if len(p) == 0 {
		return nil
	}
	if err := json.Unmarshal(p, v); err != nil {
		return jsonrpc2.Errorf(jsonrpc2.InvalidParams, "%s: params: %v", req.Method(), err)
	}
	return nil
}

// notify sends a notification to the client, logging a failure.
func (s *Server) notify(ctx context.Context, name string, params any) {
	raw, err := json.Marshal(params)
	if err == nil {
		err = s.conn.Notify(ctx, name, jsonrpc2.RawMessage(raw))
	}
	if err != nil {
		s.log.Debug("notification not sent", zap.String("method", name), zap.Error(err))
	}
}

// call sends a request to the client and decodes its result into result.
func (s *Server) call(ctx context.Context, name string, params, result any) error {
	raw, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	var res jsonrpc2.RawMessage
	if _, err := s.conn.Call(ctx, name, jsonrpc2.RawMessage(raw), &res); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if result == nil || len(res) == 0 {
		return nil
	}
	if err := json.Unmarshal(res, result); err != nil {
		return fmt.Errorf("%s: result: %w", name, err)
	}
	return nil
}

// reply encodes a result with encoding/json (the LSP field conventions:
// omitempty, nil slices as null) so it bypasses jsonrpc2's codec.
func reply(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jsonrpc2.RawMessage(raw), nil
}

// showMessage tells the user something they must act on.
func (s *Server) showMessage(typ int, msg string) {
	s.notify(s.ctx, "window/showMessage", ShowMessageParams{Type: typ, Message: msg})
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
