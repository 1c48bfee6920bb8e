package remote

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/dfill/dfill/fim"
)

// The FIM protocols (mercury, openai-fim, dfill) post to /v1/fim/completions
// the request Mercury's API and Mistral's Codestral share:
//
//	{"model", "prompt", "suffix", "max_tokens", "temperature", "stop", "stream"}
//
// and read {"choices": [{"index", "text", "finish_reason"}], "usage"}, or,
// with "stream": true, Server-Sent Events carrying the same object per
// event, ending with "data: [DONE]". Mercury (and dfill, which serves its
// API) also take "diffusing": true with "stream": true: each event's text
// is then the whole text at one denoising step, replacing the last, and
// Mercury marks progress in "diffusion_meta": {"diffusion_progress": 0..1}.
// Mistral's API refuses fields it does not know, so openai-fim gets nothing
// beyond the common ones.
type fimRequest struct {
	Model       string   `json:"model,omitempty"`
	Prompt      string   `json:"prompt"`
	Suffix      string   `json:"suffix"`
	MaxTokens   int      `json:"max_tokens"`
	Temperature float64  `json:"temperature"`
	Stop        []string `json:"stop,omitempty"`
	Stream      bool     `json:"stream"`
	Diffusing   bool     `json:"diffusing,omitempty"`

	// dfill's sampler settings (the dfill protocol only).
	Steps     int     `json:"steps,omitempty"`
	Algorithm string  `json:"algorithm,omitempty"`
	Threshold float64 `json:"threshold,omitempty"`
}

// fimAnswer is an answer, or one streamed event, of a FIM endpoint.
type fimAnswer struct {
	Choices []fimChoice `json:"choices"`
	// Error is set on an event that reports a failure mid-stream.
	Error         json.RawMessage `json:"error"`
	DiffusionMeta *struct {
		Progress *float64 `json:"diffusion_progress"`
	} `json:"diffusion_meta"`
}

type fimChoice struct {
	Index        int     `json:"index"`
	Text         *string `json:"text"`
	FinishReason *string `json:"finish_reason"`
}

// fim fills p through a FIM endpoint. With onStep it streams: diffusion
// steps from mercury and dfill, tokens from openai-fim.
func (c *Client) fim(ctx context.Context, p fim.Prompt, opt Options, onStep func(Step)) ([]Candidate, error) {
	stream := onStep != nil
	req := fimRequest{
		Model:       c.model,
		Prompt:      p.Prefix,
		Suffix:      p.Suffix,
		MaxTokens:   opt.MaxTokens,
		Temperature: opt.Temperature,
		Stop:        opt.Stop,
		Stream:      stream,
		Diffusing:   stream && c.protocol != OpenAIFIM,
	}
	if c.protocol == Dfill {
		req.Steps, req.Algorithm, req.Threshold = opt.Steps, opt.Algorithm, opt.Threshold
	}
	limit := int64(maxBody)
	if stream {
		limit = maxStream
	}
	resp, err := c.post(ctx, req, stream, limit)
	if err != nil {
		return nil, err
	}
	if isEventStream(resp) {
		defer resp.Body.Close()
		return c.fimStream(resp.Body, req.Diffusing, onStep)
	}
	var ans fimAnswer
	if err := c.decodeJSON(resp, &ans); err != nil {
		return nil, err
	}
	if len(ans.Choices) == 0 {
		return nil, &badAnswer{url: c.shown, err: errors.New("no choices")}
	}
	cands := make([]Candidate, 0, len(ans.Choices))
	for _, ch := range ans.Choices {
		cands = append(cands, Candidate{Text: deref(ch.Text), FinishReason: deref(ch.FinishReason), Index: ch.Index})
	}
	slices.SortStableFunc(cands, func(a, b Candidate) int { return cmp.Compare(a.Index, b.Index) })
	return cands, nil
}

// fimStream reads a streamed FIM answer. In a diffusion each event's text
// replaces the candidate's, and each event before the closing one (the one
// with a finish reason) is a step; otherwise each event's text is appended
// and is a step. onStep (may be nil) sees the whole text after each step.
func (c *Client) fimStream(body io.Reader, diffusing bool, onStep func(Step)) ([]Candidate, error) {
	byIndex := map[int]*Candidate{}
	finished := false
	sawDone, err := readEvents(body, func(data []byte) error {
		var ev fimAnswer
		if err := json.Unmarshal(data, &ev); err != nil {
			return &badAnswer{url: c.shown, err: fmt.Errorf("event %.80q: %w", data, err)}
		}
		if len(ev.Error) > 0 && string(ev.Error) != "null" {
			return &streamError{url: c.shown, msg: errorMessage(data)}
		}
		last := ev.DiffusionMeta != nil && ev.DiffusionMeta.Progress != nil && *ev.DiffusionMeta.Progress >= 1
		for _, ch := range ev.Choices {
			cand := byIndex[ch.Index]
			if cand == nil {
				cand = &Candidate{Index: ch.Index}
				byIndex[ch.Index] = cand
			}
			if ch.FinishReason != nil && *ch.FinishReason != "" {
				cand.FinishReason, finished = *ch.FinishReason, true
			}
			closing := ch.FinishReason != nil && *ch.FinishReason != ""
			switch {
			case ch.Text == nil:
				continue
			case diffusing && closing:
				// The closing event of a diffusion is no step: dfill's
				// carries the answer (denoised, cleaned of end tokens);
				// Mercury's may carry no text, and the last step's stands.
				if *ch.Text != "" || c.protocol == Dfill {
					cand.Text = *ch.Text
				}
				continue
			case diffusing:
				cand.Text = *ch.Text
			case *ch.Text == "":
				continue
			default:
				cand.Text += *ch.Text
			}
			cand.Steps++
			if onStep != nil {
				st := Step{Index: ch.Index, Step: cand.Steps, Text: cand.Text}
				if last || closing {
					st.Steps = cand.Steps
				}
				onStep(st)
			}
		}
		return nil
	})
	if err != nil {
		return nil, c.readError(err)
	}
	if !sawDone && !finished {
		return nil, &badAnswer{url: c.shown, err: errors.New("the stream ended before [DONE]")}
	}
	if len(byIndex) == 0 {
		return nil, &badAnswer{url: c.shown, err: errors.New("no choices")}
	}
	cands := make([]Candidate, 0, len(byIndex))
	for _, cand := range byIndex {
		cands = append(cands, *cand)
	}
	slices.SortFunc(cands, func(a, b Candidate) int { return cmp.Compare(a.Index, b.Index) })
	return cands, nil
}

// deref returns *s, or "" for nil.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
