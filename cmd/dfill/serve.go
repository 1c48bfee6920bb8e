package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"github.com/dfill/dfill/cmd/dfill/internal/cli"
	"github.com/dfill/dfill/completion"
	"github.com/dfill/dfill/lsp"
)

func serveCommand() *cli.Command {
	sf := &cli.Shared{}
	return &cli.Command{
		Name:    "serve",
		Summary: "LSP server over stdio (the default when stdin is not a terminal)",
		Shared:  sf,
		Flags: func(fs *flag.FlagSet) {
			fs.Bool("stdio", true, "speak LSP over stdin and stdout (the only transport; accepted because editors pass it)")
		},
		Run: func(ctx context.Context, _ []string) error { return serve(ctx, sf) },
	}
}

// serve speaks LSP on stdin and stdout until the client exits. Stdout
// carries only the protocol; logs go to stderr or --log-file. It ends with
// ExitCode 0 after shutdown+exit and 1 otherwise, as LSP asks.
func serve(ctx context.Context, sf *cli.Shared) error {
	log, level, err := serveLogger(sf)
	if err != nil {
		return err
	}
	defer log.Sync()
	loader := func(ctx context.Context, mc lsp.ModelConfig) (completion.Generator, func(), error) {
		return newGenerator(ctx, generatorConfig{Model: mc.Model, Backend: mc.Backend, Threads: sf.Threads, Remote: remoteSetting(mc.Remote),
			Progress: lsp.LoadProgress(ctx)}, log.Named("engine"))
	}
	code, err := lsp.Serve(ctx, stdio(), lsp.Options{
		Logger: log.Named("lsp"),
		Level:  &level,
		Loader: loader,
		Config: lsp.Config{
			Model:     sf.Model,
			Backend:   sf.Backend,
			Steps:     sf.Steps,
			Algorithm: sf.Algorithm,
			LogLevel:  sf.LogLevel,
			Remote:    lspRemote(sf),
		},
		Version: version,
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("connection ended", zap.Error(err))
	}
	if code != 0 {
		return cli.ExitCode(code)
	}
	return nil
}

// serveLogger builds the flags' logger with a level the client's logLevel
// setting can change later: the core logs everything and the atomic level
// filters.
func serveLogger(sf *cli.Shared) (*zap.Logger, zap.AtomicLevel, error) {
	lvl, err := zapcore.ParseLevel(sf.LogLevel)
	if err != nil {
		return nil, zap.AtomicLevel{}, err
	}
	level := zap.NewAtomicLevelAt(lvl)
	all := *sf
	all.LogLevel = "debug"
	log, err := all.Logger()
	if err != nil {
		return nil, level, err
	}
	log = log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		filtered, err := zapcore.NewIncreaseLevelCore(c, level)
		if err != nil {
			return c
		}
		return filtered
	}))
	return log, level, nil
}

// stdioConn is stdin and stdout as one stream.
type stdioConn struct {
	in  *os.File
	out *os.File
}

func (c stdioConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c stdioConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c stdioConn) Close() error {
	return errors.Join(c.in.Close(), c.out.Close())
}

// stdio returns stdin and stdout as the protocol stream. A pipe on stdin
// is switched to non-blocking mode so that closing it at exit interrupts a
// pending read (a blocking file's Close does not).
func stdio() io.ReadWriteCloser {
	in := os.Stdin
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		if err := syscall.SetNonblock(int(os.Stdin.Fd()), true); err == nil {
			in = os.NewFile(os.Stdin.Fd(), "stdin")
		}
	}
	return stdioConn{in: in, out: os.Stdout}
}
