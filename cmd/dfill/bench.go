package main

import (
	"context"
	"fmt"
	"os"
)

func init() {
	register("bench", "measure: bench kernels | lsp | ar-vs-diffusion (a table, or JSON with --json)", runBench)
}

// benches maps `dfill bench NAME` to its runner.
var benches = map[string]func(ctx context.Context, args []string) error{
	"ar-vs-diffusion": runBenchARvsDiffusion,
}

func runBench(ctx context.Context, args []string) error {
	if len(args) > 0 {
		if b, ok := benches[args[0]]; ok {
			return b(ctx, args[1:])
		}
		fmt.Fprintf(os.Stderr, "dfill bench: unknown benchmark %q\n", args[0])
	}
	fmt.Fprintln(os.Stderr, "usage: dfill bench kernels|lsp|ar-vs-diffusion [flags]")
	return errUsage
}
