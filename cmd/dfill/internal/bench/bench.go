// Package bench is `dfill bench`: measurements of the matrix kernels, of
// infill quality on task files, of the language server under typing, of
// `dfill http` under concurrent clients, and of filling a span left to
// right against filling it by diffusion. Each
// prints a table, or JSON with --json. Measurements are not tests: nothing
// here asserts a time.
package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dfill/dfill/cmd/dfill/internal/cli"
	"github.com/dfill/dfill/completion"
	"github.com/dfill/dfill/engine"
)

// Models loads the models the benchmarks run. Package main provides it:
// it wires the engine (and the embedded model) into every command.
type Models struct {
	// Generator loads the model the shared flags name as the completion
	// pipeline's Generator; release frees it. endAnywhere lets end tokens
	// appear anywhere in a span (engine.Options.EndAnywhere).
	Generator func(ctx context.Context, sf *cli.Shared, endAnywhere bool, log *zap.Logger) (gen completion.Generator, release func(), err error)
	// Engine loads the GGUF at path (the embedded model when "") to run on
	// threads.
	Engine func(path string, threads int) (*engine.Model, error)
	// SaveCalibrated writes the GGUF model at path (the embedded model
	// when "") to out with cal as its score calibration.
	SaveCalibrated func(ctx context.Context, path, out string, cal completion.Calibration) error
}

// Command returns `dfill bench` and its benchmarks.
func Command(m Models) *cli.Command {
	return &cli.Command{
		Name:    "bench",
		Summary: "measure: bench kernels | infill | lsp | http | ar-vs-diffusion (a table, or JSON with --json)",
		Commands: []*cli.Command{
			kernelsCommand(),
			infillCommand(m),
			lspCommand(),
			httpCommand(),
			arCommand(m),
		},
	}
}

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

// percentile returns the p-th percentile (nearest rank) of sorted ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds))*p+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}
