package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"

	"github.com/dfill/dfill/engine"
)

// request is the body of POST /v1/fim/completions and /v1/completions:
// the fields of Mercury's and Codestral's FIM endpoints and of OpenAI's
// legacy completions (which name the text before the cursor `prompt` and
// the text after it `suffix`), plus Mercury's `diffusing`. Fields it does
// not name are ignored, as the APIs it copies ignore them.
type request struct {
	Model         string         `json:"model"`
	Prompt        *promptText    `json:"prompt"`
	Suffix        string         `json:"suffix"`
	MaxTokens     *int           `json:"max_tokens"`
	Temperature   *float64       `json:"temperature"`
	TopP          *float64       `json:"top_p"`
	Stop          stopSequences  `json:"stop"`
	Stream        bool           `json:"stream"`
	StreamOptions *streamOptions `json:"stream_options"`
	// Diffusing streams each denoising step's whole text (Mercury).
	Diffusing bool `json:"diffusing"`
	// Seed (OpenAI) or RandomSeed (Codestral) seeds sampling at a
	// temperature above 0.
	Seed       *uint64 `json:"seed"`
	RandomSeed *uint64 `json:"random_seed"`

	// dfill's own: the sampler (denoising steps, 0: the default for the
	// span; the confidence score, "confidence", "margin" or "entropy"; the
	// confidence threshold, 0: the default), and a language (an LSP
	// language id; one without a grammar gets the bracket-balance check) in
	// which to check the answer's syntax, which adds the "dfill" object to
	// the answer (see extension).
	Steps     *int     `json:"steps"`
	Algorithm string   `json:"algorithm"`
	Threshold *float64 `json:"threshold"`
	Language  string   `json:"language"`

	// Options of OpenAI's legacy completions that change the answer's
	// shape, refused unless they ask for the default.
	N        *int `json:"n"`
	BestOf   *int `json:"best_of"`
	Echo     bool `json:"echo"`
	Logprobs *int `json:"logprobs"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// promptText is a prompt: a string, or (OpenAI's legacy completions) an
// array holding one string.
type promptText string

func (p *promptText) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*p = promptText(s)
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil || len(list) != 1 {
		return badRequest("prompt", "invalid_type", "prompt must be a string (or an array of one string)")
	}
	*p = promptText(list[0])
	return nil
}

// stopSequences is `stop`: a string or an array of strings.
type stopSequences []string

func (s *stopSequences) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = stopSequences{one}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return badRequest("stop", "invalid_type", "stop must be a string or an array of strings")
	}
	*s = list
	return nil
}

// Limits on the stop sequences of one request.
const (
	maxStops    = 16
	maxStopSize = 256 // bytes
)

// readRequest reads and decodes r's body, at most limit bytes. Malformed
// JSON and fields of the wrong type are 400 errors, a body over the limit
// a 413.
func readRequest(w http.ResponseWriter, r *http.Request, limit int64) (request, error) {
	var req request
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return req, &apiError{Status: http.StatusRequestEntityTooLarge, Type: typeInvalid, Code: "request_too_large",
			Message: fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit)}
	case err != nil:
		return req, badRequest("", "invalid_body", "reading the request body: %v", err)
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, decodeError(err)
	}
	return req, nil
}

// decodeError turns a json.Unmarshal error into the 400 answered for it,
// naming the field at fault and never quoting the body.
func decodeError(err error) *apiError {
	var (
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
		ours    *apiError
	)
	switch {
	case errors.As(err, &ours):
		return ours
	case errors.As(err, &syntax):
		return badRequest("", "invalid_json", "request body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return badRequest("", "invalid_json", "request body must be a JSON object")
	case errors.As(err, &typeErr):
		return badRequest(typeErr.Field, "invalid_type", "%s must be of type %s, not %s", typeErr.Field, jsonType(typeErr.Type.Kind().String()), typeErr.Value)
	}
	return badRequest("", "invalid_json", "request body is not valid JSON")
}

// jsonType names a Go kind as JSON's type.
func jsonType(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "integer"
	case strings.HasPrefix(kind, "float"):
		return "number"
	case kind == "bool":
		return "boolean"
	case kind == "slice":
		return "array"
	case kind == "struct", kind == "map":
		return "object"
	}
	return kind
}

// job is a validated request: what to generate and how to answer.
type job struct {
	prompt       engine.Prompt
	opt          engine.Options
	maxTokens    int
	stops        []string
	stream       bool
	includeUsage bool
	diffusing    bool
	language     string // check the answer's syntax in it ("": do not)
}

// validate checks req against the server's limits and model m, and
// returns the job it asks for.
func (s *Server) validate(req request, m Model) (job, error) {
	if req.Model != "" && req.Model != m.Name() {
		return job{}, &apiError{Status: http.StatusNotFound, Type: typeNotFound, Code: "model_not_found", Param: "model",
			Message: fmt.Sprintf("model %q is not served here (GET /v1/models lists the one that is)", req.Model)}
	}
	if req.Prompt == nil {
		return job{}, badRequest("prompt", "missing_field", "prompt is required (the text before the cursor; it may be empty)")
	}
	if err := refuseShapeOptions(req); err != nil {
		return job{}, err
	}
	j := job{
		prompt:       engine.Prompt{Prefix: string(*req.Prompt), Suffix: req.Suffix},
		maxTokens:    s.opt.DefaultMaxTokens,
		stream:       req.Stream,
		includeUsage: req.Stream && req.StreamOptions != nil && req.StreamOptions.IncludeUsage,
		diffusing:    req.Diffusing,
		language:     req.Language,
	}
	limit := min(s.opt.MaxTokens, m.ContextTokens()-1)
	j.maxTokens = min(j.maxTokens, limit)
	if req.MaxTokens != nil {
		j.maxTokens = *req.MaxTokens
	}
	if j.maxTokens < 1 || j.maxTokens > limit {
		return job{}, badRequest("max_tokens", "invalid_value", "max_tokens must be between 1 and %d, not %d", limit, j.maxTokens)
	}
	stops, err := checkStops(req.Stop)
	if err != nil {
		return job{}, err
	}
	j.stops = stops

	if s.opt.EngineOptions != nil {
		j.opt = s.opt.EngineOptions(j.maxTokens)
	}
	j.opt.Lengths, j.opt.Contexts = []int{j.maxTokens}, nil
	if t := req.Temperature; t != nil {
		if *t < 0 || *t > 2 {
			return job{}, badRequest("temperature", "invalid_value", "temperature must be between 0 and 2, not %g", *t)
		}
		j.opt.Temperature = *t
	}
	if p := req.TopP; p != nil {
		if *p <= 0 || *p > 1 {
			return job{}, badRequest("top_p", "invalid_value", "top_p must be above 0 and at most 1, not %g", *p)
		}
		j.opt.TopP = *p
	}
	if err := samplerOptions(req, &j); err != nil {
		return job{}, err
	}
	switch {
	case req.Seed != nil:
		j.opt.Seed = *req.Seed
	case req.RandomSeed != nil:
		j.opt.Seed = *req.RandomSeed
	default:
		j.opt.Seed = rand.Uint64()
	}
	return j, nil
}

// samplerOptions sets the sampler settings req asks for (dfill's
// extension) in j, over the server's defaults.
func samplerOptions(req request, j *job) error {
	if n := req.Steps; n != nil {
		if *n < 0 || *n > j.maxTokens {
			return badRequest("steps", "invalid_value", "steps must be between 0 (the default) and max_tokens (%d), not %d", j.maxTokens, *n)
		}
		if *n > 0 {
			j.opt.Steps = *n
			// Blocks split the steps among them: at least one per block.
			if bs := j.opt.BlockSize; bs > 0 && (j.maxTokens+bs-1)/bs > *n {
				j.opt.BlockSize = 0
			}
		}
	}
	if req.Algorithm != "" {
		score, err := engine.ParseScore(req.Algorithm)
		if err != nil {
			return badRequest("algorithm", "invalid_value", "algorithm must be confidence, margin or entropy, not %q", req.Algorithm)
		}
		j.opt.Score = score
	}
	if t := req.Threshold; t != nil {
		if *t < 0 || *t > 1 {
			return badRequest("threshold", "invalid_value", "threshold must be between 0 (the default) and 1, not %g", *t)
		}
		j.opt.Threshold = *t
	}
	if len(req.Language) > 64 {
		return badRequest("language", "invalid_value", "language must be an LSP language id (\"go\", \"python\", …)")
	}
	return nil
}

// refuseShapeOptions answers 400 to options that would change the
// answer's shape in ways the server does not produce.
func refuseShapeOptions(req request) error {
	switch {
	case req.N != nil && *req.N != 1:
		return badRequest("n", "unsupported", "n must be 1: one completion per request")
	case req.BestOf != nil && *req.BestOf != 1:
		return badRequest("best_of", "unsupported", "best_of must be 1")
	case req.Echo:
		return badRequest("echo", "unsupported", "echo is not supported")
	case req.Logprobs != nil && *req.Logprobs != 0:
		return badRequest("logprobs", "unsupported", "logprobs are not supported")
	}
	return nil
}

// checkStops returns the non-empty stop sequences, or a 400 when there are
// too many or one is too long.
func checkStops(stops []string) ([]string, error) {
	var out []string
	for _, s := range stops {
		if len(s) > maxStopSize {
			return nil, badRequest("stop", "invalid_value", "a stop sequence is longer than %d bytes", maxStopSize)
		}
		if s != "" {
			out = append(out, s)
		}
	}
	if len(out) > maxStops {
		return nil, badRequest("stop", "invalid_value", "at most %d stop sequences, not %d", maxStops, len(out))
	}
	return out, nil
}
