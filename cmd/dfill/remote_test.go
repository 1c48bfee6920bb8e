package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/dfill/dfill/completion"
	"github.com/dfill/dfill/lsp"
	"github.com/dfill/dfill/remote"
)

const remoteTestKey = "sk-remote-e2e-7c41d9"

// fimServer is a loopback OpenAI-style FIM endpoint that answers every
// request with text, and records the requests' bodies and Authorization.
type fimServer struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
	auths  []string
}

func newFIMServer(t *testing.T, status int, text string) *fimServer {
	t.Helper()
	s := &fimServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		data, _ := io.ReadAll(r.Body)
		json.Unmarshal(data, &body)
		s.mu.Lock()
		s.bodies, s.auths = append(s.bodies, body), append(s.auths, r.Header.Get("Authorization"))
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/v1/fim/completions" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"message":"no such endpoint"}}`)
			return
		}
		w.WriteHeader(status)
		if status != http.StatusOK {
			io.WriteString(w, `{"error":{"message":"Invalid API key","type":"authentication_error"}}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"id": "cmpl-1", "object": "text_completion", "created": 1750000000, "model": "codestral-latest",
			"choices": []any{map[string]any{"index": 0, "text": text, "finish_reason": "stop", "logprobs": nil}},
			"usage":   map[string]any{"prompt_tokens": 60, "completion_tokens": 12, "total_tokens": 72},
		})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *fimServer) requests() ([]map[string]any, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.bodies), slices.Clone(s.auths)
}

// overrun is what a served model proposes at the blank line of
// testdata/sample.go: the line wanted, then the lines that already follow
// it, which the pipeline cuts.
const overrun = "\t\treturn nil, err\n\t}\n\treturn data, nil\n}\n"

// TestProtocolListsAgree: the settings accept exactly the protocols the
// remote backend speaks.
func TestProtocolListsAgree(t *testing.T) {
	if got, want := lsp.RemoteProtocols(), remote.Protocols(); !slices.Equal(got, want) {
		t.Errorf("lsp.RemoteProtocols() = %q, remote.Protocols() = %q", got, want)
	}
}

// TestRemoteGeneratorPipeline runs the completion pipeline over the
// remote generator: the served model's answer is post-processed and
// validated as the engine's would be.
func TestRemoteGeneratorPipeline(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		want   []string // the items' text; nil: none
	}{
		{"the part before the suffix is kept", overrun, []string{"\t\treturn nil, err"}},
		{"a syntax error is refused", "\t\treturn nil, err)))\n", nil},
	}
	text, err := os.ReadFile("testdata/sample.go")
	if err != nil {
		t.Fatal(err)
	}
	offset, err := offsetOf(string(text), 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DFILL_TEST_KEY", remoteTestKey)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFIMServer(t, http.StatusOK, tt.answer)
			log := zaptest.NewLogger(t)
			gen, release, err := newGenerator(context.Background(), generatorConfig{Backend: "remote", Remote: remote.Config{
				URL: srv.URL, Protocol: remote.OpenAIFIM, Model: "codestral-latest", APIKeyEnv: "DFILL_TEST_KEY"}}, log)
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			c := completion.New(gen, completion.Options{}, log)
			res, err := c.Complete(context.Background(), completion.Request{URI: "file:///w/sample.go", Path: "sample.go", Text: string(text), Offset: offset})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range res.Items {
				got = append(got, it.Insert)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("items %q, want %q", got, tt.want)
			}
			bodies, auths := srv.requests()
			if len(bodies) != 1 || auths[0] != "Bearer "+remoteTestKey {
				t.Fatalf("%d requests, Authorization %q", len(bodies), auths)
			}
			prefix, _ := bodies[0]["prompt"].(string)
			suffix, _ := bodies[0]["suffix"].(string)
			if !strings.HasSuffix(prefix, "if err != nil {\n") || !strings.HasPrefix(suffix, "\n\t}\n\treturn data, nil\n}") || bodies[0]["model"] != "codestral-latest" {
				t.Errorf("request %v: want the text around line 8 and the model", bodies[0])
			}
			if res.Model != "codestral-latest@"+strings.TrimPrefix(srv.URL, "http://") {
				t.Errorf("model %q", res.Model)
			}
		})
	}
}

// TestCompleteRemoteE2E runs `dfill complete --backend remote` against a
// loopback FIM endpoint.
func TestCompleteRemoteE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the dfill binary")
	}
	bin, err := buildDfill()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		status int
		code   int
		stdout string
		stderr []string // in stderr
	}{
		{"an answer, cut at the suffix", http.StatusOK, 0, "\t\treturn nil, err\n", nil},
		{"a refused key", http.StatusUnauthorized, 1, "", []string{"401 Unauthorized", "Invalid API key", "/v1/fim/completions"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFIMServer(t, tt.status, overrun)
			cmd := exec.Command(bin, "complete", "--backend", "remote", "--remote-url", srv.URL, "--remote-protocol", "openai-fim",
				"--remote-model", "codestral-latest", "--remote-api-key-env", "DFILL_TEST_KEY", "testdata/sample.go:8:1")
			cmd.Env = append(os.Environ(), "DFILL_TEST_KEY="+remoteTestKey)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != tt.code || stdout.String() != tt.stdout {
				t.Errorf("exit %d, stdout %q; want %d, %q (stderr %s)", code, stdout.String(), tt.code, tt.stdout, stderr.String())
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr %q does not say %q", stderr.String(), s)
				}
			}
			if strings.Contains(stdout.String()+stderr.String(), remoteTestKey) {
				t.Errorf("the output shows the API key: %s %s", stdout.String(), stderr.String())
			}
			if _, auths := srv.requests(); len(auths) != 1 || auths[0] != "Bearer "+remoteTestKey {
				t.Errorf("Authorization %q, want the key from the environment, once", auths)
			}
		})
	}
}

// TestServeSwitchToRemoteE2E starts `dfill serve` on the embedded model,
// switches its settings to the remote backend, and asks for an inline
// completion: the served model's answer comes back through the pipeline.
func TestServeSwitchToRemoteE2E(t *testing.T) {
	srv := newFIMServer(t, http.StatusOK, overrun)
	p := startServe(t, "--log-level", "debug")
	p.initialize(t)
	u, _ := url.Parse(srv.URL)
	p.waitModel(t, "") // the embedded model
	p.notify(t, "workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"dfill": map[string]any{
		"backend": "remote",
		"remote":  map[string]any{"url": srv.URL, "protocol": "openai-fim", "model": "codestral-latest"},
	}}})
	p.waitModel(t, "codestral-latest@"+u.Host)

	text, err := os.ReadFile("testdata/sample.go")
	if err != nil {
		t.Fatal(err)
	}
	const uri = "file:///tmp/sample.go"
	p.notify(t, "textDocument/didOpen", map[string]any{"textDocument": map[string]any{
		"uri": uri, "languageId": "go", "version": 1, "text": string(text)}})
	var list struct {
		Items []struct {
			InsertText string `json:"insertText"`
		} `json:"items"`
	}
	err = p.call(t, "textDocument/inlineCompletion", map[string]any{
		"textDocument": map[string]any{"uri": uri},
		"position":     map[string]any{"line": 7, "character": 0},
		"context":      map[string]any{"triggerKind": 1},
	}, &list)
	if err != nil {
		t.Fatalf("inlineCompletion: %v", err)
	}
	if len(list.Items) == 0 || list.Items[0].InsertText != "\t\treturn nil, err" {
		t.Errorf("items %+v, want the served model's line", list.Items)
	}
	if bodies, _ := srv.requests(); len(bodies) != 1 {
		t.Errorf("the server saw %d requests, want 1", len(bodies))
	}
	if err := p.call(t, "shutdown", nil, nil); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	p.notify(t, "exit", nil)
	if code := p.wait(t); code != 0 {
		t.Errorf("exit status %d after shutdown, want 0", code)
	}
}
