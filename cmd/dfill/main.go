// Command dfill is a language server that completes code with a masked
// diffusion language model, and the tools around it: model inspection,
// training, benchmarks and one-shot completion.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"golang.org/x/term"
)

// A command is one dfill subcommand. run gets the arguments after its name.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]command{}

func register(name, summary string, run func(ctx context.Context, args []string) error) {
	commands[name] = command{summary, run}
}

// errUsage marks an error the user fixes by changing the command line; the
// flag package already printed what was wrong.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stderr))
}

func run(args []string, stdin *os.File, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	name := "help"
	if len(args) > 0 {
		name, args = args[0], args[1:]
	} else if !term.IsTerminal(int(stdin.Fd())) {
		name = "serve" // an editor started us with a pipe on stdin
	}
	switch name {
	case "help", "-h", "--help":
		usage(stderr)
		return 0
	case "--version", "-version":
		name = "version"
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "dfill: unknown command %q\n\n", name)
		usage(stderr)
		return 2
	}
	if err := cmd.run(ctx, args); err != nil {
		var code exitCode
		switch {
		case errors.As(err, &code):
			return int(code)
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		}
		fmt.Fprintf(stderr, "dfill %s: %v\n", name, err)
		return 1
	}
	return 0
}

// exitCode is returned by a command that ends with a specific status and has
// nothing more to say (serve exits 1 when the client exits without shutdown).
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: dfill <command> [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'dfill <command> -h' for a command's flags.")
}
