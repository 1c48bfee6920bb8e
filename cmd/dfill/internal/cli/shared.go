package cli

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Shared holds the flags every model-running command takes (DESIGN.md,
// "Command line"). A Command gets them by pointing its Shared field at one.
type Shared struct {
	Model      string // GGUF path; "" is the embedded model
	Backend    string
	Threads    int
	Steps      int
	Algorithm  string
	LogFile    string
	LogLevel   string
	CPUProfile string // the file --cpuprofile names, or ""

	// The served model --backend remote asks (remote.Config).
	RemoteURL       string
	RemoteProtocol  string
	RemoteModel     string
	RemoteAPIKeyEnv string // the name of the variable holding the key, never the key
}

// Register declares the shared flags on fs. A Command whose Shared field
// points at s has them declared, and the profile started, by the runner; a
// command that does something else with --cpuprofile (bench lsp gives it
// to the server it starts) declares them itself.
func (s *Shared) Register(fs *flag.FlagSet) {
	fs.StringVar(&s.Model, "model", "", "GGUF `path`, catalog name or Hugging Face OWNER/REPO[:QUANT] (pulled when not cached; default: the embedded model)")
	fs.StringVar(&s.Backend, "backend", "cpu", "inference backend: cpu, cuda (a build with -tags cuda), or remote (a served model: --remote-url, --remote-protocol)")
	fs.StringVar(&s.RemoteURL, "remote-url", "", "the served model's base `URL` (http or https) for --backend remote")
	fs.StringVar(&s.RemoteProtocol, "remote-protocol", "dfill", "what the server at --remote-url speaks: mercury, openai-fim, sglang, llamacpp or dfill")
	fs.StringVar(&s.RemoteModel, "remote-model", "", "the served model's `name` (mercury and openai-fim need one)")
	fs.StringVar(&s.RemoteAPIKeyEnv, "remote-api-key-env", "", "the environment `variable` holding the server's API key, sent as a bearer token")
	fs.IntVar(&s.Threads, "threads", runtime.NumCPU(), "CPU threads for the model")
	fs.IntVar(&s.Steps, "steps", 0, "denoising steps (0: the default for the span)")
	fs.StringVar(&s.Algorithm, "algorithm", "", "confidence score: confidence, margin or entropy (default: the catalog's for the model, else confidence)")
	fs.StringVar(&s.LogFile, "log-file", "", "write logs to this `file` instead of stderr")
	fs.StringVar(&s.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&s.CPUProfile, "cpuprofile", "", "write a CPU profile of the command to this `file` (for go tool pprof)")
}

// startProfile starts the CPU profile --cpuprofile asks for; stop ends it.
func (s *Shared) startProfile() (stop func(), err error) {
	if s.CPUProfile == "" {
		return func() {}, nil
	}
	f, err := os.Create(s.CPUProfile)
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

// Logger builds the zap logger the flags ask for. It never writes to
// stdout, which belongs to the protocol while serving.
func (s *Shared) Logger() (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(s.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	out := "stderr"
	if s.LogFile != "" {
		out = s.LogFile
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

// GoRoot returns the Go installation's root, from `go env GOROOT` or the
// one this binary was built with: the sources commands default to (train
// --src, bench lsp --file).
func GoRoot() string {
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		if s := strings.TrimSpace(string(out)); s != "" {
			return s
		}
	}
	return runtime.GOROOT()
}
