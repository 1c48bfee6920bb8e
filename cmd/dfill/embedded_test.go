package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/dfill/dfill/completion"
	"github.com/dfill/dfill/engine"
	"github.com/dfill/dfill/engine/gguf"
)

// TestEmbeddedModel loads the model compiled into the binary and runs the
// completion pipeline on it: the default of every command must load, and
// whatever it proposes at the body of `if err != nil {` must reach the
// pipeline as text (validation may still drop it: its quality is measured
// by dfill bench infill, not asserted here).
func TestEmbeddedModel(t *testing.T) {
	data, name := embeddedModel()
	m, err := engine.LoadBytes(data, name, engine.LoadOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.Arch != engine.ArchLLaDA || m.Config.ShiftLogits || m.Tokenizer.Mask() != m.Config.MaskID {
		t.Errorf("embedded model: %+v", m.Config)
	}
	m.Close()

	gen, release, err := newGenerator(context.Background(), generatorConfig{Threads: 2}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	src, err := os.ReadFile("testdata/sample.go")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	off, err := offsetOf(text, 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	c := completion.New(gen, completion.Options{SkipValidation: true}, zaptest.NewLogger(t))
	res, err := c.Complete(context.Background(), completion.Request{URI: "file:///sample.go", Path: "sample.go", Text: text, Offset: off, Invoked: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) == 0 || strings.TrimSpace(res.Items[0].Insert) == "" {
		t.Errorf("the embedded model proposed nothing: %+v", res.Items)
	}
}

// TestEmbeddedModelFile checks what the embedded model's file says of
// itself: a pre-tokenizer name llama.cpp knows (it refuses a file with one
// it does not), and the calibration of its answer score (MODEL.md).
func TestEmbeddedModelFile(t *testing.T) {
	data, _ := embeddedModel()
	f, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if pre, _ := f.String("tokenizer.ggml.pre"); pre != "llama-bpe" {
		t.Errorf("tokenizer.ggml.pre = %q, want llama-bpe", pre)
	}
	cal, ok, err := readCalibration(f)
	if err != nil || !ok || cal.Threshold <= 0 {
		t.Errorf("calibration %+v, %v, %v; want one with a threshold", cal, ok, err)
	}
}
