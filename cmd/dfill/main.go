// Command dfill is a language server that completes code with a masked
// diffusion language model, and the tools around it: model inspection,
// training, benchmarks and one-shot completion.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/dfill/dfill/cmd/dfill/internal/bench"
	"github.com/dfill/dfill/cmd/dfill/internal/cli"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stderr))
}

// run runs the command args name and returns the exit status. With no
// arguments it serves LSP when stdin is not a terminal (an editor started
// it with a pipe) and prints the commands otherwise.
func run(args []string, stdin *os.File, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch {
	case len(args) == 0 && !term.IsTerminal(int(stdin.Fd())):
		args = []string{"serve"}
	case len(args) == 0:
		args = []string{"help"}
	case args[0] == "--version" || args[0] == "-version":
		args = append([]string{"version"}, args[1:]...)
	}
	return cli.Main(ctx, commands(), args, stderr)
}

// commands returns dfill and its commands, wired to the engine.
func commands() *cli.Command {
	return &cli.Command{
		Name: "dfill",
		Commands: []*cli.Command{
			bench.Command(benchModels),
			completeCommand(),
			httpCommand(),
			modelCommand(),
			serveCommand(),
			trainCommand(),
			versionCommand(),
		},
	}
}
