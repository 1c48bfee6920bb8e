package remote

import (
	"context"
	"errors"

	"github.com/dfill/dfill/fim"
)

// llama-server's POST /infill (tools/server/README.md) takes
//
//	{"input_prefix", "input_suffix", "input_extra": [{"filename", "text"}], "n_predict", "temperature", "stop", "stream"}
//
// and any other option of /completion, lays them out with the model's FIM
// tokens (the extra chunks first, after FIM_REP/FIM_SEP when the model
// has them) and answers {"content", "stop_type": "eos" | "limit" | "word",
// ...}; older servers answer "stopped_eos", "stopped_limit" and
// "stopped_word" instead of stop_type. The prompt's context snippets go in
// input_extra as one chunk (their own comment headers name their files;
// filename is optional), the text before the cursor in input_prefix.
type llamaRequest struct {
	Model       string       `json:"model,omitempty"` // router mode picks the model by it
	InputPrefix string       `json:"input_prefix"`
	InputSuffix string       `json:"input_suffix"`
	InputExtra  []llamaChunk `json:"input_extra,omitempty"`
	NPredict    int          `json:"n_predict"`
	Temperature float64      `json:"temperature"`
	Stop        []string     `json:"stop,omitempty"`
	Stream      bool         `json:"stream"`
}

type llamaChunk struct {
	Filename string `json:"filename,omitempty"`
	Text     string `json:"text"`
}

type llamaAnswer struct {
	Content      *string `json:"content"`
	StopType     string  `json:"stop_type"`
	StoppedEOS   bool    `json:"stopped_eos"`
	StoppedWord  bool    `json:"stopped_word"`
	StoppedLimit bool    `json:"stopped_limit"`
}

// llamaCpp fills p through llama-server's /infill.
func (c *Client) llamaCpp(ctx context.Context, p fim.Prompt, opt Options) ([]Candidate, error) {
	ctxLen := min(max(p.ContextLen, 0), len(p.Prefix))
	req := llamaRequest{
		Model:       c.model,
		InputPrefix: p.Prefix[ctxLen:],
		InputSuffix: p.Suffix,
		NPredict:    opt.MaxTokens,
		Temperature: opt.Temperature,
		Stop:        opt.Stop,
	}
	if ctxLen > 0 {
		req.InputExtra = []llamaChunk{{Text: p.Prefix[:ctxLen]}}
	}
	resp, err := c.post(ctx, req, false, maxBody)
	if err != nil {
		return nil, err
	}
	var ans llamaAnswer
	if err := c.decodeJSON(resp, &ans); err != nil {
		return nil, err
	}
	if ans.Content == nil {
		return nil, &badAnswer{url: c.shown, err: errors.New(`no "content"`)}
	}
	reason := ans.StopType
	switch {
	case ans.StopType == "eos" || ans.StopType == "word" || ans.StoppedEOS || ans.StoppedWord:
		reason = "stop"
	case ans.StopType == "limit" || ans.StoppedLimit:
		reason = "length"
	}
	return []Candidate{{Text: *ans.Content, FinishReason: reason}}, nil
}
