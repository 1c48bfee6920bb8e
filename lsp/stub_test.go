package lsp

import (
	"context"
	"errors"
	"sync"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/dfill/dfill/completion"
	"github.com/dfill/dfill/fim"
)

// stubCompleter stands in for completion.Completer while that package's
// bodies are placeholders (completion.Complete returning "not implemented"):
// it asks the generator with the plain prefix and suffix and inserts the
// first candidate at the cursor. testCompleter uses the real Completer as
// soon as it answers.
type stubCompleter struct {
	mu  sync.Mutex
	gen completion.Generator
}

func (c *stubCompleter) SetGenerator(gen completion.Generator) {
	c.mu.Lock()
	c.gen = gen
	c.mu.Unlock()
}
func (c *stubCompleter) SetOptions(completion.Options)      {}
func (c *stubCompleter) DidChange(string, string, int, int) {}
func (c *stubCompleter) DidClose(string)                    {}
func (c *stubCompleter) Complete(ctx context.Context, req completion.Request) (completion.Result, error) {
	c.mu.Lock()
	gen := c.gen
	c.mu.Unlock()
	if gen == nil {
		return completion.Result{}, completion.ErrNoModel
	}
	p := fim.Prompt{Prefix: req.Text[:req.Offset], Suffix: req.Text[req.Offset:], Offset: req.Offset}
	cands, err := gen.Infill(ctx, p, completion.GenerateOptions{Candidates: 1}, req.OnStep)
	if err != nil {
		return completion.Result{}, err
	}
	var res completion.Result
	for _, cand := range cands {
		res.Items = append(res.Items, completion.Item{Insert: cand.Text, Start: req.Offset, End: req.Offset, Confidence: cand.Confidence, Steps: cand.Steps})
	}
	return res, nil
}

var (
	probeOnce sync.Once
	realReady bool
)

// testCompleter returns nil (the server then builds the real
// completion.Completer) when the real one answers a trivial request, and a
// stubCompleter while it is still a placeholder.
func testCompleter(t *testing.T) completer {
	probeOnce.Do(func() {
		c := completion.New(&fakeGen{text: "x"}, completion.Options{}, zaptest.NewLogger(t))
		_, err := c.Complete(context.Background(), completion.Request{URI: "file:///p.go", Text: "package p\n\n", Offset: 11, LanguageID: "go"})
		realReady = err == nil || errors.Is(err, completion.ErrNoModel)
	})
	if realReady {
		return nil
	}
	t.Log("completion.Completer is a placeholder: using the stub completer")
	return &stubCompleter{}
}
