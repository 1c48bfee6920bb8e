// Package completion decides whether and what to complete at a cursor,
// builds the infill prompt (with fim), asks a Generator for candidates,
// post-processes and validates them, and ranks them. It knows nothing of
// the LSP wire protocol nor of the inference engine.
package completion

import (
	"context"
	"time"

	"github.com/dfill/dfill/fim"
)

// Document is an open document other than the one being completed.
type Document struct {
	URI        string
	Path       string
	LanguageID string
	Text       string
}

// Request asks for completions at one position of one document.
type Request struct {
	URI        string
	Path       string // file path when known (used for the language and context headers)
	LanguageID string // LSP language id ("go", "python"); empty means guess from Path
	Text       string // the whole document
	Offset     int    // byte offset of the cursor in Text
	Invoked    bool   // explicitly invoked by the user: several candidates may be returned
	Others     []Document
	OnStep     func(Step) // called with each denoising step's text, or nil
}

// Item is one completion: replace Text[Start:End] with Insert.
type Item struct {
	Insert     string
	Start, End int // byte offsets in Request.Text; Start is the cursor
	Confidence float64
	// Score estimates the probability that the user keeps the item (see
	// Calibration), from Features; items are ranked by it.
	Score    float64
	Features Features
	Steps    int
	Span     int // the Generator's span it comes from (Step.Span)
}

// Timings says where the time of one request went.
type Timings struct {
	Prompt, Generate, Validate, Total time.Duration
	// Wait is the time spent waiting for another request's generation
	// (one at a time runs); the answer may then come from its result.
	Wait time.Duration
}

// Result is the answer to a Request.
type Result struct {
	Items   []Item
	Cached  bool // answered from the cache without calling the Generator
	Model   string
	Span    int // tokens asked of the Generator (0: not called)
	Steps   int // denoising steps of the first candidate
	Timings Timings
}

// Step is one denoising step's view of the span being filled.
type Step struct {
	// Span is which of the Generator's spans (Spans of them, denoised
	// together: lengths to choose from) the step is of; 0 of 1 for a
	// Generator that fills one.
	Span, Spans int
	Step, Steps int
	Text        string
}

// GenerateOptions are the sampler settings passed to a Generator.
type GenerateOptions struct {
	MaxTokens int     // span length in tokens
	Steps     int     // denoising steps (0: the generator's default)
	Algorithm string  // "confidence", "margin", "entropy" (empty: default)
	Threshold float64 // confidence threshold (0: schedule instead)
}

// Candidate is one raw infill proposed by a Generator.
type Candidate struct {
	Text       string
	Confidence float64 // mean probability of the chosen tokens, 0..1
	Signals    Signals // what the Generator read of its quality, if anything
	Steps      int
	Span       int // the span it was denoised in (Step.Span)
}

// Generator fills the middle of a prompt. The native engine and remote
// backends satisfy it (wired in cmd/dfill).
type Generator interface {
	Infill(ctx context.Context, p fim.Prompt, opt GenerateOptions, onStep func(Step)) ([]Candidate, error)
	// CountTokens returns how many model tokens s takes.
	CountTokens(s string) int
	// ContextTokens is the model's context length in tokens.
	ContextTokens() int
	// Name names the model for logs and results.
	Name() string
}

// Calibrated is a Generator whose model carries the Calibration of its
// candidates' scores (a GGUF metadata key, or a catalog entry). The score
// of another Generator's candidates is their mean token probability.
type Calibrated interface {
	Calibration() Calibration
}
