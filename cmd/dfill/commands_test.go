package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dfill/dfill/cmd/dfill/internal/cli"
	"github.com/dfill/dfill/engine"
	"github.com/dfill/dfill/engine/gguf"
)

// TestEveryCommandHelps runs each command with -h: every one prints its
// usage and exits 0.
func TestEveryCommandHelps(t *testing.T) {
	var walk func(path []string, c *cli.Command)
	walk = func(path []string, c *cli.Command) {
		for _, sub := range c.Commands {
			walk(append(path[:len(path):len(path)], sub.Name), sub)
		}
		if len(path) == 0 {
			return
		}
		t.Run(strings.Join(path, " "), func(t *testing.T) {
			var stderr strings.Builder
			code := cli.Main(context.Background(), commands(), append(path, "-h"), &stderr)
			if want := "usage: dfill " + strings.Join(path, " ") + " "; code != 0 || !strings.HasPrefix(stderr.String(), want) {
				t.Errorf("exit %d, stderr %q; want 0 and %q", code, stderr.String(), want+"...")
			}
		})
	}
	walk(nil, commands())
}

// TestCommandLinesE2E runs the built binary as editors, scripts and the
// README call it, and checks the exit status and what it prints.
func TestCommandLinesE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the dfill binary")
	}
	bin, err := buildDfill()
	if err != nil {
		t.Fatal(err)
	}
	isJSON := func(keys ...string) func(string) bool {
		return func(out string) bool {
			var m map[string]any
			if json.Unmarshal([]byte(out), &m) != nil {
				return false
			}
			for _, k := range keys {
				if _, ok := m[k]; !ok {
					return false
				}
			}
			return true
		}
	}
	prefix := func(p string) func(string) bool { return func(out string) bool { return strings.HasPrefix(out, p) } }
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout func(string) bool // nil: anything
	}{
		{"--version", []string{"--version"}, 0, prefix("dfill " + version + " (")},
		{"version", []string{"version"}, 0, prefix("dfill " + version + " (")},
		{"version --json", []string{"version", "--json"}, 0, isJSON("version", "go", "platform", "kernels", "tags")},
		{"model info --json after the path", []string{"model", "info", "model/dfill-go.gguf", "--json"}, 0, isJSON("arch", "parameters")},
		{"model info -json before the path", []string{"model", "info", "-json", "model/dfill-go.gguf"}, 0, isJSON("arch", "parameters")},
		{"complete --json", []string{"complete", "--json", "testdata/sample.go:8:1"}, 0, func(out string) bool {
			var res struct{ Completions []struct{ Text string } }
			return json.Unmarshal([]byte(out), &res) == nil && len(res.Completions) > 0 && res.Completions[0].Text == "\t\treturn err"
		}},
		{"complete without a position", []string{"complete"}, 2, nil},
		{"unknown command", []string{"nope"}, 2, nil},
		{"a group without its command", []string{"bench"}, 2, nil},
		{"model random without --out", []string{"model", "random", "-preset", "tiny"}, 2, nil},
		{"bench ar-vs-diffusion past the model's context", []string{"bench", "ar-vs-diffusion", "--contexts", "512", "--canvases", "32"}, 1, nil},
		{"no arguments, stdin a pipe at EOF: serve, which exits 1 without shutdown", nil, 1, nil},
		{"complete --backend cuda in a build without CUDA", []string{"complete", "--backend", "cuda", "testdata/sample.go:8:1"}, 1, nil},
		{"bench ar-vs-diffusion on another backend", []string{"bench", "ar-vs-diffusion", "--backend", "remote"}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			cmd.Stdin = strings.NewReader("")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := cmd.ProcessState.ExitCode()
			if code != tt.code || (tt.stdout != nil && !tt.stdout(stdout.String())) {
				t.Errorf("dfill %q: exit %d (%v), stdout %q, stderr %q; want exit %d", tt.args, code, err, stdout.String(), stderr.String(), tt.code)
			}
			if code != 0 && stderr.Len() == 0 && len(tt.args) > 0 {
				t.Errorf("dfill %q: exit %d and nothing on stderr", tt.args, code)
			}
			if slices.Contains(tt.args, "cuda") && !strings.Contains(stderr.String(), "built without CUDA") {
				t.Errorf("dfill %q: stderr %q does not say the build has no CUDA", tt.args, stderr.String())
			}
		})
	}
}

// TestModelRandomTooLarge asks for a shape whose embedding alone is 372
// GiB: it is refused with a message before anything is allocated, and no
// file is left; a model that fits is written whole, readable by all.
func TestModelRandomTooLarge(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "huge.gguf")
	spec := engine.Presets["tiny"]
	spec.Arch, spec.Type = engine.ArchLLaDA, gguf.TypeF32
	spec.Dim, spec.FFN, spec.Vocab = 100000, 100000, 1000000
	total, largest, name, err := engine.RandomSize(spec)
	if err != nil || name != "token_embd.weight" || largest != 100000*1000000*4 || total < largest {
		t.Fatalf("RandomSize = %d, %d, %q, %v", total, largest, name, err)
	}
	if mem, ok := physicalMemory(); !ok || largest <= mem/2 {
		t.Skipf("memory %d (known %v): the shape is not too large here", mem, ok)
	}
	f := &randomFlags{out: out, arch: "llada", typ: "f32", seed: 1}
	f.sizes.Dim, f.sizes.FFN, f.sizes.Vocab = spec.Dim, spec.FFN, spec.Vocab
	if err := f.run(context.Background()); err == nil || !strings.Contains(err.Error(), "token_embd.weight") {
		t.Errorf("run = %v, want an error naming token_embd.weight", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("files left: %v", left)
	}

	f = &randomFlags{out: filepath.Join(dir, "tiny.gguf"), arch: "llada", typ: "f32", seed: 1}
	if err := f.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Errorf("files left: %v, want tiny.gguf alone", left)
	}
	if st, err := os.Stat(f.out); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("tiny.gguf: %v, %v; want mode 0644", st, err)
	}
}

// runWrites runs dfill with args in-process and checks its exit code and
// that its stderr holds want; a command that fails must leave nothing in
// outDir. It reports whether the command succeeded.
func runWrites(t *testing.T, args []string, outDir string, code int, want string) bool {
	t.Helper()
	var stderr strings.Builder
	got := cli.Main(context.Background(), commands(), args, &stderr)
	if got != code || !strings.Contains(stderr.String(), want) {
		t.Fatalf("exit %d, stderr %q; want %d and %q", got, stderr.String(), code, want)
	}
	if got != 0 {
		if left, _ := os.ReadDir(outDir); len(left) != 0 {
			t.Errorf("files left after a failure: %v", left)
		}
	}
	return got == 0
}
