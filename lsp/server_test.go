package lsp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.lsp.dev/protocol"

	"github.com/dfill/dfill/completion"
)

const goSource = "package main\n\nimport \"fmt\"\n\nfunc main() {\n\t\n}\n"

// testOptions returns server options that load gen.
func testOptions(t *testing.T, gen completion.Generator) Options {
	return Options{Loader: loaderOf(gen, nil)}
}

// ready starts a server with opts, initializes it, waits for the model and
// opens goSource as main.go.
func ready(t *testing.T, opts Options, caps any) *editor {
	t.Helper()
	e := startEditor(t, opts)
	e.initialize(caps, nil)
	e.modelReady()
	e.open("file:///w/main.go", "go", goSource)
	return e
}

func TestLifecycle(t *testing.T) {
	tests := []struct {
		name      string
		encodings []string
		want      protocol.PositionEncodingKind
	}{
		{"default is UTF-16", nil, protocol.PositionEncodingKindUTF16},
		{"UTF-16 only", []string{"utf-16"}, protocol.PositionEncodingKindUTF16},
		{"UTF-8 when offered", []string{"utf-16", "utf-8"}, protocol.PositionEncodingKindUTF8},
		{"unknown encodings", []string{"utf-32"}, protocol.PositionEncodingKindUTF16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEditor(t, testOptions(t, &fakeGen{text: "x"}))
			caps := map[string]any{"general": map[string]any{"positionEncodings": tt.encodings}}
			res := e.initialize(caps, nil)
			if res.Capabilities.PositionEncoding != tt.want {
				t.Errorf("positionEncoding = %q, want %q", res.Capabilities.PositionEncoding, tt.want)
			}
			sync, _ := res.Capabilities.TextDocumentSync.(*protocol.TextDocumentSyncOptions)
			if sync == nil || sync.OpenClose == nil || !*sync.OpenClose || sync.Change == nil || *sync.Change != protocol.TextDocumentSyncKindIncremental ||
				res.Capabilities.InlineCompletionProvider != protocol.Boolean(true) || res.Capabilities.CompletionProvider == nil {
				t.Errorf("capabilities = %+v", res.Capabilities)
			}
			if m := e.call("initialize", map[string]any{"capabilities": map[string]any{}}); m.Error == nil {
				t.Error("a second initialize succeeded")
			}
			if m := e.call("shutdown", nil); m.Error != nil || string(m.Result) != "null" {
				t.Errorf("shutdown = %s %+v", m.Result, m.Error)
			}
			if m := e.call("dfill/stats", nil); m.Error == nil || m.Error.Code != -32600 {
				t.Errorf("request after shutdown = %+v, want InvalidRequest", m.Error)
			}
			e.notify("exit", nil)
			if s := e.exitStatus(); s.code != 0 {
				t.Errorf("exit code = %d (%v), want 0", s.code, s.err)
			}
		})
	}
}

func TestExitWithoutShutdown(t *testing.T) {
	e := startEditor(t, testOptions(t, &fakeGen{text: "x"}))
	e.initialize(nil, nil)
	e.notify("exit", nil)
	if s := e.exitStatus(); s.code != 1 {
		t.Errorf("exit code = %d, want 1", s.code)
	}
}

func TestNotInitialized(t *testing.T) {
	e := startEditor(t, testOptions(t, &fakeGen{text: "x"}))
	e.open("file:///w/a.go", "go", "package a\n") // dropped
	m := e.call("textDocument/inlineCompletion", inlineParams("file:///w/a.go", 0, 0, invokedInline))
	if m.Error == nil || m.Error.Code != -32002 {
		t.Fatalf("request before initialize = %+v, want ServerNotInitialized", m.Error)
	}
	e.initialize(nil, nil)
	e.stats()
}

func TestInlineCompletion(t *testing.T) {
	tests := []struct {
		name    string
		trigger protocol.InlineCompletionTriggerKind
	}{
		{"automatic", automaticInline},
		{"invoked", invokedInline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ready(t, testOptions(t, &fakeGen{text: "fmt.Println(\"hello\")"}), nil)
			// Type "f" then delete it, incrementally, then ask at the cursor.
			line, col := lineCol(goSource, "\t\n}")
			col++ // after the tab
			at := Range{Start: Position{Line: line, Character: col}, End: Position{Line: line, Character: col}}
			e.change("file:///w/main.go", 2, edit(&at, "f"))
			typed := Range{Start: Position{Line: line, Character: col}, End: Position{Line: line, Character: col + 1}}
			e.change("file:///w/main.go", 3, edit(&typed, ""))

			list := e.inline("file:///w/main.go", line, col, tt.trigger)
			if len(list.Items) == 0 {
				t.Fatal("no items")
			}
			if tt.trigger == automaticInline && len(list.Items) != 1 {
				t.Errorf("automatic trigger got %d items, want 1", len(list.Items))
			}
			it := list.Items[0]
			if !strings.Contains(insertText(it), "Println") {
				t.Errorf("insertText = %q", insertText(it))
			}
			if it.Range == nil || it.Range.Start != (Position{Line: line, Character: col}) || it.Range.End.Line != line {
				t.Errorf("range = %+v, want to start at %d:%d on the same line", it.Range, line, col)
			}
		})
	}
}

func TestCompletion(t *testing.T) {
	e := ready(t, testOptions(t, &fakeGen{text: "fmt.Println(\"hello\")"}), nil)
	line, col := lineCol(goSource, "\t\n}")
	col++
	list := e.complete("file:///w/main.go", line, col, protocol.CompletionTriggerKindInvoked)
	if len(list.Items) == 0 {
		t.Fatal("no items")
	}
	it := list.Items[0]
	te, _ := it.TextEdit.(*protocol.TextEdit)
	if te == nil || te.NewText != "fmt.Println(\"hello\")" || te.Range.Start != (Position{Line: line, Character: col}) {
		t.Errorf("textEdit = %+v", it.TextEdit)
	}
	if it.Label != `fmt.Println("hello")` {
		t.Errorf("label = %q, want the line as it will read", it.Label)
	}
	if doc, _ := it.Documentation.(*protocol.MarkupContent); doc == nil || !strings.Contains(doc.Value, "\tfmt.Println(\"hello\")") {
		t.Errorf("documentation = %+v", it.Documentation)
	}
	if it.InsertTextFormat != protocol.InsertTextFormatPlainText {
		t.Errorf("insertTextFormat = %d", it.InsertTextFormat)
	}
}

// blocked returns a ready editor whose generator blocks until released, and
// the generator.
func blocked(t *testing.T) (*editor, *fakeGen) {
	gen := &fakeGen{text: "fmt.Println()", started: make(chan struct{}), release: make(chan struct{})}
	return ready(t, testOptions(t, gen), nil), gen
}

func waitStarted(t *testing.T, gen *fakeGen) {
	t.Helper()
	select {
	case <-gen.started:
	case <-timeAfterHang():
		t.Fatal("the generator was not called")
	}
}

func TestCancelRequest(t *testing.T) {
	e, gen := blocked(t)
	line, col := lineCol(goSource, "\t\n}")
	id, ch := e.start("textDocument/inlineCompletion", inlineParams("file:///w/main.go", line, col+1, invokedInline))
	waitStarted(t, gen)
	e.notify("$/cancelRequest", map[string]any{"id": id})
	m := e.wait(ch)
	if m.Error == nil || m.Error.Code != int(protocol.CodeRequestCancelled) {
		t.Fatalf("cancelled request answered %s %+v, want error -32800", m.Result, m.Error)
	}
	if st := e.stats(); st.Cancelled != 1 {
		t.Errorf("stats.cancelled = %d, want 1", st.Cancelled)
	}
}

func TestSupersede(t *testing.T) {
	e, gen := blocked(t)
	line, col := lineCol(goSource, "\t\n}")
	_, first := e.start("textDocument/inlineCompletion", inlineParams("file:///w/main.go", line, col+1, automaticInline))
	waitStarted(t, gen)

	// didChange and other requests are served while a completion runs.
	at := Range{Start: Position{Line: line, Character: col + 1}, End: Position{Line: line, Character: col + 1}}
	e.change("file:///w/main.go", 2, edit(&at, "f"))
	e.stats()

	_, second := e.start("textDocument/inlineCompletion", inlineParams("file:///w/main.go", line, col+2, automaticInline))
	// The client did not cancel the first request: it gets an empty
	// answer, not an error (Neovim would drop an error unseen).
	m := e.wait(first)
	if m.Error != nil || string(m.Result) != `{"items":[]}` {
		t.Fatalf("superseded request answered %s %+v, want an empty list", m.Result, m.Error)
	}
	waitStarted(t, gen)
	close(gen.release)
	m = e.wait(second)
	if m.Error != nil {
		t.Fatalf("newest request failed: %+v", m.Error)
	}
}

func TestPanicBecomesInternalError(t *testing.T) {
	gen := &fakeGen{text: "x", panics: true}
	opts := testOptions(t, gen)
	e := ready(t, opts, nil)
	m := e.call("textDocument/inlineCompletion", inlineParams("file:///w/main.go", 5, 1, invokedInline))
	if m.Error == nil || m.Error.Code != -32603 {
		t.Fatalf("panicking request answered %s %+v, want InternalError", m.Result, m.Error)
	}
	e.stats()
}

func TestConfiguration(t *testing.T) {
	gen := &fakeGen{text: "fmt.Println()", steps: 4}
	var (
		mu       sync.Mutex
		models   []string
		released atomic.Int32
	)
	loaded := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(models)
	}
	loader := func(ctx context.Context, cfg ModelConfig) (completion.Generator, func(), error) {
		mu.Lock()
		models = append(models, cfg.Model)
		mu.Unlock()
		return gen, func() { released.Add(1) }, nil
	}
	e := startEditor(t, Options{Loader: loader, Config: Config{Model: "flag.gguf", Steps: 8}})
	e.mu.Lock()
	e.config = json.RawMessage(`{"model":"pulled.gguf"}`)
	e.mu.Unlock()
	caps := map[string]any{"workspace": map[string]any{"configuration": true}, "window": map[string]any{"workDoneProgress": true}}
	e.initialize(caps, map[string]any{"dfill": map[string]any{"backend": "cpu", "maxTokens": 32}})
	e.waitFor("workspace/configuration", nil)
	e.modelReady()
	e.waitFor("$/progress", func(m *wireMsg) bool { return strings.Contains(string(m.Params), `"end"`) })
	if models := loaded(); len(models) != 1 || models[0] != "pulled.gguf" {
		t.Fatalf("loaded %q, want the pulled model", models)
	}
	e.open("file:///w/main.go", "go", goSource)

	// Pushed settings: denoise notifications on.
	e.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"dfill": map[string]any{"model": "pulled.gguf", "denoiseNotifications": true}}})
	line, col := lineCol(goSource, "\t\n}")
	e.inline("file:///w/main.go", line, col+1, invokedInline)
	m := e.waitFor("dfill/denoise", nil)
	var d DenoiseParams
	if err := json.Unmarshal(m.Params, &d); err != nil {
		t.Fatal(err)
	}
	if d.URI != "file:///w/main.go" || d.Steps == 0 || d.Step < 1 || d.Position != (Position{Line: line, Character: col + 1}) {
		t.Errorf("denoise = %+v", d)
	}
	m = e.waitFor("dfill/denoise", func(m *wireMsg) bool { return strings.Contains(string(m.Params), `"final":true`) })
	if err := json.Unmarshal(m.Params, &d); err != nil || d.Text != "fmt.Println()" ||
		len(d.History) != d.Steps || d.Steps == 0 || d.History[d.Steps-1] != "fmt.Println()" {
		t.Errorf("final denoise step %+v (%v), want the answer and the steps that made it", d, err)
	}

	// Pulled settings with a new model: it is loaded and the old one released.
	e.mu.Lock()
	e.config = json.RawMessage(`{"model":"other.gguf"}`)
	e.mu.Unlock()
	e.notify("workspace/didChangeConfiguration", map[string]any{"settings": nil})
	e.waitFor("$/progress", func(m *wireMsg) bool {
		return strings.Contains(string(m.Params), "dfill-2") && strings.Contains(string(m.Params), `"end"`)
	})
	if models := loaded(); released.Load() != 1 || len(models) != 2 || models[1] != "other.gguf" {
		t.Errorf("after a model change: loaded %q, released %d", models, released.Load())
	}
	e.call("shutdown", nil)
	e.notify("exit", nil)
	e.exitStatus()
	if released.Load() != 2 {
		t.Errorf("released %d generators at exit, want 2", released.Load())
	}
}

func TestMergeSettings(t *testing.T) {
	base := Config{Model: "m.gguf", Steps: 8, Threshold: 0.5, Languages: []string{"go"}}
	def := Config{Steps: 6}
	tests := []struct {
		name     string
		raw      string
		wrapped  bool
		want     Config
		problems []string // substrings of the problems, in order
	}{
		{"null", `null`, false, base, nil},
		{"empty", ``, false, base, nil},
		{"an empty Lua table", `[]`, false, base, nil},
		{"all of an editor's settings", `{"gopls":{"x":1},"model":"/elsewhere.gguf"}`, true, base, nil},
		{"all of an editor's settings, with dfill's", `{"gopls":{"x":1},"dfill":{"steps":2}}`, true, Config{Steps: 2}, nil},
		// The section is all of the user's settings: what it lacks is the default.
		{"section", `{"dfill":{"steps":4}}`, false, Config{Steps: 4}, nil},
		{"bare", `{"maxTokens":16}`, false, Config{Steps: 6, MaxTokens: 16}, nil},
		{"languages replaced", `{"languages":["python"]}`, false, Config{Steps: 6, Languages: []string{"python"}}, nil},
		{"null resets to the default", `{"steps":null,"model":"m.gguf"}`, false, Config{Model: "m.gguf", Steps: 6}, nil},
		{"unknown keys ignored", `{"path":"/usr/bin/dfill","enable":true,"model":"m.gguf"}`, false, Config{Model: "m.gguf", Steps: 6}, nil},
		// A refused value keeps the value it had.
		{"wrong type", `{"steps":"four","maxTokens":3}`, false, Config{Steps: 8, MaxTokens: 3},
			[]string{`"steps": "four" is not an integer from 0`}},
		{"out of range", `{"algorithm":"nope","threshold":-5,"contextTokens":-1,"completionItems":"sometimes","debounceMs":2}`, false,
			Config{Steps: 6, Threshold: 0.5, DebounceMs: 2},
			[]string{`"algorithm": "nope" is not "confidence", "margin" or "entropy"; keeping ""`,
				`"completionItems": "sometimes"`, `"contextTokens": -1`, `"threshold": -5 is not a number from 0 (the step schedule) to 1; keeping 0.5`}},
		{"a fraction of a step", `{"steps":2.5}`, false, Config{Steps: 8}, []string{`"steps": 2.5`}},
		{"a min score", `{"minScore":0.25}`, false, Config{Steps: 6, MinScore: ptr(0.25)}, nil},
		{"a min score of 0 shows everything", `{"minScore":0}`, false, Config{Steps: 6, MinScore: ptr(0.0)}, nil},
		{"a min score out of range", `{"minScore":1.5}`, false, Config{Steps: 6},
			[]string{`"minScore": 1.5 is not a number from 0 (show every completion) to 1, or null`}},
		{"a backend this build lacks", `{"backend":"cuda"}`, false, Config{Steps: 6}, []string{`"backend": "cuda" is not "cpu"`}},
		{"a remote backend", `{"backend":"remote","remote":{"url":"https://api.inceptionlabs.ai","protocol":"mercury","model":"mercury-coder","apiKeyEnv":"INCEPTION_API_KEY"}}`, false,
			Config{Steps: 6, Backend: "remote", Remote: RemoteConfig{URL: "https://api.inceptionlabs.ai", Protocol: "mercury", Model: "mercury-coder", APIKeyEnv: "INCEPTION_API_KEY"}}, nil},
		{"a remote protocol dfill does not speak", `{"remote":{"url":"http://gpu:30000","protocol":"vllm"}}`, false, Config{Steps: 6},
			[]string{`setting "remote": refused (protocol "vllm" is unknown); it must be an object {"url": an http or https URL`}},
		{"a misspelt remote key", `{"backend":"remote","remote":{"url":"http://gpu:8080","apikeyEnv":"KEY"}}`, false, Config{Steps: 6, Backend: "remote"},
			[]string{`setting "remote": refused (unknown key "apikeyEnv")`}},
		{"a remote URL that is not http", `{"remote":{"url":"gpu:8080"}}`, false, Config{Steps: 6},
			[]string{`refused (url is not an http or https URL with a host)`}},
		{"a remote that is not an object", `{"remote":"http://gpu:8080"}`, false, Config{Steps: 6}, []string{`refused (not an object)`}},
		{"not an object", `[1]`, false, base, []string{"not a JSON object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems := mergeSettings(base, def, []byte(tt.raw), tt.wrapped)
			if len(problems) != len(tt.problems) {
				t.Fatalf("problems %q, want %d like %q", problems, len(tt.problems), tt.problems)
			}
			for i, p := range tt.problems {
				if !strings.Contains(problems[i], p) {
					t.Errorf("problem %q, want it to say %q", problems[i], p)
				}
			}
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(tt.want)
			if string(gj) != string(wj) {
				t.Errorf("got %s, want %s", gj, wj)
			}
		})
	}
}

// TestRemoteSettings: the keys a remote object lacks take the command
// line's values, and a refused value never repeats what might be a key
// pasted into the wrong field.
func TestRemoteSettings(t *testing.T) {
	def := Config{Backend: "remote", Remote: RemoteConfig{URL: "http://flag:8080", Protocol: "dfill", APIKeyEnv: "DFILL_KEY"}}
	base := Config{Backend: "remote", Remote: RemoteConfig{URL: "http://old:8080", Protocol: "sglang"}}
	const secret = "sk_live_51HxQ2eZvKYlo2C"
	tests := []struct {
		name    string
		raw     string
		want    RemoteConfig
		problem string // a substring of the one problem, or "" for none
	}{
		{"lacking keys take the command line's", `{"backend":"remote","remote":{"url":"https://gpu.example.com"}}`,
			RemoteConfig{URL: "https://gpu.example.com", Protocol: "dfill", APIKeyEnv: "DFILL_KEY"}, ""},
		{"null keys too", `{"backend":"remote","remote":{"protocol":"llamacpp","apiKeyEnv":null}}`,
			RemoteConfig{URL: "http://flag:8080", Protocol: "llamacpp", APIKeyEnv: "DFILL_KEY"}, ""},
		{"no remote object: the command line's", `{"backend":"remote"}`, def.Remote, ""},
		{"an empty Lua table: the command line's", `{"backend":"remote","remote":[]}`, def.Remote, ""},
		{"the key pasted as the variable's name", `{"backend":"remote","remote":{"apiKeyEnv":"` + secret + `"}}`,
			base.Remote, "refused (apiKeyEnv is not the name of an environment variable)"},
		{"credentials in the URL", `{"backend":"remote","remote":{"url":"https://me:` + secret + `@gpu.example.com"}}`,
			base.Remote, "refused (url holds credentials)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems := mergeSettings(base, def, []byte(tt.raw), false)
			if got.Remote != tt.want {
				t.Errorf("remote %+v, want %+v", got.Remote, tt.want)
			}
			if tt.problem == "" && len(problems) != 0 || tt.problem != "" && (len(problems) != 1 || !strings.Contains(problems[0], tt.problem)) {
				t.Fatalf("problems %q, want %q", problems, tt.problem)
			}
			if len(problems) == 1 && strings.Contains(problems[0], secret) {
				t.Errorf("the problem %q repeats the secret", problems[0])
			}
		})
	}
}

// TestSwitchToRemoteBackend: settings that switch the backend to remote
// load the served model the remote object names; a remote object changed
// while the cpu backend runs loads nothing again.
func TestSwitchToRemoteBackend(t *testing.T) {
	var (
		mu      sync.Mutex
		configs []ModelConfig
	)
	loader := func(ctx context.Context, cfg ModelConfig) (completion.Generator, func(), error) {
		mu.Lock()
		configs = append(configs, cfg)
		mu.Unlock()
		return &fakeGen{name: cfg.Backend + ":" + cfg.Model, text: "return err", steps: 1}, func() {}, nil
	}
	loaded := func() []ModelConfig {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(configs)
	}
	e := startEditor(t, Options{Loader: loader})
	caps := map[string]any{"window": map[string]any{"workDoneProgress": true}}
	e.initialize(caps, map[string]any{"dfill": map[string]any{"remote": map[string]any{"url": "http://gpu:8080", "protocol": "dfill"}}})
	e.modelReady()
	if got := loaded(); len(got) != 1 || got[0] != (ModelConfig{Backend: "cpu"}) {
		t.Fatalf("loaded %+v, want the embedded model on cpu, the remote object set aside", got)
	}
	remote := RemoteConfig{URL: "https://api.inceptionlabs.ai", Protocol: "mercury", Model: "mercury-coder", APIKeyEnv: "INCEPTION_API_KEY"}
	e.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"dfill": map[string]any{
		"backend": "remote", "remote": remote}}})
	e.waitFor("$/progress", func(m *wireMsg) bool {
		return strings.Contains(string(m.Params), "dfill-2") && strings.Contains(string(m.Params), `"end"`)
	})
	want := ModelConfig{Model: "mercury-coder", Backend: "remote", Remote: remote}
	if got := loaded(); len(got) != 2 || got[1] != want {
		t.Fatalf("loaded %+v, want %+v last", got, want)
	}
	if st := e.stats(); st.Model != "remote:mercury-coder" {
		t.Errorf("stats.model = %q, want the remote generator", st.Model)
	}
	e.call("shutdown", nil)
	e.notify("exit", nil)
	e.exitStatus()
}

func TestModelLoadFailure(t *testing.T) {
	loader := func(ctx context.Context, cfg ModelConfig) (completion.Generator, func(), error) {
		return nil, nil, errors.New("open missing.gguf: no such file or directory")
	}
	e := startEditor(t, Options{Loader: loader})
	e.initialize(nil, nil)
	m := e.waitFor("window/showMessage", nil)
	var sm protocol.ShowMessageParams
	if err := protocol.Unmarshal(m.Params, &sm); err != nil {
		t.Fatal(err)
	}
	if sm.Type != protocol.MessageTypeError || !strings.Contains(sm.Message, "missing.gguf") {
		t.Errorf("showMessage = %+v", sm)
	}
	e.open("file:///w/main.go", "go", goSource)
	if list := e.inline("file:///w/main.go", 5, 1, invokedInline); len(list.Items) != 0 {
		t.Errorf("items without a model: %+v", list.Items)
	}
	if st := e.stats(); !strings.Contains(st.ModelError, "missing.gguf") {
		t.Errorf("stats.modelError = %q", st.ModelError)
	}
}

// TestBeforeModelLoads: a request that comes while the model loads waits
// for it and is answered, rather than answering nothing (VS Code asks
// again only at the next keystroke).
func TestBeforeModelLoads(t *testing.T) {
	release := make(chan struct{})
	loader := func(ctx context.Context, cfg ModelConfig) (completion.Generator, func(), error) {
		<-release
		return &fakeGen{text: "fmt.Println()"}, nil, nil
	}
	e := startEditor(t, Options{Loader: loader})
	e.initialize(nil, nil)
	e.open("file:///w/main.go", "go", goSource)
	line, col := lineCol(goSource, "\t\n}")
	_, ch := e.start("textDocument/inlineCompletion", inlineParams("file:///w/main.go", line, col+1, invokedInline))
	e.stats()
	close(release)
	m := e.wait(ch)
	if m.Error != nil || !strings.Contains(string(m.Result), "Println") {
		t.Errorf("request made while the model loaded answered %s %+v, want the completion", m.Result, m.Error)
	}
}

func TestOneGenerationAtATime(t *testing.T) {
	e, gen := blocked(t)
	e.open("file:///w/other.go", "go", goSource)
	line, col := lineCol(goSource, "\t\n}")
	_, first := e.start("textDocument/inlineCompletion", inlineParams("file:///w/main.go", line, col+1, invokedInline))
	waitStarted(t, gen)
	// A request for another document waits for the running generation and
	// gives up at once when cancelled.
	id, second := e.start("textDocument/inlineCompletion", inlineParams("file:///w/other.go", line, col+1, invokedInline))
	e.stats()
	e.notify("$/cancelRequest", map[string]any{"id": id})
	if m := e.wait(second); m.Error == nil || m.Error.Code != int(protocol.CodeRequestCancelled) {
		t.Fatalf("waiting request answered %s %+v, want -32800", m.Result, m.Error)
	}
	if n := gen.calls.Load(); n != 1 {
		t.Errorf("generator called %d times, want 1", n)
	}
	close(gen.release)
	if m := e.wait(first); m.Error != nil {
		t.Fatalf("running request failed: %+v", m.Error)
	}
}

// TestClientClosesMidCompletion: an editor that closes the stream while a
// completion runs and another waits ends the session: jsonrpc2 reports its
// connection done only once every handler has returned, so the server must
// see the end of the stream itself. (The editor's cleanup checks that Serve
// returns.)
func TestClientClosesMidCompletion(t *testing.T) {
	e, gen := blocked(t)
	line, col := lineCol(goSource, "\t\n}")
	e.start("textDocument/inlineCompletion", inlineParams("file:///w/main.go", line, col+1, automaticInline))
	waitStarted(t, gen)
	e.start("textDocument/inlineCompletion", inlineParams("file:///w/main.go", line, col+2, automaticInline))
	e.stats()
}

// TestCompletionFailureShown checks that a completion failing in the
// generator (a remote server that refuses) is shown to the user once, not
// on every keystroke, and again after a success.
func TestCompletionFailureShown(t *testing.T) {
	gen := &fakeGen{text: "fmt.Println()"}
	refused := errors.New("POST http://gpu:8080/v1/fim/completions: 503 Service Unavailable: overloaded")
	gen.fail.Store(ptr(fmt.Errorf("completion: remote: %w", refused)))
	e := ready(t, testOptions(t, gen), nil)
	for range 3 {
		if got := e.inline("file:///w/main.go", 5, 1, invokedInline); len(got.Items) != 0 {
			t.Errorf("a failing generator gave items %+v", got.Items)
		}
	}
	m := e.waitFor("window/showMessage", nil)
	if !strings.Contains(string(m.Params), "503 Service Unavailable: overloaded") {
		t.Errorf("showMessage %s, want it to say why", m.Params)
	}
	e.stats() // every message sent before this answer has arrived
	if n := e.count("window/showMessage"); n != 1 {
		t.Errorf("%d messages for one failure three times, want 1", n)
	}
	gen.fail.Store(nil)
	if got := e.inline("file:///w/main.go", 5, 1, invokedInline); len(got.Items) == 0 {
		t.Fatal("no items once the generator answers")
	}
	gen.fail.Store(ptr(fmt.Errorf("remote: waiting after a failure (asking again in 1s): %w", refused)))
	e.inline("file:///w/main.go", 5, 0, automaticInline) // elsewhere: not the cached answer
	e.stats()
	if n := e.count("window/showMessage"); n != 2 {
		t.Errorf("%d messages, want 2: the failure again after a success", n)
	}
}
