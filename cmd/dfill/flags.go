package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// sharedFlags are the flags every model-running command takes (DESIGN.md).
type sharedFlags struct {
	model     string
	backend   string
	threads   int
	steps     int
	algorithm string
	logFile   string
	logLevel  string
	cpuProf   string
}

func addSharedFlags(fs *flag.FlagSet) *sharedFlags {
	s := &sharedFlags{}
	fs.StringVar(&s.model, "model", "", "GGUF model `path` (default: the embedded model)")
	fs.StringVar(&s.backend, "backend", "cpu", "inference backend: cpu (the one this build has)")
	fs.IntVar(&s.threads, "threads", runtime.NumCPU(), "CPU threads for the model")
	fs.IntVar(&s.steps, "steps", 0, "denoising steps (0: the default for the span)")
	fs.StringVar(&s.algorithm, "algorithm", "confidence", "confidence score: confidence, margin or entropy")
	fs.StringVar(&s.logFile, "log-file", "", "write logs to this `file` instead of stderr")
	fs.StringVar(&s.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&s.cpuProf, "cpuprofile", "", "write a CPU profile of the command to this `file` (for go tool pprof)")
	return s
}

// startProfile starts the CPU profile --cpuprofile asks for; stop ends it.
func (s *sharedFlags) startProfile() (stop func(), err error) {
	if s.cpuProf == "" {
		return func() {}, nil
	}
	f, err := os.Create(s.cpuProf)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// parseFlags parses args into fs, printing errors and usage to stderr.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(os.Stderr)
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return errUsage
	}
	return nil
}

// logger builds the zap logger the flags ask for. It never writes to stdout,
// which belongs to the protocol while serving.
func (s *sharedFlags) logger() (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(s.logLevel)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	out := "stderr"
	if s.logFile != "" {
		out = s.logFile
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(level)
	cfg.Encoding = "console"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.OutputPaths = []string{out}
	cfg.ErrorOutputPaths = []string{"stderr"}
	cfg.Sampling = nil
	return cfg.Build()
}

func numCPU() int { return runtime.NumCPU() }

// parseInts parses a comma-separated list of positive integers.
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}
