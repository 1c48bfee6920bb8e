package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/dfill/dfill/api"
	"github.com/dfill/dfill/cmd/dfill/internal/cli"
	"github.com/dfill/dfill/completion"
	"github.com/dfill/dfill/engine"
)

// httpFlags are the flags of `dfill http`.
type httpFlags struct {
	shared          cli.Shared
	addr            string
	apiKeyEnv       string
	queue           int
	batch           int
	maxTokens       int
	maxBody         int64
	timeout         time.Duration
	shutdownTimeout time.Duration
}

func httpCommand() *cli.Command {
	f := &httpFlags{}
	return &cli.Command{
		Name:    "http",
		Summary: "an HTTP server: POST /v1/fim/completions and /v1/completions (SSE streaming, diffusing), GET /v1/models, /healthz, /metrics",
		Shared:  &f.shared,
		Flags:   f.register,
		Run:     func(ctx context.Context, _ []string) error { return f.run(ctx) },
	}
}

func (f *httpFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen on this `host:port` (port 0: any free port; the address is printed)")
	fs.StringVar(&f.apiKeyEnv, "api-key-env", "", "require the bearer token held by the environment `variable` named (every path but /healthz)")
	fs.IntVar(&f.batch, "batch", 4, "requests denoised together, one forward per step for all of them (1: one at a time)")
	fs.IntVar(&f.queue, "queue", 16, "requests that may wait while a batch generates; one more is answered 429")
	fs.IntVar(&f.maxTokens, "max-tokens", api.DefaultMaxTokens, "the most max_tokens a request may ask for")
	fs.Int64Var(&f.maxBody, "max-body", api.DefaultMaxBodyBytes, "the largest request body accepted, in bytes (larger: 413)")
	fs.DurationVar(&f.timeout, "timeout", api.DefaultTimeout, "each request's deadline, queue wait included (then 504)")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", api.DefaultShutdownTimeout, "on SIGTERM or SIGINT, how long requests in flight may take to finish before they are cancelled")
}

// run serves until ctx is done (a signal), then drains the requests in
// flight. It listens before the model has loaded: /healthz answers 503
// until then. The address goes to stdout, logs to stderr or --log-file.
func (f *httpFlags) run(ctx context.Context) error {
	if err := f.check(); err != nil {
		return err
	}
	key, err := f.apiKey()
	if err != nil {
		return err
	}
	log, err := f.shared.Logger()
	if err != nil {
		return err
	}
	defer log.Sync()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	if key == "" && !isLoopback(ln.Addr()) {
		log.Warn("listening beyond this machine without --api-key-env: anyone who reaches the port can use the model", zap.Stringer("addr", ln.Addr()))
	}
	fmt.Printf("dfill http: listening on http://%s\n", ln.Addr())

	srv := api.New(api.Options{
		APIKey:          key,
		QueueSize:       f.queue,
		Batch:           f.batch,
		MaxTokens:       f.maxTokens,
		MaxBodyBytes:    f.maxBody,
		Timeout:         f.timeout,
		ShutdownTimeout: f.shutdownTimeout,
		EngineOptions:   f.engineOptions,
		Logger:          log.Named("http"),
	})
	serveCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var model *engine.Model
	gpuRelease := func() {}
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		m, err := loadModelCtx(serveCtx, f.shared.Model, f.shared.Threads, cliProgress(f.shared.Model))
		if err != nil {
			stop(fmt.Errorf("loading the model: %w", err))
			return
		}
		model = m
		log.Info("model loaded", zap.String("arch", string(m.Config.Arch)), zap.Int("layers", m.Config.Layers),
			zap.Int("dim", m.Config.Dim), zap.Int("threads", m.Threads()))
		if f.shared.Backend == "cuda" {
			release, err := accelerate(m, log)
			if err != nil {
				stop(fmt.Errorf("the model on the GPU: %w", err))
				return
			}
			gpuRelease = release
		}
		srv.SetModel(api.FromEngineBatched(m, f.batch))
	}()
	err = srv.Serve(serveCtx, ln)
	stop(nil)
	<-loaded
	if model != nil {
		gpuRelease()
		model.Close() // no handler is running: Serve has returned
	}
	if cause := context.Cause(serveCtx); ctx.Err() == nil && !errors.Is(cause, context.Canceled) {
		return errors.Join(cause, err) // the model failed to load
	}
	return err
}

// check refuses flag values out of range.
func (f *httpFlags) check() error {
	switch {
	case f.shared.Backend == "cuda":
		return cudaBuilt()
	case f.shared.Backend != "" && f.shared.Backend != "cpu":
		return cli.Usagef("--backend %q: dfill http serves the cpu or cuda backend", f.shared.Backend)
	case f.batch < 1:
		return cli.Usagef("--batch %d: want 1 or more", f.batch)
	case f.queue < 0:
		return cli.Usagef("--queue %d: want 0 or more", f.queue)
	case f.maxTokens < 1:
		return cli.Usagef("--max-tokens %d: want 1 or more", f.maxTokens)
	case f.maxBody < 1:
		return cli.Usagef("--max-body %d: want 1 or more", f.maxBody)
	case f.timeout <= 0 || f.shutdownTimeout <= 0:
		return cli.Usagef("--timeout and --shutdown-timeout must be positive")
	}
	// The sampler settings (--algorithm, --steps) as every request will
	// use them.
	if _, err := engineOptions(completion.GenerateOptions{MaxTokens: f.maxTokens, Steps: f.shared.Steps, Algorithm: f.shared.Algorithm}); err != nil {
		return cli.Usagef("%v", err)
	}
	return nil
}

// apiKey returns the key the --api-key-env variable holds; a variable
// named but unset or empty is an error, never an open server.
func (f *httpFlags) apiKey() (string, error) {
	if f.apiKeyEnv == "" {
		return "", nil
	}
	key := os.Getenv(f.apiKeyEnv)
	if key == "" {
		return "", fmt.Errorf("--api-key-env %s: the variable is unset or empty", f.apiKeyEnv)
	}
	return key, nil
}

// engineOptions are the sampler settings of a request for n tokens: the
// editor path's (engineOptions: the threshold schedule, at most 3n/16
// steps, blocks of 32, the dual cache) for one span of n.
func (f *httpFlags) engineOptions(n int) engine.Options {
	eo, err := engineOptions(completion.GenerateOptions{MaxTokens: n, Steps: f.shared.Steps, Algorithm: f.shared.Algorithm})
	if err != nil {
		// check has parsed the same --algorithm: not reached.
		return engine.Options{}
	}
	eo.Lengths, eo.Contexts = []int{n}, nil
	return eo
}

// isLoopback reports whether addr is a loopback address.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
