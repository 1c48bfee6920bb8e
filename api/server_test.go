package api

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/dfill/dfill/engine"
)

// TestCompletion checks whole (non-streamed) answers on both completion
// routes: the text, the finish reason, the usage, and what the model was
// asked for.
func TestCompletion(t *testing.T) {
	tests := []struct {
		name       string
		path, body string
		answer     engine.Candidate // the fake's; zero: newFake's
		text       string
		finish     string
		usage      usage
		prefix     string // what the model was given
		suffix     string
		lengths    []int
		temp, topP float64
		seed       uint64 // checked when not 0
	}{
		{
			name: "fim: the span ends with end tokens: stop",
			path: "/v1/fim/completions", body: `{"model":"fake-model","prompt":"if err != nil {\n","suffix":"\n}"}`,
			text: "return err", finish: "stop", usage: usage{18, 3, 21},
			prefix: "if err != nil {\n", suffix: "\n}", lengths: []int{DefaultRequestMaxTokens},
		},
		{
			name: "fim: the span is full: length",
			path: "/v1/fim/completions", body: `{"prompt":"a","suffix":"b","max_tokens":4}`,
			answer: candidate("xyzw", 4, 4),
			text:   "xyzw", finish: "length", usage: usage{2, 4, 6},
			prefix: "a", suffix: "b", lengths: []int{4},
		},
		{
			name: "legacy completions with a suffix",
			path: "/v1/completions", body: `{"model":"fake-model","prompt":"func f() {","suffix":"}","max_tokens":16,"temperature":0.5,"top_p":0.9,"seed":7}`,
			text: "return err", finish: "stop", usage: usage{11, 3, 14},
			prefix: "func f() {", suffix: "}", lengths: []int{16}, temp: 0.5, topP: 0.9, seed: 7,
		},
		{
			name: "legacy completions: a prompt array of one string, Codestral's random_seed",
			path: "/v1/completions", body: `{"prompt":["x = "],"random_seed":3}`,
			text: "return err", finish: "stop", usage: usage{4, 3, 7},
			prefix: "x = ", lengths: []int{DefaultRequestMaxTokens}, seed: 3,
		},
		{
			name: "a stop sequence cuts the text",
			path: "/v1/fim/completions", body: `{"prompt":"p","stop":["\n"]}`,
			answer: candidate("return err\n}", 8, 8),
			text:   "return err", finish: "stop", usage: usage{1, 10, 11},
			prefix: "p", lengths: []int{DefaultRequestMaxTokens},
		},
		{
			name: "the earliest of several stop sequences",
			path: "/v1/fim/completions", body: `{"prompt":"p","stop":["}", " "]}`,
			answer: candidate("return err\n}", 8, 8),
			text:   "return", finish: "stop", usage: usage{1, 6, 7},
			prefix: "p", lengths: []int{DefaultRequestMaxTokens},
		},
		{
			name: "an empty prompt and no suffix",
			path: "/v1/fim/completions", body: `{"prompt":""}`,
			text: "return err", finish: "stop", usage: usage{0, 3, 3},
			lengths: []int{DefaultRequestMaxTokens},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.steps = nil
			if tt.answer.Tokens != nil {
				f.answer = tt.answer
			}
			_, ts := serve(t, f, Options{})
			resp, body := post(t, ts, tt.path, tt.body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			c := decode[wireCompletion](t, body)
			if c.Object != "text_completion" || c.Model != "fake-model" || !strings.HasPrefix(c.ID, "cmpl-") || c.Created == 0 {
				t.Errorf("head: object %q model %q id %q created %d", c.Object, c.Model, c.ID, c.Created)
			}
			if len(c.Choices) != 1 {
				t.Fatalf("%d choices: %s", len(c.Choices), body)
			}
			ch := c.Choices[0]
			if ch.Text != tt.text || ch.FinishReason == nil || *ch.FinishReason != tt.finish || ch.Index != 0 {
				t.Errorf("choice %q finish %v, want %q %q", ch.Text, ch.FinishReason, tt.text, tt.finish)
			}
			if c.Usage == nil || *c.Usage != tt.usage {
				t.Errorf("usage %+v, want %+v", c.Usage, tt.usage)
			}
			p, opt, calls, _ := f.seen()
			if calls != 1 || p.Prefix != tt.prefix || p.Suffix != tt.suffix {
				t.Errorf("model called %d times with %+v, want prefix %q suffix %q", calls, p, tt.prefix, tt.suffix)
			}
			if !slices.Equal(opt.Lengths, tt.lengths) || opt.Temperature != tt.temp || opt.TopP != tt.topP {
				t.Errorf("options: lengths %v temperature %g top_p %g, want %v %g %g", opt.Lengths, opt.Temperature, opt.TopP, tt.lengths, tt.temp, tt.topP)
			}
			if tt.seed != 0 && opt.Seed != tt.seed {
				t.Errorf("seed %d, want %d", opt.Seed, tt.seed)
			}
		})
	}
}

// TestEngineOptions checks that the server's sampler settings reach the
// model, with the request's span and sampling on top.
func TestEngineOptions(t *testing.T) {
	f := newFake()
	var asked int
	_, ts := serve(t, f, Options{EngineOptions: func(n int) engine.Options {
		asked = n
		return engine.Options{Lengths: []int{4, 8, n}, Contexts: []int{64, 64, 0}, Steps: 6, Schedule: engine.ScheduleThreshold, BlockSize: 32, Cache: true}
	}})
	if resp, body := post(t, ts, "/v1/fim/completions", `{"prompt":"x","max_tokens":24,"temperature":0.2}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	_, opt, _, _ := f.seen()
	if asked != 24 || !slices.Equal(opt.Lengths, []int{24}) || opt.Contexts != nil || opt.Steps != 6 ||
		opt.Schedule != engine.ScheduleThreshold || opt.BlockSize != 32 || !opt.Cache || opt.Temperature != 0.2 {
		t.Errorf("EngineOptions asked for %d; the model got %+v", asked, opt)
	}
}

// TestErrors checks every refusal: status, the JSON error envelope, and
// that the model was never called.
func TestErrors(t *testing.T) {
	tests := []struct {
		name         string
		method, path string
		body         string
		status       int
		typ, code    string
		param        any // nil: null
	}{
		{"malformed JSON", "POST", "/v1/fim/completions", `{"prompt": "x"`, 400, typeInvalid, "invalid_json", nil},
		{"not JSON at all", "POST", "/v1/fim/completions", `prompt=x`, 400, typeInvalid, "invalid_json", nil},
		{"trailing data", "POST", "/v1/fim/completions", `{"prompt":"x"} {}`, 400, typeInvalid, "invalid_json", nil},
		{"an array, not an object", "POST", "/v1/fim/completions", `[{"prompt":"x"}]`, 400, typeInvalid, "invalid_json", nil},
		{"max_tokens a string", "POST", "/v1/fim/completions", `{"prompt":"x","max_tokens":"16"}`, 400, typeInvalid, "invalid_type", "max_tokens"},
		{"max_tokens a fraction", "POST", "/v1/fim/completions", `{"prompt":"x","max_tokens":1.5}`, 400, typeInvalid, "invalid_type", "max_tokens"},
		{"stream a string", "POST", "/v1/fim/completions", `{"prompt":"x","stream":"yes"}`, 400, typeInvalid, "invalid_type", "stream"},
		{"include_usage a number", "POST", "/v1/fim/completions", `{"prompt":"x","stream":true,"stream_options":{"include_usage":1}}`, 400, typeInvalid, "invalid_type", "stream_options.include_usage"},
		{"prompt a number", "POST", "/v1/fim/completions", `{"prompt":5}`, 400, typeInvalid, "invalid_type", "prompt"},
		{"prompt an array of two", "POST", "/v1/completions", `{"prompt":["a","b"]}`, 400, typeInvalid, "invalid_type", "prompt"},
		{"suffix a number", "POST", "/v1/fim/completions", `{"prompt":"x","suffix":1}`, 400, typeInvalid, "invalid_type", "suffix"},
		{"stop a number", "POST", "/v1/fim/completions", `{"prompt":"x","stop":1}`, 400, typeInvalid, "invalid_type", "stop"},
		{"too many stop sequences", "POST", "/v1/fim/completions", `{"prompt":"x","stop":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17"]}`, 400, typeInvalid, "invalid_value", "stop"},
		{"no prompt", "POST", "/v1/fim/completions", `{"suffix":"x"}`, 400, typeInvalid, "missing_field", "prompt"},
		{"a null prompt", "POST", "/v1/fim/completions", `{"prompt":null}`, 400, typeInvalid, "missing_field", "prompt"},
		{"max_tokens over the limit", "POST", "/v1/fim/completions", `{"prompt":"x","max_tokens":65}`, 400, typeInvalid, "invalid_value", "max_tokens"},
		{"max_tokens zero", "POST", "/v1/fim/completions", `{"prompt":"x","max_tokens":0}`, 400, typeInvalid, "invalid_value", "max_tokens"},
		{"max_tokens negative", "POST", "/v1/completions", `{"prompt":"x","max_tokens":-1}`, 400, typeInvalid, "invalid_value", "max_tokens"},
		{"temperature out of range", "POST", "/v1/fim/completions", `{"prompt":"x","temperature":2.5}`, 400, typeInvalid, "invalid_value", "temperature"},
		{"top_p zero", "POST", "/v1/fim/completions", `{"prompt":"x","top_p":0}`, 400, typeInvalid, "invalid_value", "top_p"},
		{"n above 1", "POST", "/v1/completions", `{"prompt":"x","n":2}`, 400, typeInvalid, "unsupported", "n"},
		{"echo", "POST", "/v1/completions", `{"prompt":"x","echo":true}`, 400, typeInvalid, "unsupported", "echo"},
		{"logprobs", "POST", "/v1/completions", `{"prompt":"x","logprobs":5}`, 400, typeInvalid, "unsupported", "logprobs"},
		{"an unknown model", "POST", "/v1/fim/completions", `{"model":"codestral-latest","prompt":"x"}`, 404, typeNotFound, "model_not_found", "model"},
		{"an unknown path", "POST", "/v1/chat/completions", `{}`, 404, typeNotFound, "unknown_url", nil},
		{"the root", "GET", "/", ``, 404, typeNotFound, "unknown_url", nil},
		{"GET on a POST route", "GET", "/v1/fim/completions", ``, 405, typeInvalid, "method_not_allowed", nil},
		{"DELETE on a GET route", "DELETE", "/v1/models", ``, 405, typeInvalid, "method_not_allowed", nil},
		{"a body over the limit", "POST", "/v1/fim/completions", `{"prompt":"` + strings.Repeat("x", 600) + `"}`, 413, typeInvalid, "request_too_large", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			_, ts := serve(t, f, Options{MaxTokens: 64, MaxBodyBytes: 512})
			resp, body := do(t, context.Background(), tt.method, ts.URL+tt.path, tt.body, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			e := decode[wireError](t, body)
			if e.Error.Type != tt.typ || e.Error.Code != tt.code || e.Error.Param != tt.param || e.Error.Message == "" {
				t.Errorf("error %+v, want type %q code %q param %v", e.Error, tt.typ, tt.code, tt.param)
			}
			if tt.status == 405 && resp.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			if _, _, calls, _ := f.seen(); calls != 0 {
				t.Errorf("the model was called %d times", calls)
			}
		})
	}
}

// TestErrorsNeverQuoteThePrompt checks that an error about a field names
// it without echoing the request's text back.
func TestErrorsNeverQuoteThePrompt(t *testing.T) {
	_, ts := serve(t, newFake(), Options{})
	const secret = "sk-live-SECRET"
	for _, body := range []string{`{"prompt":"` + secret + `","max_tokens":"` + secret + `"}`, `{"prompt":"` + secret + `",`} {
		resp, out := post(t, ts, "/v1/fim/completions", body)
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(out), secret) {
			t.Errorf("status %d, body %s", resp.StatusCode, out)
		}
	}
}

// TestAuth checks the bearer token: every route but /healthz needs it.
func TestAuth(t *testing.T) {
	const key = "s3cret-key"
	tests := []struct {
		name   string
		method string
		path   string
		auth   string // the Authorization header; "" sends none
		status int
	}{
		{"no header", "POST", "/v1/fim/completions", "", 401},
		{"a wrong key", "POST", "/v1/fim/completions", "Bearer nope", 401},
		{"the key's prefix", "POST", "/v1/fim/completions", "Bearer s3cret", 401},
		{"the key and more", "POST", "/v1/fim/completions", "Bearer s3cret-key2", 401},
		{"the key without a scheme", "POST", "/v1/fim/completions", key, 401},
		{"another scheme", "POST", "/v1/fim/completions", "Basic " + key, 401},
		{"an empty bearer", "POST", "/v1/fim/completions", "Bearer ", 401},
		{"the key", "POST", "/v1/fim/completions", "Bearer " + key, 200},
		{"the key, scheme in lower case", "POST", "/v1/completions", "bearer " + key, 200},
		{"models without the key", "GET", "/v1/models", "", 401},
		{"metrics without the key", "GET", "/metrics", "", 401},
		{"metrics with the key", "GET", "/metrics", "Bearer " + key, 200},
		{"healthz without the key", "GET", "/healthz", "", 200},
		{"a wrong method without the key: 401 first", "GET", "/v1/fim/completions", "", 401},
	}
	_, ts := serve(t, newFake(), Options{APIKey: key})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{}
			if tt.auth != "" {
				h["Authorization"] = tt.auth
			}
			resp, body := do(t, context.Background(), tt.method, ts.URL+tt.path, `{"prompt":"x"}`, h)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.status != 401 {
				return
			}
			e := decode[wireError](t, body)
			if e.Error.Type != typeAuth || e.Error.Code != "invalid_api_key" || resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 body %s, WWW-Authenticate %q", body, resp.Header.Get("WWW-Authenticate"))
			}
			if strings.Contains(string(body), key) {
				t.Errorf("the answer quotes the key: %s", body)
			}
		})
	}
}

// TestSameKey checks the key comparison. That it takes the same time
// whatever the guess is by construction (SHA-256 of both sides, then
// subtle.ConstantTimeCompare over equal lengths), not measured here.
func TestSameKey(t *testing.T) {
	s := New(Options{APIKey: "abc"})
	tests := []struct {
		name  string
		token string
		want  bool
	}{
		{"equal", "abc", true},
		{"empty", "", false},
		{"prefix", "ab", false},
		{"longer", "abcd", false},
		{"one byte off", "abd", false},
		{"case", "ABC", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameKey(tt.token, s.keyHash); got != tt.want {
				t.Errorf("sameKey(%q) = %v", tt.token, got)
			}
		})
	}
}

// TestRetryAfterIsWholeSeconds checks the 429's Retry-After estimate.
func TestRetryAfterIsWholeSeconds(t *testing.T) {
	q := newQueue(1, 2, func(float64) {})
	if got := q.retryAfter(); got != 1 {
		t.Errorf("with no history: %d, want 1", got)
	}
	q.avg, q.waiting = 1500e6, 2 // 1.5 s per generation, two ahead
	if got := q.retryAfter(); got != 5 {
		t.Errorf("1.5 s × 3: %d, want 5", got)
	}
	q.avg = 1e12
	if got := q.retryAfter(); got != 60 {
		t.Errorf("capped: %d, want 60", got)
	}
}

// TestDefaultMaxTokensFitsTheContext checks that a request without
// max_tokens gets a span the model's context holds.
func TestDefaultMaxTokensFitsTheContext(t *testing.T) {
	f := newFake()
	f.context = 16
	_, ts := serve(t, f, Options{})
	if resp, body := post(t, ts, "/v1/fim/completions", `{"prompt":"x"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if _, opt, _, _ := f.seen(); !slices.Equal(opt.Lengths, []int{15}) {
		t.Errorf("span %v, want [15]: the context less one token", opt.Lengths)
	}
}
