package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// completion is the answer to a completion request, and each chunk of a
// streamed one: OpenAI's legacy completion object, which Mercury's and
// Codestral's FIM endpoints share.
type completion struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"` // "text_completion"
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []choice `json:"choices"`
	// Usage is set on a whole answer; a stream sets it only on a last
	// chunk with no choices, when the request asks for it
	// (stream_options.include_usage), as OpenAI streams it.
	Usage *usage `json:"usage,omitempty"`
	// Dfill is dfill's addition to a whole answer, or to a stream's
	// chunk with the finish reason, when the request names a language.
	Dfill *extension `json:"dfill,omitempty"`
}

// extension is what dfill adds to an answer: the syntax check of the
// answer where it goes, and what the playground shows of the fill.
type extension struct {
	// Validation is "accepted" (the answer adds no syntax error between
	// prompt and suffix), "trimmed" (its first lines do not: Validated
	// holds them) or "rejected" (no line of it passes).
	Validation string `json:"validation"`
	Validated  string `json:"validated"`
	Steps      int    `json:"steps"` // denoising steps taken
	// Tokens are the answer's tokens as text, in order: a left-to-right
	// model would write one per step.
	Tokens []string `json:"tokens"`
}

// choice is one completion. In a stream, Text is the new text after the
// previous chunk's, or with `diffusing` the whole text of the current
// denoising step; FinishReason is null until the last chunk.
type choice struct {
	Index        int     `json:"index"`
	Text         string  `json:"text"`
	Logprobs     any     `json:"logprobs"` // always null: not supported
	FinishReason *string `json:"finish_reason"`
}

// usage counts the tokens of one request.
type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// modelList is GET /v1/models.
type modelList struct {
	Object string      `json:"object"` // "list"
	Data   []modelInfo `json:"data"`
}

type modelInfo struct {
	ID            string `json:"id"`
	Object        string `json:"object"` // "model"
	Created       int64  `json:"created"`
	OwnedBy       string `json:"owned_by"`
	ContextLength int    `json:"context_length"`
}

// health is GET /healthz.
type health struct {
	Status string `json:"status"` // "ok" or "loading"
	Model  string `json:"model,omitempty"`
}

// apiError is an error answered to the client, in OpenAI's error envelope
// {"error": {"message", "type", "param", "code"}}, which Mercury's API
// uses too.
type apiError struct {
	Status     int    `json:"-"`
	RetryAfter int    `json:"-"` // seconds, for 429 and 503; 0: no header
	Message    string `json:"message"`
	Type       string `json:"type"`
	Param      any    `json:"param"` // the request field at fault, or null
	Code       string `json:"code"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// The error types of the envelope.
const (
	typeInvalid     = "invalid_request_error"
	typeAuth        = "authentication_error"
	typeNotFound    = "not_found_error"
	typeRateLimit   = "rate_limit_error"
	typeTimeout     = "timeout_error"
	typeUnavailable = "service_unavailable_error"
	typeServer      = "server_error"
)

// badRequest returns a 400 error about the request field param ("" for
// none).
func badRequest(param, code, format string, a ...any) *apiError {
	e := &apiError{Status: http.StatusBadRequest, Type: typeInvalid, Code: code, Message: fmt.Sprintf(format, a...)}
	if param != "" {
		e.Param = param
	}
	return e
}

// asAPIError returns err as the error answered for it: itself when it is
// one, an internal error (whose details stay in the log) otherwise.
func asAPIError(err error) *apiError {
	if e, ok := errors.AsType[*apiError](err); ok {
		return e
	}
	return &apiError{Status: http.StatusInternalServerError, Type: typeServer, Code: "internal_error", Message: "internal error"}
}

// envelope is the body of an error answer, and of an error event in a
// stream.
type envelope struct {
	Error *apiError `json:"error"`
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) // a client gone mid-answer is no error of ours
}

// writeError writes e in the error envelope.
func writeError(w http.ResponseWriter, e *apiError) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dfill"`)
	}
	writeJSON(w, e.Status, envelope{e})
}
