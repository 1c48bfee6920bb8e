package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dfill/dfill/fim"
)

// SGLang serves diffusion models (LLaDA 2.x, SDAR, Dream, diffusion-gemma)
// through its native POST /generate:
//
//	{"text", "sampling_params": {"max_new_tokens", "temperature", "stop"}, "stream"}
//
// answered with {"text", "meta_info": {"finish_reason": {"type": "stop" |
// "length" | "abort", "message"}, "prompt_tokens", "completion_tokens"}}.
// Its dLLM scheduler appends the masked span itself, max_new_tokens long in
// blocks of the model's block size, after the prompt, and denoises only
// there (the LLaDA 2 and SDAR algorithms attend to earlier blocks, never to
// later ones; Dream's fills the positions after the prompt): so the prompt
// is the prefix (context snippets, then the text before the cursor), and
// the suffix has no place in it. The pipeline's post-processing cuts what
// the model writes past the cursor's line or over the suffix. The
// algorithm and its threshold and block size are the server's launch
// settings (--dllm-algorithm, --dllm-algorithm-config); /generate takes
// none per request.
type sglangRequest struct {
	Text           string         `json:"text"`
	SamplingParams sglangSampling `json:"sampling_params"`
	Stream         bool           `json:"stream"`
}

type sglangSampling struct {
	MaxNewTokens int      `json:"max_new_tokens"`
	Temperature  float64  `json:"temperature"`
	Stop         []string `json:"stop,omitempty"`
}

type sglangAnswer struct {
	Text     *string `json:"text"`
	MetaInfo struct {
		// FinishReason is an object {"type", "message", ...}, or null
		// while unfinished; some versions write a bare string.
		FinishReason json.RawMessage `json:"finish_reason"`
	} `json:"meta_info"`
}

// sglang fills p through SGLang's /generate.
func (c *Client) sglang(ctx context.Context, p fim.Prompt, opt Options) ([]Candidate, error) {
	req := sglangRequest{
		Text:           p.Prefix,
		SamplingParams: sglangSampling{MaxNewTokens: opt.MaxTokens, Temperature: opt.Temperature, Stop: opt.Stop},
	}
	resp, err := c.post(ctx, req, false, maxBody)
	if err != nil {
		return nil, err
	}
	var ans sglangAnswer
	if err := c.decodeJSON(resp, &ans); err != nil {
		return nil, err
	}
	if ans.Text == nil {
		return nil, &badAnswer{url: c.shown, err: errors.New(`no "text"`)}
	}
	reason, msg := sglangFinish(ans.MetaInfo.FinishReason)
	if reason == "abort" {
		// SGLang answers 200 for a request it aborted (a prompt longer
		// than the context, a server shutting down).
		return nil, &streamError{url: c.shown, msg: fmt.Sprintf("the request was aborted: %s", cmpOr(msg, "no reason given"))}
	}
	return []Candidate{{Text: *ans.Text, FinishReason: reason}}, nil
}

// sglangFinish reads meta_info.finish_reason: its type and message.
func sglangFinish(raw json.RawMessage) (reason, msg string) {
	var obj struct {
		Type    string          `json:"type"`
		Message json.RawMessage `json:"message"`
	}
	if json.Unmarshal(raw, &obj) == nil && obj.Type != "" {
		if len(obj.Message) > 0 && string(obj.Message) != "null" {
			msg = clip(jsonText(obj.Message), maxMessage)
		}
		return obj.Type, msg
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, ""
	}
	return "", ""
}
