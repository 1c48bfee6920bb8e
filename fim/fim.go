// Package fim builds infill prompts: it cuts the prefix and suffix around
// the cursor to a token budget on whole lines, adds context snippets from
// other files inside their own budget, and normalises line endings.
// It is pure: no I/O.
package fim

// Prompt is the text around the span the model fills.
type Prompt struct {
	Prefix string // context snippets, then the text before the cursor (LF line endings)
	Suffix string // the text after the cursor (LF line endings)
	CRLF   bool   // the document used CRLF; Restore puts it back in answers
}
