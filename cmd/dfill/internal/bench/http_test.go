package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestSummarizeLoad(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var hundred []outcome
	for i := 100; i >= 1; i-- { // out of order: summarizeLoad sorts
		hundred = append(hundred, outcome{status: http.StatusOK, took: ms(i), tokens: 2})
	}
	tests := []struct {
		name string
		outs []outcome
		wall time.Duration
		want httpLevel
	}{
		{"none", nil, time.Second, httpLevel{Clients: 3, WallSeconds: 1}},
		{"one", []outcome{{status: http.StatusOK, took: ms(7), tokens: 5}}, 2 * time.Second,
			httpLevel{Clients: 3, Requests: 1, OK: 1, CompletionTokens: 5, WallSeconds: 2, OKPerSecond: 0.5, TokensPerSecond: 2.5,
				LatencyMs: httpLatMs{P50: 7, P95: 7, P99: 7, Max: 7}}},
		{"a hundred, nearest rank", hundred, 4 * time.Second,
			httpLevel{Clients: 3, Requests: 100, OK: 100, CompletionTokens: 200, WallSeconds: 4, OKPerSecond: 25, TokensPerSecond: 50,
				LatencyMs: httpLatMs{P50: 50, P95: 95, P99: 99, Max: 100}}},
		{"429s and errors are not latencies", []outcome{
			{status: http.StatusTooManyRequests, took: ms(1)},
			{status: http.StatusOK, took: ms(10), tokens: 4},
			{status: http.StatusInternalServerError, took: ms(900), err: "500 Internal Server Error: boom"},
			{status: http.StatusOK, took: ms(20), err: "200 OK but not a completion"},
			{took: ms(3), err: "connection refused"},
			{status: http.StatusOK, took: ms(30), tokens: 6},
		}, time.Second,
			httpLevel{Clients: 3, Requests: 6, OK: 2, TooMany: 1, Errors: 3, FirstError: "500 Internal Server Error: boom",
				CompletionTokens: 10, WallSeconds: 1, OKPerSecond: 2, TokensPerSecond: 10,
				LatencyMs: httpLatMs{P50: 10, P95: 30, P99: 30, Max: 30}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summarizeLoad(3, tt.outs, tt.wall); got != tt.want {
				t.Errorf("summarizeLoad =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestCutPoints(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // the prompt (text before the cut) of each cut
	}{
		{"middle and end of each line with text", "ab\n\n\tcdef \n", []string{"a", "ab", "ab\n\n\tcd", "ab\n\n\tcdef"}},
		{"no final newline", "xyz", []string{"x", "xyz"}},
		{"one character: its end only", "\t}\n", []string{"\t}"}},
		{"middle on a rune boundary", "é€\n", []string{"é", "é€"}},
		{"blank", " \n\t\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, at := range cutPoints(tt.src) {
				got = append(got, tt.src[:at])
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("prompts %q, want %q", got, tt.want)
			}
		})
	}
}

// patternServer answers completion requests by their order of arrival,
// over and over: 200 with usage (3 completion tokens), 429 (with a
// Retry-After of retryAfter, when not empty), 500, 200, 200 with a body
// that is not a completion. A request whose body is not the FIM request
// the bench sends is answered 400.
func patternServer(t *testing.T, retryAfter string) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Prompt    *string `json:"prompt"`
			Suffix    *string `json:"suffix"`
			MaxTokens int     `json:"max_tokens"`
			Stream    bool    `json:"stream"`
		}
		if r.Method != http.MethodPost || r.URL.Path != "/v1/fim/completions" ||
			json.NewDecoder(r.Body).Decode(&req) != nil || req.Prompt == nil || req.Suffix == nil || req.MaxTokens != 16 || req.Stream {
			http.Error(w, `{"error":{"message":"not the bench's request"}}`, http.StatusBadRequest)
			return
		}
		switch (n.Add(1) - 1) % 5 {
		case 0, 3:
			fmt.Fprint(w, `{"object":"text_completion","choices":[{"index":0,"text":"x := 1","finish_reason":"stop"}],`+
				`"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}`)
		case 1:
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"error":{"message":"the server is busy"}}`)
		case 2:
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"error":{"message":"the model failed"}}`)
		case 4:
			fmt.Fprint(w, `{"choices":[]}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestRunLoad(t *testing.T) {
	bodies, err := fimBodies(builtinSnippet, 16)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		clients     int
		maxRequests int
		retryAfter  string
		cancelled   bool // the context is done before the level starts
		want        httpLevel
	}{
		{"one client", 1, 10, "", false,
			httpLevel{Requests: 10, OK: 4, TooMany: 2, Errors: 4, CompletionTokens: 12}},
		{"eight clients", 8, 103, "", false,
			httpLevel{Requests: 103, OK: 41, TooMany: 21, Errors: 41, CompletionTokens: 123}},
		// A Retry-After of 0 or garbage is no wait; the duration bounds
		// a real one, so the level would end early rather than wait.
		{"unusable Retry-After", 4, 20, "soon", false,
			httpLevel{Requests: 20, OK: 8, TooMany: 4, Errors: 8, CompletionTokens: 24}},
		// Two clients told to wait an hour are woken when the third has
		// sent the last request (else the test would time out).
		{"Retry-After ends when the requests run out", 3, 10, "3600", false,
			httpLevel{Requests: 10, OK: 4, TooMany: 2, Errors: 4, CompletionTokens: 12}},
		{"cancelled", 4, 20, "", true, httpLevel{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, served := patternServer(t, tt.retryAfter)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.cancelled {
				cancel()
			}
			plan := loadPlan{url: srv.URL + "/v1/fim/completions", clients: tt.clients, duration: time.Hour, maxRequests: tt.maxRequests,
				body: func(i int) []byte { return bodies[i%len(bodies)] }}
			var done atomic.Int64
			outs, _ := runLoad(ctx, srv.Client(), plan, func(n int) { done.Store(int64(n)) })
			got := summarizeLoad(tt.clients, outs, 0)
			got.FirstError, got.LatencyMs = "", httpLatMs{}
			tt.want.Clients = tt.clients
			if got != tt.want {
				t.Errorf("counts\n%+v\nwant\n%+v", got, tt.want)
			}
			if served.Load() != int64(tt.want.Requests) || done.Load() != int64(tt.want.Requests) {
				t.Errorf("server answered %d requests, progress saw %d, want %d", served.Load(), done.Load(), tt.want.Requests)
			}
		})
	}
}

// TestRunLoadFirstError checks that an error's message comes from the
// answer's error envelope and names its status, and that a 200 that is
// not a completion is an error.
func TestRunLoadFirstError(t *testing.T) {
	tests := []struct {
		name     string
		requests int
		want     string
	}{
		{"a 500", 3, "500 Internal Server Error: the model failed"},
		{"a 200 that is not a completion", 5, "200 OK but not a completion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := patternServer(t, "")
			plan := loadPlan{url: srv.URL + "/v1/fim/completions", clients: 1, duration: time.Hour, maxRequests: tt.requests,
				body: func(int) []byte { return []byte(`{"prompt":"a","suffix":"b","max_tokens":16}`) }}
			outs, _ := runLoad(t.Context(), srv.Client(), plan, func(int) {})
			var errs []string
			for _, o := range outs {
				if o.err != "" {
					errs = append(errs, o.err)
				}
			}
			if len(errs) == 0 || !strings.HasPrefix(errs[len(errs)-1], tt.want) {
				t.Errorf("errors %q; want the last to start %q", errs, tt.want)
			}
		})
	}
}
