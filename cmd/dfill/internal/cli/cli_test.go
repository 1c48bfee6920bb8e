package cli

import (
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestPermuteArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"flags after the argument", []string{"PATH", "--tokens", "1,2", "--json", "--no-validate", "-tokens=3"},
			[]string{"--tokens", "1,2", "--json", "--no-validate", "-tokens=3", "--", "PATH"}},
		{"after --, all arguments", []string{"PATH", "--json", "--", "-x", "--json"}, []string{"--json", "--", "PATH", "-x", "--json"}},
		{"only --", []string{"--", "-x"}, []string{"--", "-x"}},
		{"help takes no value", []string{"-h", "PATH"}, []string{"-h", "--", "PATH"}},
		{"no arguments", []string{"--json"}, []string{"--json"}},
		{"a lone dash is an argument", []string{"-", "--json"}, []string{"--json", "--", "-"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			fs.Bool("json", false, "")
			fs.Bool("no-validate", false, "")
			fs.String("tokens", "", "")
			if got := permuteArgs(fs, tt.args); strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("permuteArgs(%q) = %q, want %q", tt.args, got, tt.want)
			}
		})
	}
}

// testCommands is a root with a subcommand group and leaves that record
// what they ran with.
func testCommands(got *[]string, json *bool) *Command {
	leaf := func(name string, nargs int, err error) *Command {
		return &Command{
			Name: name, Args: "PATH", NArgs: nargs, Summary: name + " things",
			Flags: func(fs *flag.FlagSet) { fs.BoolVar(json, "json", false, "print JSON") },
			Run: func(_ context.Context, args []string) error {
				*got = append([]string{name}, args...)
				return err
			},
		}
	}
	return &Command{Name: "dfill", Commands: []*Command{
		leaf("info", 1, nil),
		leaf("fail", 0, errors.New("it broke")),
		leaf("misuse", 0, Usagef("--out is required")),
		leaf("status", 0, ExitCode(3)),
		{Name: "group", Summary: "a group", Commands: []*Command{leaf("sub", 1, nil)}},
	}}
}

// TestCommandLines checks the exit status and messages of each way a command line
// can end.
func TestCommandLines(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		ran      []string // the leaf run and its arguments
		json     bool
		inStderr string
	}{
		{name: "flag before", args: []string{"info", "--json", "a.gguf"}, ran: []string{"info", "a.gguf"}, json: true},
		{name: "flag after", args: []string{"info", "a.gguf", "--json"}, ran: []string{"info", "a.gguf"}, json: true},
		{name: "single dash", args: []string{"info", "a.gguf", "-json"}, ran: []string{"info", "a.gguf"}, json: true},
		{name: "nested", args: []string{"group", "sub", "x", "--json"}, ran: []string{"sub", "x"}, json: true},
		{name: "help", args: []string{"info", "-h"}, inStderr: "usage: dfill info [flags] PATH"},
		{name: "--help after an argument", args: []string{"group", "sub", "x", "--help"}, inStderr: "usage: dfill group sub [flags] PATH"},
		{name: "help command", args: []string{"help", "group", "sub"}, inStderr: "usage: dfill group sub [flags] PATH"},
		{name: "root help", args: []string{"help"}, inStderr: "  group   a group\n"},
		{name: "group help", args: []string{"group", "-h"}, inStderr: "sub  sub things"},
		{name: "unknown flag", args: []string{"info", "--nope", "x"}, code: 2, inStderr: "flag provided but not defined: -nope"},
		{name: "missing argument", args: []string{"info"}, code: 2, inStderr: "dfill info: missing PATH"},
		{name: "extra argument", args: []string{"info", "a", "b"}, code: 2, inStderr: `dfill info: unexpected argument "b"`},
		{name: "unknown command", args: []string{"nope"}, code: 2, inStderr: `dfill: unknown command "nope"`},
		{name: "no subcommand", args: []string{"group"}, code: 2, inStderr: "usage: dfill group <command>"},
		{name: "error", args: []string{"fail"}, code: 1, ran: []string{"fail"}, inStderr: "dfill fail: it broke"},
		{name: "usage error", args: []string{"misuse"}, code: 2, ran: []string{"misuse"}, inStderr: "dfill misuse: --out is required\nusage: dfill misuse [flags] PATH"},
		{name: "exit status", args: []string{"status"}, code: 3, ran: []string{"status"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				ran    []string
				json   bool
				stderr strings.Builder
			)
			code := Main(context.Background(), testCommands(&ran, &json), tt.args, &stderr)
			if code != tt.code || strings.Join(ran, " ") != strings.Join(tt.ran, " ") || json != tt.json {
				t.Errorf("%q: exit %d, ran %q, json %v; want %d, %q, %v", tt.args, code, ran, json, tt.code, tt.ran, tt.json)
			}
			if !strings.Contains(stderr.String(), tt.inStderr) {
				t.Errorf("%q: stderr %q does not hold %q", tt.args, stderr.String(), tt.inStderr)
			}
			if tt.inStderr == "" && stderr.Len() > 0 {
				t.Errorf("%q: stderr %q, want nothing", tt.args, stderr.String())
			}
		})
	}
}
