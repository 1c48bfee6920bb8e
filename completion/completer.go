package completion

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
)

// ErrNoModel is returned when no Generator is loaded.
var ErrNoModel = errors.New("completion: no model loaded")

// Options are the user-settable knobs of the completion policy.
type Options struct {
	MaxTokens     int           // longest span to fill, in tokens
	ContextTokens int           // prompt budget in tokens (0: from the model's context length)
	Steps         int           // denoising steps (0: generator default)
	Algorithm     string        // confidence score: "confidence", "margin", "entropy"
	Threshold     float64       // confidence threshold (0: use the step schedule)
	Debounce      time.Duration // wait this long for a newer request before generating
	Languages     []string      // LSP language ids to complete (empty: all)
}

// Completer answers completion requests. It is safe for concurrent use.
type Completer struct {
	log *zap.Logger
}

// New returns a Completer that asks gen for candidates (gen may be nil until
// a model is loaded; see SetGenerator).
func New(gen Generator, opts Options, log *zap.Logger) *Completer {
	return &Completer{log: log}
}

// SetGenerator replaces the Generator (nil: no model; Complete returns ErrNoModel).
func (c *Completer) SetGenerator(gen Generator) {}

// SetOptions replaces the options for requests that start after the call.
func (c *Completer) SetOptions(opts Options) {}

// DidChange tells the Completer that a document changed: text is the new
// content and [start,end) the byte range of it the edit wrote. It feeds the
// recent-edits context and invalidates the cache.
func (c *Completer) DidChange(uri, text string, start, end int) {}

// DidClose forgets what the Completer keeps for a document.
func (c *Completer) DidClose(uri string) {}

// Complete returns completions for req. A newer request for the same URI
// makes an older one return ErrSuperseded.
func (c *Completer) Complete(ctx context.Context, req Request) (Result, error) {
	return Result{}, errors.New("completion: not implemented yet")
}
