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

	"github.com/dfill/dfill/completion"
	"github.com/dfill/dfill/lsp"
)

func init() {
	register("serve", "LSP server over stdio (the default when stdin is not a terminal)", runServe)
}

// runServe speaks LSP on stdin and stdout until the client exits. Stdout
// carries only the protocol; logs go to stderr or --log-file. It ends with
// exitCode 0 after shutdown+exit and 1 otherwise, as LSP asks.
func runServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	sf := addSharedFlags(fs)
	fs.Bool("stdio", true, "speak LSP over stdin and stdout (the only transport; accepted because editors pass it)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, level, err := serveLogger(sf)
	if err != nil {
		return err
	}
	defer log.Sync()
	stopProfile, err := sf.startProfile()
	if err != nil {
		return err
	}
	defer stopProfile()

	loader := func(ctx context.Context, mc lsp.ModelConfig) (completion.Generator, func(), error) {
		gen, err := newGenerator(ctx, generatorConfig{Model: mc.Model, Backend: mc.Backend, Threads: sf.threads}, log.Named("engine"))
		if err != nil {
			return nil, nil, err
		}
		return gen, func() { closeGenerator(gen) }, nil
	}
	code, err := lsp.Serve(ctx, stdio(), lsp.Options{
		Logger: log.Named("lsp"),
		Level:  &level,
		Loader: loader,
		Config: lsp.Config{
			Model:     sf.model,
			Backend:   sf.backend,
			Steps:     sf.steps,
			Algorithm: sf.algorithm,
			LogLevel:  sf.logLevel,
		},
		Version: version,
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("connection ended", zap.Error(err))
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}

// serveLogger builds the flags' logger with a level the client's logLevel
// setting can change later: the core logs everything and the atomic level
// filters.
func serveLogger(sf *sharedFlags) (*zap.Logger, zap.AtomicLevel, error) {
	lvl, err := zapcore.ParseLevel(sf.logLevel)
	if err != nil {
		return nil, zap.AtomicLevel{}, err
	}
	level := zap.NewAtomicLevelAt(lvl)
	all := *sf
	all.logLevel = "debug"
	log, err := all.logger()
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
