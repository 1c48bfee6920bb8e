package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dfill/dfill/cmd/dfill/internal/cli"
	"github.com/dfill/dfill/engine"
)

// TestTrainCommand trains a tiny model for a few steps on a small source
// tree, with one held-out package, and checks that the written GGUF loads
// in the engine and fills a span. The corpus has merges for only 299 of the
// 300 tokens asked for: the model takes the vocabulary it got.
func TestTrainCommand(t *testing.T) {
	src := t.TempDir()
	body := strings.Repeat("func f(err error) error {\n\tif err != nil {\n\t\treturn err\n\t}\n\treturn nil\n}\n\n", 20)
	for _, dir := range []string{"a", "b", "strings", "a/testdata"} {
		if err := os.MkdirAll(filepath.Join(src, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, dir, "x.go"), []byte("package "+filepath.Base(dir)+"\n\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	model := filepath.Join(out, "m.gguf")
	var stderr strings.Builder
	code := cli.Main(context.Background(), trainCommand(), []string{
		"--src", src, "--layers", "1", "--dim", "32", "--heads", "2", "--seq", "32", "--batch", "2",
		"--vocab", "300", "--steps", "4", "--eval-every", "2", "--checkpoint-every", "2", "--log-every", "1",
		"--out-dir", out, "--out", model, "--type", "f32",
	}, &stderr)
	if code != 0 {
		t.Fatalf("dfill train: exit status %d\n%s", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, "checkpoint.gguf")); err != nil {
		t.Errorf("no checkpoint: %v", err)
	}
	m, err := engine.Load(model, engine.LoadOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Config.Arch != engine.ArchLLaDA || m.Config.Vocab != 299 || m.Config.Layers != 1 {
		t.Errorf("trained model config %+v", m.Config)
	}
	c, err := m.Infill(context.Background(), engine.Prompt{Prefix: "if err != nil {\n\t", Suffix: "\n}\n"}, engine.Options{Lengths: []int{4}}, nil)
	if err != nil || len(c) != 1 {
		t.Fatalf("infill: %v, %v", c, err)
	}
}
