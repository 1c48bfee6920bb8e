package lsp

import "go.lsp.dev/protocol"

// dfill's own messages, beside the LSP ones of go.lsp.dev/protocol.

// DenoiseParams are the params of the dfill/denoise notification: one
// denoising step of the completion requested at Position, as it happens.
// Text is the whole span at that step, masked positions shown as mask
// characters. The engine denoises a few span lengths together and the
// notifications show the longest; the answer may come from a shorter one.
// So the last notification of a completion has Final set, the answer the
// editor was given as Text (post-processed and validated: empty when
// nothing passed), and History, the text after each step of the span the
// answer came from.
type DenoiseParams struct {
	URI      string            `json:"uri"`
	Position protocol.Position `json:"position"`
	Step     int               `json:"step"`
	Steps    int               `json:"steps"`
	Text     string            `json:"text"`
	Final    bool              `json:"final,omitempty"`
	History  []string          `json:"history,omitempty"`
}

// Stats is the answer to the dfill/stats request: aggregated timings of the
// completion requests served so far. Own time is a request's time in the
// server minus the time spent in the model.
type Stats struct {
	Count      int     `json:"count"`
	Cancelled  int     `json:"cancelled"`
	CacheHits  int     `json:"cacheHits"`
	TotalMs    float64 `json:"totalMs"`
	ModelMs    float64 `json:"modelMs"`
	OwnP50Ms   float64 `json:"ownP50Ms"`
	OwnP95Ms   float64 `json:"ownP95Ms"`
	OwnMaxMs   float64 `json:"ownMaxMs"`
	LastMs     float64 `json:"lastMs"` // the last answered request, end to end in the server
	Model      string  `json:"model,omitempty"`
	ModelError string  `json:"modelError,omitempty"`
	PID        int     `json:"pid"` // the server's process
}

// dfill's methods.
const (
	methodDenoise = "dfill/denoise"
	methodStats   = "dfill/stats"
)
