// Package cli is how dfill's commands are declared and run: one Command
// type for every command and subcommand, flags from the standard flag
// package (so -name and --name both work, as in every Go tool), flags
// accepted before or after positional arguments, -h on every command, and
// one mapping from a command's error to its exit status (2 for a usage
// error, 1 for any other, or the status the command asks for).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// A Command is one dfill command. A command either runs (Run) or groups
// subcommands (Commands), never both.
type Command struct {
	Name    string // as typed: "complete", "kernels"
	Args    string // the positional arguments in the usage line: "FILE:LINE:COL"; "" when none
	NArgs   int    // how many positional arguments Run takes; the runner checks
	Summary string // one line, shown in the parent's list and in -h

	// Flags declares the command's own flags on fs; Run sees their values.
	Flags func(fs *flag.FlagSet)
	// Shared, when set, receives the shared flags of model-running
	// commands, and Run runs under the CPU profile --cpuprofile asks for.
	Shared *Shared
	// Run does the command's work with the positional arguments.
	Run func(ctx context.Context, args []string) error

	// Commands are the subcommands of a command that groups them; the
	// first argument names one.
	Commands []*Command
}

// usageError is an error the user fixes by changing the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// Usagef returns a usage error: the runner prints it with the command's
// usage line and exits with status 2.
func Usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// ExitCode is returned by a command that ends with a specific status and
// has said all it has to say (serve exits 1 when the client exits without
// shutdown; complete exits 1 when nothing passed validation).
type ExitCode int

func (c ExitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// Main runs the command of root that args name and returns the process's
// exit status: 0 when it succeeds or its help was asked for; 2 after a
// usage error, printed to stderr with the usage line; the status of an
// ExitCode the command returns; 1 after any other error, printed to stderr
// as "dfill COMMAND: error".
func Main(ctx context.Context, root *Command, args []string, stderr io.Writer) int {
	return root.run(ctx, []string{root.Name}, args, stderr)
}

// run runs c, reached by the names path, with args.
func (c *Command) run(ctx context.Context, path, args []string, stderr io.Writer) int {
	if len(c.Commands) > 0 {
		return c.dispatch(ctx, path, args, stderr)
	}
	name := strings.Join(path, " ")
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { c.printHelp(stderr, path, fs) }
	if c.Shared != nil {
		c.Shared.Register(fs)
	}
	if c.Flags != nil {
		c.Flags(fs)
	}
	if err := fs.Parse(permuteArgs(fs, args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2 // the flag package printed the error and the help
	}
	if fs.NArg() != c.NArgs {
		return c.usage(stderr, path, c.wrongArgs(fs.Args()))
	}
	err := c.runProfiled(ctx, fs.Args())
	var (
		u    usageError
		code ExitCode
	)
	switch {
	case err == nil:
		return 0
	case errors.As(err, &u):
		return c.usage(stderr, path, u)
	case errors.As(err, &code):
		return int(code)
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return 1
}

// runProfiled calls Run, under the CPU profile the shared flags ask for.
func (c *Command) runProfiled(ctx context.Context, args []string) error {
	if c.Shared != nil {
		stop, err := c.Shared.startProfile()
		if err != nil {
			return err
		}
		defer stop()
	}
	return c.Run(ctx, args)
}

// wrongArgs says what is wrong with the positional arguments args, which
// are not the NArgs c takes.
func (c *Command) wrongArgs(args []string) error {
	if len(args) < c.NArgs {
		return Usagef("missing %s", c.Args)
	}
	return Usagef("unexpected argument %q", args[c.NArgs])
}

// dispatch runs the subcommand of c that args[0] names.
func (c *Command) dispatch(ctx context.Context, path, args []string, stderr io.Writer) int {
	if len(args) == 0 {
		c.printHelp(stderr, path, nil)
		return 2
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if sub := c.lookupHelp(name, rest); sub != nil {
			if len(sub.Commands) > 0 { // help on a subcommand's subcommand
				return sub.run(ctx, append(path, sub.Name), append([]string{"help"}, rest[1:]...), stderr)
			}
			return sub.run(ctx, append(path, sub.Name), []string{"-h"}, stderr)
		}
		c.printHelp(stderr, path, nil)
		return 0
	}
	sub := c.lookup(name)
	if sub == nil {
		fmt.Fprintf(stderr, "%s: unknown command %q\n\n", strings.Join(path, " "), name)
		c.printHelp(stderr, path, nil)
		return 2
	}
	return sub.run(ctx, append(path, sub.Name), rest, stderr)
}

// lookupHelp returns the subcommand `help NAME` asks about, or nil.
func (c *Command) lookupHelp(name string, rest []string) *Command {
	if name != "help" || len(rest) == 0 {
		return nil
	}
	return c.lookup(rest[0])
}

func (c *Command) lookup(name string) *Command {
	for _, sub := range c.Commands {
		if sub.Name == name {
			return sub
		}
	}
	return nil
}

// usage prints err and c's usage line, and returns the status of a usage
// error.
func (c *Command) usage(stderr io.Writer, path []string, err error) int {
	fmt.Fprintf(stderr, "%s: %v\n", strings.Join(path, " "), err)
	fmt.Fprintf(stderr, "usage: %s\nRun '%s -h' for its flags.\n", c.usageLine(path), strings.Join(path, " "))
	return 2
}

func (c *Command) usageLine(path []string) string {
	line := strings.Join(path, " ")
	if len(c.Commands) > 0 {
		return line + " <command> [flags] [args]"
	}
	line += " [flags]"
	if c.Args != "" {
		line += " " + c.Args
	}
	return line
}

// printHelp prints c's usage line, summary, and its flags (fs) or its
// subcommands.
func (c *Command) printHelp(w io.Writer, path []string, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: %s\n", c.usageLine(path))
	if c.Summary != "" {
		fmt.Fprintf(w, "\n%s\n", c.Summary)
	}
	if len(c.Commands) > 0 {
		fmt.Fprintln(w, "\ncommands:")
		width := 0
		for _, sub := range c.Commands {
			width = max(width, len(sub.Name))
		}
		for _, sub := range c.Commands {
			fmt.Fprintf(w, "  %-*s  %s\n", width, sub.Name, sub.Summary)
		}
		fmt.Fprintf(w, "\nRun '%s <command> -h' for a command's flags.\n", strings.Join(path, " "))
		return
	}
	if fs != nil {
		fmt.Fprintln(w, "\nflags:")
		fs.PrintDefaults()
	}
}
