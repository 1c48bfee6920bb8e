package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dfill/dfill/fim"
)

// The request and answer shapes below, field by field, and where they come
// from:
//   - mercury, openai-fim: POST /v1/fim/completions with model, prompt,
//     suffix, max_tokens, temperature, stop, stream; answer object
//     "text_completion" with choices[].{index,text,finish_reason,logprobs}
//     and usage.{prompt_tokens,completion_tokens,total_tokens}: Inception's
//     Mercury API as LiteLLM's tests and Inception's examples call it
//     (api.inceptionlabs.ai/v1/fim/completions, Authorization: Bearer,
//     choices[0].text), and Mistral's FIM API (the same fields).
//   - diffusing: `"diffusing": true` with `"stream": true`; each SSE event
//     carries the whole text so far, which replaces the last (Inception's
//     documentation of diffusion streaming, and clients written against
//     the live API), with diffusion_meta.{diffusion_content,
//     diffusion_progress}; the stream ends with "data: [DONE]".
//   - sglang: POST /generate with text, sampling_params.{max_new_tokens,
//     temperature}, stream (docs/supported_models/.../diffusion_language_
//     models.md); answer text and meta_info.{id, finish_reason.{type},
//     prompt_tokens, completion_tokens, cached_tokens} (SGLang's native
//     API and io_struct.py).
//   - llamacpp: POST /infill with input_prefix, input_suffix, input_extra
//     [{filename, text}] and /completion's options (n_predict,
//     temperature, stop, stream); answer content, stop_type
//     (eos|limit|word), tokens_predicted (tools/server/README.md); errors
//     {"error": {"code", "message", "type"}}.

const testKey = "sk-test-3f9a1c0de4b7"

// captured is one request a fake server received.
type captured struct {
	Method, Path, Auth, ContentType, Accept string
	Body                                    map[string]any
}

// fakeServer answers every request with answer and records it.
func fakeServer(t *testing.T, answer http.HandlerFunc) (*httptest.Server, func() []captured) {
	t.Helper()
	var mu sync.Mutex
	var reqs []captured
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		c := captured{Method: r.Method, Path: r.URL.Path, Auth: r.Header.Get("Authorization"),
			ContentType: r.Header.Get("Content-Type"), Accept: r.Header.Get("Accept")}
		if err := json.Unmarshal(data, &c.Body); err != nil {
			t.Errorf("request body %q is not a JSON object: %v", data, err)
		}
		mu.Lock()
		reqs = append(reqs, c)
		mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []captured {
		mu.Lock()
		defer mu.Unlock()
		return append([]captured(nil), reqs...)
	}
}

// jsonAnswer answers with status and body as JSON.
func jsonAnswer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// sseAnswer streams events, each written and flushed on its own.
func sseAnswer(events ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, ev := range events {
			io.WriteString(w, ev)
			w.(http.Flusher).Flush()
		}
	}
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return c
}

// prompt is a prompt with a context snippet before the text before the
// cursor.
var prompt = fim.Prompt{
	Prefix:     "// util.go\nfunc helper() {}\nfunc f() error {\n\tif err != nil {\n\t\t",
	Suffix:     "\n\t}\n\treturn nil\n}\n",
	ContextLen: len("// util.go\nfunc helper() {}\n"),
	Path:       "main.go",
	LanguageID: "go",
}

func TestRequests(t *testing.T) {
	const fimAnswer = `{"id":"cmpl-8f2","object":"text_completion","created":1750000000,"model":"mercury-coder",` +
		`"choices":[{"index":0,"text":"return err","finish_reason":"stop","logprobs":null}],` +
		`"usage":{"prompt_tokens":31,"completion_tokens":3,"total_tokens":34}}`
	tests := []struct {
		name     string
		cfg      Config
		opt      Options
		answer   string
		path     string
		body     map[string]any
		want     []Candidate
		wantAuth bool
	}{
		{
			name:   "mercury",
			cfg:    Config{Protocol: Mercury, Model: "mercury-coder", APIKeyEnv: "DFILL_TEST_KEY"},
			opt:    Options{MaxTokens: 24, Steps: 8, Algorithm: "margin", Threshold: 0.9},
			answer: fimAnswer,
			path:   "/v1/fim/completions",
			body: map[string]any{"model": "mercury-coder", "prompt": prompt.Prefix, "suffix": prompt.Suffix,
				"max_tokens": 24.0, "temperature": 0.0, "stream": false},
			want:     []Candidate{{Text: "return err", FinishReason: "stop"}},
			wantAuth: true,
		},
		{
			name:   "openai-fim sends nothing beyond the common fields",
			cfg:    Config{Protocol: OpenAIFIM, Model: "codestral-latest", APIKeyEnv: "DFILL_TEST_KEY"},
			opt:    Options{MaxTokens: 16, Stop: []string{"\n\n"}, Steps: 4, Threshold: 0.5},
			answer: strings.ReplaceAll(fimAnswer, `"finish_reason":"stop"`, `"finish_reason":"length"`),
			path:   "/v1/fim/completions",
			body: map[string]any{"model": "codestral-latest", "prompt": prompt.Prefix, "suffix": prompt.Suffix,
				"max_tokens": 16.0, "temperature": 0.0, "stop": []any{"\n\n"}, "stream": false},
			want:     []Candidate{{Text: "return err", FinishReason: "length"}},
			wantAuth: true,
		},
		{
			name: "dfill takes the sampler settings, and no model means the server's",
			cfg:  Config{Protocol: Dfill},
			opt:  Options{Steps: 6, Algorithm: "entropy", Threshold: 0.8},
			answer: `{"id":"cmpl-1","object":"text_completion","model":"dfill-go","choices":[` +
				`{"index":1,"text":"return fmt.Errorf(\"f: %w\", err)","finish_reason":"stop"},` +
				`{"index":0,"text":"return err","finish_reason":"stop"}],"usage":{"prompt_tokens":40,"completion_tokens":12,"total_tokens":52}}`,
			path: "/v1/fim/completions",
			body: map[string]any{"prompt": prompt.Prefix, "suffix": prompt.Suffix, "max_tokens": 32.0, "temperature": 0.0,
				"stream": false, "steps": 6.0, "algorithm": "entropy", "threshold": 0.8},
			want: []Candidate{{Text: "return err", FinishReason: "stop"}, {Text: "return fmt.Errorf(\"f: %w\", err)", FinishReason: "stop", Index: 1}},
		},
		{
			name: "sglang: the prefix as the prompt, the span appended by the server",
			cfg:  Config{Protocol: SGLang, APIKeyEnv: "DFILL_TEST_KEY"},
			opt:  Options{MaxTokens: 64, Steps: 8, Algorithm: "margin"},
			answer: `{"text":"return err","output_ids":[693,1848],"meta_info":{"id":"9b1c","finish_reason":{"type":"stop","matched":156892},` +
				`"prompt_tokens":31,"completion_tokens":2,"cached_tokens":0,"e2e_latency":0.08}}`,
			path:     "/generate",
			body:     map[string]any{"text": prompt.Prefix, "sampling_params": map[string]any{"max_new_tokens": 64.0, "temperature": 0.0}, "stream": false},
			want:     []Candidate{{Text: "return err", FinishReason: "stop"}},
			wantAuth: true,
		},
		{
			name: "llamacpp: the context snippets in input_extra",
			cfg:  Config{Protocol: LlamaCpp},
			opt:  Options{MaxTokens: 20, Temperature: 0.2},
			answer: `{"index":0,"content":"return err","tokens":[],"id_slot":0,"stop":true,"model":"qwen2.5-coder",` +
				`"tokens_predicted":3,"tokens_evaluated":40,"stop_type":"limit","stopping_word":"","tokens_cached":39,"truncated":false}`,
			path: "/infill",
			body: map[string]any{
				"input_prefix": prompt.Prefix[prompt.ContextLen:], "input_suffix": prompt.Suffix,
				"input_extra": []any{map[string]any{"text": prompt.Prefix[:prompt.ContextLen]}},
				"n_predict":   20.0, "temperature": 0.2, "stream": false,
			},
			want: []Candidate{{Text: "return err", FinishReason: "length"}},
		},
		{
			name:   "llamacpp: an older server's stopped_eos",
			cfg:    Config{Protocol: LlamaCpp, Model: "coder"},
			answer: `{"content":"return err","stopped_eos":true,"stopped_limit":false,"stopped_word":false}`,
			path:   "/infill",
			body: map[string]any{
				"model": "coder", "input_prefix": prompt.Prefix[prompt.ContextLen:], "input_suffix": prompt.Suffix,
				"input_extra": []any{map[string]any{"text": prompt.Prefix[:prompt.ContextLen]}},
				"n_predict":   32.0, "temperature": 0.0, "stream": false,
			},
			want: []Candidate{{Text: "return err", FinishReason: "stop"}},
		},
	}
	t.Setenv("DFILL_TEST_KEY", testKey)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, reqs := fakeServer(t, jsonAnswer(http.StatusOK, tt.answer))
			tt.cfg.URL = srv.URL
			c := newClient(t, tt.cfg)
			got, err := c.Infill(context.Background(), prompt, tt.opt, nil)
			if err != nil {
				t.Fatalf("Infill: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("candidates %+v, want %+v", got, tt.want)
			}
			r := reqs()
			if len(r) != 1 {
				t.Fatalf("%d requests, want 1", len(r))
			}
			if r[0].Method != http.MethodPost || r[0].Path != tt.path || r[0].ContentType != "application/json" || r[0].Accept != "application/json" {
				t.Errorf("request %s %s (Content-Type %q, Accept %q), want POST %s as JSON", r[0].Method, r[0].Path, r[0].ContentType, r[0].Accept, tt.path)
			}
			if !reflect.DeepEqual(r[0].Body, tt.body) {
				t.Errorf("body\n%v\nwant\n%v", r[0].Body, tt.body)
			}
			wantAuth := ""
			if tt.wantAuth {
				wantAuth = "Bearer " + testKey
			}
			if r[0].Auth != wantAuth {
				t.Errorf("Authorization %q, want %q", r[0].Auth, wantAuth)
			}
		})
	}
}

func TestStreamedSteps(t *testing.T) {
	diffusing := []string{
		": keep-alive\n\n",
		`data: {"id":"cmpl-d1","object":"text_completion","model":"mercury-coder","choices":[{"index":0,"text":"re░░░ e░░","finish_reason":null}],"diffusion_meta":{"diffusion_content":true,"diffusion_progress":0.0}}` + "\n\n",
		`data: {"id":"cmpl-d1","object":"text_completion","model":"mercury-coder","choices":[{"index":0,"text":"return e░r","finish_reason":null}],"diffusion_meta":{"diffusion_content":true,"diffusion_progress":0.5}}` + "\r\n\r\n",
		`data: {"id":"cmpl-d1","object":"text_completion","model":"mercury-coder","choices":[{"index":0,"text":"return err","finish_reason":null}],"diffusion_meta":{"diffusion_content":true,"diffusion_progress":1.0}}` + "\n\n",
		`data: {"id":"cmpl-d1","object":"text_completion","model":"mercury-coder","choices":[{"index":0,"text":"","finish_reason":"stop"}]}` + "\n\n",
		`data: {"id":"cmpl-d1","object":"text_completion","model":"mercury-coder","choices":[],"usage":{"prompt_tokens":31,"completion_tokens":3,"total_tokens":34}}` + "\n\n",
		"data: [DONE]\n\n",
	}
	// dfill http's diffusing stream (api/complete.go): each step's whole
	// span, masks shown, then a closing chunk with the answer.
	dfillSteps := []string{
		`data: {"id":"cmpl-7","object":"text_completion","created":1750000000,"model":"dfill-go","choices":[{"index":0,"text":"░░░░░ ░░r","logprobs":null,"finish_reason":null}]}` + "\n\n",
		`data: {"id":"cmpl-7","object":"text_completion","created":1750000000,"model":"dfill-go","choices":[{"index":0,"text":"return err░","logprobs":null,"finish_reason":null}]}` + "\n\n",
		`data: {"id":"cmpl-7","object":"text_completion","created":1750000000,"model":"dfill-go","choices":[{"index":0,"text":"return err","logprobs":null,"finish_reason":"stop"}]}` + "\n\n",
		"data: [DONE]\n\n",
	}
	tokens := []string{
		`data: {"id":"c1","object":"text_completion","choices":[{"index":0,"text":"return","finish_reason":null}]}` + "\n\n",
		`data: {"id":"c1","object":"text_completion","choices":[{"index":0,"text":" err","finish_reason":null}]}` + "\n\n",
		`data: {"id":"c1","object":"text_completion","choices":[{"index":0,"text":"","finish_reason":"stop"}]}` + "\n\n",
		"data: [DONE]\n\n",
	}
	tests := []struct {
		name      string
		cfg       Config
		events    []string
		diffusing bool
		steps     []Step
		want      []Candidate
	}{
		{
			name:      "mercury streams each denoising step's whole text",
			cfg:       Config{Protocol: Mercury, Model: "mercury-coder"},
			events:    diffusing,
			diffusing: true,
			steps:     []Step{{Step: 1, Text: "re░░░ e░░"}, {Step: 2, Text: "return e░r"}, {Step: 3, Steps: 3, Text: "return err"}},
			want:      []Candidate{{Text: "return err", FinishReason: "stop", Steps: 3}},
		},
		{
			name:      "dfill streams them, and closes with the answer",
			cfg:       Config{Protocol: Dfill},
			events:    dfillSteps,
			diffusing: true,
			steps:     []Step{{Step: 1, Text: "░░░░░ ░░r"}, {Step: 2, Text: "return err░"}},
			want:      []Candidate{{Text: "return err", FinishReason: "stop", Steps: 2}},
		},
		{
			name:   "openai-fim streams tokens, appended",
			cfg:    Config{Protocol: OpenAIFIM, Model: "codestral-latest"},
			events: tokens,
			steps:  []Step{{Step: 1, Text: "return"}, {Step: 2, Text: "return err"}},
			want:   []Candidate{{Text: "return err", FinishReason: "stop", Steps: 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, reqs := fakeServer(t, sseAnswer(tt.events...))
			tt.cfg.URL = srv.URL
			c := newClient(t, tt.cfg)
			var steps []Step
			got, err := c.Infill(context.Background(), prompt, Options{}, func(s Step) { steps = append(steps, s) })
			if err != nil {
				t.Fatalf("Infill: %v", err)
			}
			if !reflect.DeepEqual(steps, tt.steps) {
				t.Errorf("steps %+v, want %+v", steps, tt.steps)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("candidates %+v, want %+v", got, tt.want)
			}
			r := reqs()[0]
			if r.Body["stream"] != true || r.Accept != "text/event-stream" {
				t.Errorf("stream %v, Accept %q: want a stream", r.Body["stream"], r.Accept)
			}
			if d, ok := r.Body["diffusing"]; tt.diffusing != (ok && d == true) {
				t.Errorf("diffusing %v (sent: %v), want %v", d, ok, tt.diffusing)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	big := `{"choices":[{"index":0,"text":"` + strings.Repeat("x", maxBody) + `"}]}`
	tests := []struct {
		name    string
		cfg     Config
		steps   bool // ask for steps (a stream)
		answer  http.HandlerFunc
		status  int // the *Error's status; 0: not an *Error
		retry   time.Duration
		contain []string // in the error's message
	}{
		{
			name:    "401 with OpenAI's error body",
			answer:  jsonAnswer(401, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`),
			status:  401,
			contain: []string{"401 Unauthorized", "Incorrect API key provided"},
		},
		{
			name: "429 with Retry-After",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "7")
				jsonAnswer(429, `{"error":{"message":"Rate limit reached for requests","type":"rate_limit_error"}}`)(w, r)
			},
			status:  429,
			retry:   7 * time.Second,
			contain: []string{"429 Too Many Requests", "Rate limit reached", "retry after 7s"},
		},
		{
			name:    "500 with a JSON error body",
			answer:  jsonAnswer(500, `{"error":{"code":500,"message":"CUDA error: out of memory","type":"server_error"}}`),
			status:  500,
			contain: []string{"500 Internal Server Error", "CUDA error: out of memory"},
		},
		{
			name:    "503 with SGLang's error body",
			cfg:     Config{Protocol: SGLang},
			answer:  jsonAnswer(503, `{"object":"error","message":"The server is shutting down","type":"ServiceUnavailable","param":null,"code":503}`),
			status:  503,
			contain: []string{"503 Service Unavailable", "The server is shutting down"},
		},
		{
			name:    "422 with Mistral's validation error",
			cfg:     Config{Protocol: OpenAIFIM, Model: "codestral-latest"},
			answer:  jsonAnswer(422, `{"object":"error","message":{"detail":[{"type":"extra_forbidden","loc":["body","diffusing"],"msg":"Extra inputs are not permitted"}]},"type":"invalid_request_error"}`),
			status:  422,
			contain: []string{"422 Unprocessable Entity", "Extra inputs are not permitted"},
		},
		{
			name:    "404 in plain text",
			answer:  func(w http.ResponseWriter, r *http.Request) { http.Error(w, "404 page not found", 404) },
			status:  404,
			contain: []string{"404 Not Found: 404 page not found"},
		},
		{
			name:    "malformed JSON",
			answer:  jsonAnswer(200, `{"choices":[{"index":0,"text":"return err"`),
			contain: []string{"unreadable answer", "unexpected end of JSON input"},
		},
		{
			name:    "no choices",
			answer:  jsonAnswer(200, `{"id":"c","object":"text_completion","choices":[]}`),
			contain: []string{"unreadable answer: no choices"},
		},
		{
			name:    "a body over the limit",
			answer:  jsonAnswer(200, big),
			contain: []string{"unreadable answer: answer too large"},
		},
		{
			name:    "an error in the middle of a stream",
			steps:   true,
			answer:  sseAnswer(`data: {"choices":[{"index":0,"text":"re░░"}]}`+"\n\n", `data: {"error":{"message":"engine died","type":"server_error"}}`+"\n\n"),
			contain: []string{"failed mid-stream: engine died"},
		},
		{
			name:    "a stream cut before its end",
			steps:   true,
			answer:  sseAnswer(`data: {"choices":[{"index":0,"text":"re░░"}]}` + "\n\n"),
			contain: []string{"the stream ended before [DONE]"},
		},
		{
			name:    "SGLang aborts the request",
			cfg:     Config{Protocol: SGLang},
			answer:  jsonAnswer(200, `{"text":"","meta_info":{"finish_reason":{"type":"abort","message":"The input (40000 tokens) is longer than the model's context length (32768 tokens)."}}}`),
			contain: []string{"aborted: The input (40000 tokens) is longer"},
		},
		{
			name: "a server that echoes the Authorization header",
			answer: func(w http.ResponseWriter, r *http.Request) {
				jsonAnswer(403, fmt.Sprintf(`{"error":{"message":"key %s is not allowed here"}}`, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")))(w, r)
			},
			status:  403,
			contain: []string{"403 Forbidden", "key [redacted] is not allowed"},
		},
	}
	t.Setenv("DFILL_TEST_KEY", testKey)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := fakeServer(t, tt.answer)
			cfg := tt.cfg
			if cfg.Protocol == "" {
				cfg.Protocol, cfg.Model = Mercury, "mercury-coder"
			}
			cfg.URL, cfg.APIKeyEnv = srv.URL, "DFILL_TEST_KEY"
			c := newClient(t, cfg)
			var onStep func(Step)
			if tt.steps {
				onStep = func(Step) {}
			}
			_, err := c.Infill(context.Background(), prompt, Options{}, onStep)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			for _, s := range append(tt.contain, c.URL()) {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not say %q", msg, s)
				}
			}
			if strings.Contains(msg, testKey) {
				t.Errorf("error %q shows the API key", msg)
			}
			var re *Error
			if got := errors.As(err, &re); got != (tt.status != 0) || got && (re.Status != tt.status || re.RetryAfter != tt.retry) {
				t.Errorf("error %#v: want an *Error with status %d, Retry-After %v (or none for 0)", err, tt.status, tt.retry)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	t.Setenv("DFILL_TEST_KEY", testKey)
	c := newClient(t, Config{URL: "http://" + addr, Protocol: Dfill, APIKeyEnv: "DFILL_TEST_KEY"})
	_, err = c.Infill(context.Background(), prompt, Options{}, nil)
	if err == nil || !strings.Contains(err.Error(), "http://"+addr+"/v1/fim/completions") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %v: want one naming the URL and the refused connection", err)
	}
	if strings.Contains(fmt.Sprint(err), testKey) {
		t.Errorf("error %q shows the key", err)
	}
}

// TestCancelMidStream cancels a request while the server is between two
// steps: Infill returns the cancellation, and the server sees its request
// end.
func TestCancelMidStream(t *testing.T) {
	serverSaw := make(chan error, 1)
	srv, _ := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, `data: {"choices":[{"index":0,"text":"re░░░"}]}`+"\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the next step never comes
		serverSaw <- r.Context().Err()
	})
	c := newClient(t, Config{URL: srv.URL, Protocol: Dfill})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := c.Infill(ctx, prompt, Options{}, func(s Step) { cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Infill after cancel: %v, want context.Canceled", err)
	}
	if err := <-serverSaw; err == nil {
		t.Error("the server's request did not end")
	}
	// The caller gave up: the server is not to blame, no backoff.
	if err := c.gate.check(); err != nil {
		t.Errorf("backing off after a cancellation: %v", err)
	}
}

func TestTimeout(t *testing.T) {
	srv, _ := fakeServer(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	c := newClient(t, Config{URL: srv.URL, Protocol: Dfill, Timeout: 50 * time.Millisecond})
	_, err := c.Infill(context.Background(), prompt, Options{}, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Errorf("Infill from a server that never answers: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	var status atomic.Int32
	var retryAfterHdr atomic.Value
	retryAfterHdr.Store("")
	srv, reqs := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if h := retryAfterHdr.Load().(string); h != "" {
			w.Header().Set("Retry-After", h)
		}
		if s := int(status.Load()); s != 200 {
			jsonAnswer(s, `{"error":{"message":"no"}}`)(w, r)
			return
		}
		jsonAnswer(200, `{"choices":[{"index":0,"text":"ok","finish_reason":"stop"}]}`)(w, r)
	})
	c := newClient(t, Config{URL: srv.URL, Protocol: Dfill})
	now := time.Unix(1_750_000_000, 0)
	c.gate.now = func() time.Time { return now }
	infill := func() error {
		_, err := c.Infill(context.Background(), prompt, Options{}, nil)
		return err
	}
	steps := []struct {
		name       string
		status     int
		retryAfter string
		advance    time.Duration // before the request
		backoff    bool          // answered without asking the server
		ok         bool
	}{
		{name: "a 503", status: 503},
		{name: "at once after it: backing off", status: 200, backoff: true},
		{name: "a second later: asks, another 503", status: 503, advance: time.Second},
		{name: "the wait doubled: a second is not enough", status: 200, advance: time.Second, backoff: true},
		{name: "two seconds are", status: 200, advance: time.Second, ok: true},
		{name: "an answer ended the backoff: a 400 is about this request", status: 400},
		{name: "so the next request goes out", status: 200, ok: true},
		{name: "a 429 asks for 30s", status: 429, retryAfter: "30"},
		{name: "20s later, still waiting", status: 200, advance: 20 * time.Second, backoff: true},
		{name: "30s later, asking again", status: 200, advance: 10 * time.Second, ok: true},
	}
	asked := 0
	for _, st := range steps {
		now = now.Add(st.advance)
		status.Store(int32(st.status))
		retryAfterHdr.Store(st.retryAfter)
		err := infill()
		if !st.backoff {
			asked++
		}
		if got := len(reqs()); got != asked {
			t.Fatalf("%s: the server saw %d requests, want %d", st.name, got, asked)
		}
		if st.backoff != errors.Is(err, ErrBackoff) || st.ok != (err == nil) {
			t.Fatalf("%s: %v", st.name, err)
		}
		if st.backoff && !strings.Contains(err.Error(), "no") {
			t.Errorf("%s: %v does not carry the failure it waits after", st.name, err)
		}
	}
}

// TestRetryOnStaleConnection: a keep-alive connection that the server
// closes without answering is retried once on a new connection; the
// caller sees the answer.
func TestRetryOnStaleConnection(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if n.Add(1) == 2 {
			// The second request, on the first's connection: drop it, as
			// a server does with a connection it timed out.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		jsonAnswer(200, `{"choices":[{"index":0,"text":"ok","finish_reason":"stop"}]}`)(w, r)
	}))
	defer srv.Close()
	c := newClient(t, Config{URL: srv.URL, Protocol: Dfill})
	for i := range 2 {
		got, err := c.Infill(context.Background(), prompt, Options{}, nil)
		if err != nil || len(got) != 1 || got[0].Text != "ok" {
			t.Fatalf("request %d: %v, %v", i+1, got, err)
		}
	}
	if got := n.Load(); got != 3 {
		t.Errorf("the server saw %d requests, want 3 (one retried)", got)
	}
}

func TestNew(t *testing.T) {
	t.Setenv("DFILL_TEST_KEY", testKey)
	t.Setenv("DFILL_EMPTY_KEY", "")
	tests := []struct {
		name    string
		cfg     Config
		url     string // the endpoint, when New accepts cfg
		errText string // in the error, when it refuses it
		hidden  string // never in the error
	}{
		{name: "mercury", cfg: Config{URL: "https://api.inceptionlabs.ai", Protocol: Mercury, Model: "mercury-coder", APIKeyEnv: "DFILL_TEST_KEY"},
			url: "https://api.inceptionlabs.ai/v1/fim/completions"},
		{name: "a base URL ending in /v1", cfg: Config{URL: "https://api.inceptionlabs.ai/v1/", Protocol: Mercury, Model: "mercury-coder"},
			url: "https://api.inceptionlabs.ai/v1/fim/completions"},
		{name: "sglang", cfg: Config{URL: "http://gpu:30000", Protocol: SGLang}, url: "http://gpu:30000/generate"},
		{name: "llama.cpp behind --api-prefix", cfg: Config{URL: "http://127.0.0.1:8012/llama/", Protocol: LlamaCpp}, url: "http://127.0.0.1:8012/llama/infill"},
		{name: "dfill", cfg: Config{URL: "http://127.0.0.1:8080", Protocol: Dfill}, url: "http://127.0.0.1:8080/v1/fim/completions"},
		{name: "unknown protocol", cfg: Config{URL: "http://h", Protocol: "ollama"}, errText: `protocol "ollama" is not one of mercury, openai-fim, sglang, llamacpp, dfill`},
		{name: "no URL", cfg: Config{Protocol: Dfill}, errText: "no URL"},
		{name: "no scheme", cfg: Config{URL: "gpu:8080", Protocol: Dfill}, errText: "the scheme must be http or https"},
		{name: "no host", cfg: Config{URL: "http:///v1", Protocol: Dfill}, errText: "has no host"},
		{name: "a query", cfg: Config{URL: "http://h/?key=1", Protocol: Dfill}, errText: "takes no query"},
		{name: "credentials in the URL", cfg: Config{URL: "https://user:" + testKey + "@api.example.com", Protocol: Dfill},
			errText: "holds credentials", hidden: testKey},
		{name: "mercury without a model", cfg: Config{URL: "https://api.inceptionlabs.ai", Protocol: Mercury}, errText: "needs a model name"},
		{name: "the key pasted for the variable's name", cfg: Config{URL: "http://h", Protocol: Dfill, APIKeyEnv: "sk_LIVE_" + testKey[3:]},
			errText: "must name an environment variable", hidden: testKey[3:]},
		{name: "the variable is empty", cfg: Config{URL: "http://h", Protocol: Dfill, APIKeyEnv: "DFILL_EMPTY_KEY"}, errText: "DFILL_EMPTY_KEY (remote.apiKeyEnv) is empty or not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if tt.errText == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if c.URL() != tt.url {
					t.Errorf("endpoint %s, want %s", c.URL(), tt.url)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errText) || !errors.Is(err, ErrConfig) {
				t.Fatalf("New: %v, want an ErrConfig saying %q", err, tt.errText)
			}
			if tt.hidden != "" && strings.Contains(err.Error(), tt.hidden) {
				t.Errorf("error %q shows %q", err, tt.hidden)
			}
		})
	}
}

// TestKeyNotPrinted: printing a Client, however verbosely, never shows the
// key.
func TestKeyNotPrinted(t *testing.T) {
	t.Setenv("DFILL_TEST_KEY", testKey)
	c := newClient(t, Config{URL: "https://api.inceptionlabs.ai", Protocol: Mercury, Model: "mercury-coder", APIKeyEnv: "DFILL_TEST_KEY"})
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(format, c); strings.Contains(s, testKey) {
			t.Errorf("%s of a Client shows the key: %s", format, s)
		}
		if s := fmt.Sprintf(format, *c); strings.Contains(s, testKey) {
			t.Errorf("%s of a Client value shows the key: %s", format, s)
		}
	}
	if got, want := c.Name(), "mercury-coder@api.inceptionlabs.ai"; got != want {
		t.Errorf("Name %q, want %q", got, want)
	}
}

func TestReadEvents(t *testing.T) {
	tests := []struct {
		name    string
		stream  string
		events  []string
		done    bool
		wantErr error
	}{
		{name: "events, a comment and [DONE]", stream: ": ping\n\ndata: a\n\ndata: b\n\ndata: [DONE]\n\ndata: after\n\n",
			events: []string{"a", "b"}, done: true},
		{name: "CRLF lines and a field without a space", stream: "event: message\r\ndata:x\r\n\r\n", events: []string{"x"}},
		{name: "data lines joined", stream: "data: {\"a\":\ndata: 1}\n\n", events: []string{"{\"a\":\n1}"}},
		{name: "an event cut by the end of the stream is dropped", stream: "data: a\n\ndata: b", events: []string{"a"}},
		{name: "a line over the limit", stream: "data: " + strings.Repeat("x", maxEventLine) + "\n\n", wantErr: errTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			done, err := readEvents(strings.NewReader(tt.stream), func(d []byte) error {
				got = append(got, string(d))
				return nil
			})
			if !errors.Is(err, tt.wantErr) || done != tt.done || !reflect.DeepEqual(got, tt.events) {
				t.Errorf("events %q, done %v, err %v; want %q, %v, %v", got, done, err, tt.events, tt.done, tt.wantErr)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, header string
		want         time.Duration
	}{
		{"seconds", "120", 2 * time.Minute},
		{"an HTTP date", "Sun, 01 Mar 2026 12:00:09 GMT", 9 * time.Second},
		{"a date past", "Sun, 01 Mar 2026 11:00:00 GMT", 0},
		{"none", "", 0},
		{"garbage", "soon", 0},
		{"negative", "-5", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryAfter(tt.header, now); got != tt.want {
				t.Errorf("retryAfter(%q) = %v, want %v", tt.header, got, tt.want)
			}
		})
	}
}
