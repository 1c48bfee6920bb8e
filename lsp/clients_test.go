package lsp

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.lsp.dev/protocol"

	"github.com/dfill/dfill/completion"
)

// The tests in this file replay what real clients sent: VS Code
// (vscode-languageclient 11), eglot (Emacs 28 and 30) and Neovim's
// omnifunc (0.7).

// vscodeCaps declares inline completion, as vscode-languageclient 11 does.
var vscodeCaps = map[string]any{
	"textDocument": map[string]any{
		"inlineCompletion": map[string]any{"dynamicRegistration": true},
		"completion":       map[string]any{"contextSupport": true},
	},
}

// TestVSCodeCompletionAndInlineCompletion: VS Code sends a completion and
// an inline completion for each keystroke; neither may cancel the other,
// and they share one generation.
func TestVSCodeCompletionAndInlineCompletion(t *testing.T) {
	for _, first := range []string{"textDocument/inlineCompletion", "textDocument/completion"} {
		t.Run(first, func(t *testing.T) {
			gen := &fakeGen{text: "fmt.Println()", started: make(chan struct{}, 4), release: make(chan struct{})}
			e := ready(t, testOptions(t, gen), vscodeCaps)
			e.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"dfill": map[string]any{"completionItems": "always"}}})
			line, col := lineCol(goSource, "\t\n}")
			inline := inlineParams("file:///w/main.go", line, col+1, automaticInline)
			compl := completionParams("file:///w/main.go", line, col+1, protocol.CompletionTriggerKindInvoked)
			var a, b <-chan *wireMsg
			if first == "textDocument/inlineCompletion" {
				_, a = e.start("textDocument/inlineCompletion", inline)
				waitStarted(t, gen)
				_, b = e.start("textDocument/completion", compl)
			} else {
				_, a = e.start("textDocument/completion", compl)
				waitStarted(t, gen)
				_, b = e.start("textDocument/inlineCompletion", inline)
			}
			e.stats() // the second request is in the server
			close(gen.release)
			for i, ch := range []<-chan *wireMsg{a, b} {
				m := e.wait(ch)
				if m.Error != nil {
					t.Fatalf("request %d answered error %d %q, want a result", i+1, m.Error.Code, m.Error.Message)
				}
				if !strings.Contains(string(m.Result), "Println") {
					t.Errorf("request %d answered %s, want the completion", i+1, m.Result)
				}
			}
			if first == "textDocument/inlineCompletion" {
				// The completion (invoked: several candidates wanted) may
				// need its own generation; an automatic inline request
				// waiting on an invoked one takes its answer.
				return
			}
			if n := gen.calls.Load(); n != 1 {
				t.Errorf("generator called %d times, want 1 (one generation for both)", n)
			}
		})
	}
}

// TestCompletionItemsSetting: plain items are off by default for a client
// that shows inline completions (VS Code), on for one that does not
// (eglot), and the setting overrides both ways.
func TestCompletionItemsSetting(t *testing.T) {
	tests := []struct {
		name    string
		caps    any
		setting string
		want    bool
	}{
		{"VS Code, auto", vscodeCaps, "", false},
		{"VS Code, always", vscodeCaps, "always", true},
		{"eglot, auto", map[string]any{}, "auto", true},
		{"eglot, never", map[string]any{}, "never", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEditor(t, testOptions(t, &fakeGen{text: "fmt.Println()"}))
			e.initialize(tt.caps, map[string]any{"completionItems": tt.setting})
			e.modelReady()
			e.open("file:///w/main.go", "go", goSource)
			line, col := lineCol(goSource, "\t\n}")
			list := e.complete("file:///w/main.go", line, col+1, protocol.CompletionTriggerKindInvoked)
			if got := len(list.Items) > 0; got != tt.want {
				t.Errorf("items %+v, want some: %v", list.Items, tt.want)
			}
			if inl := e.inline("file:///w/main.go", line, col+1, invokedInline); len(inl.Items) == 0 {
				t.Error("no inline items")
			}
		})
	}
}

// TestEglotWordFilter: with the cursor after "\t\tre", eglot (and VS Code)
// match items against the word before the cursor; the item must start
// there and read as the line will.
func TestEglotWordFilter(t *testing.T) {
	const doc = "package p\n\nfunc f() error {\n\terr := g()\n\tif err != nil {\n\t\tre\n\t}\n\treturn nil\n}\n"
	e := ready(t, testOptions(t, &fakeGen{text: "turn err"}), map[string]any{})
	e.open("file:///w/f.go", "go", doc)
	line, col := lineCol(doc, "\t\tre\n")
	list := e.complete("file:///w/f.go", line, col+4, protocol.CompletionTriggerKindInvoked)
	if len(list.Items) != 1 {
		t.Fatalf("items %+v, want one", list.Items)
	}
	it := list.Items[0]
	te, _ := it.TextEdit.(*protocol.TextEdit)
	if te == nil || te.NewText != "return err" || te.Range.Start != (Position{Line: line, Character: col + 2}) || te.Range.End != (Position{Line: line, Character: col + 4}) {
		t.Errorf("textEdit %+v, want \"return err\" over the word \"re\"", it.TextEdit)
	}
	if ft, _ := it.FilterText.Get(); !strings.HasPrefix(ft, "re") {
		t.Errorf("filterText %q, want it to begin with the word \"re\"", ft)
	}
	if it.Label != "return err" {
		t.Errorf("label %q, want the line as it will read", it.Label)
	}
}

// TestNeovimOmnifuncHasNoContext: Neovim's omnifunc sends completion
// without a context (contextSupport false); that is an explicit request,
// which gets several items, where an automatic one gets the best.
func TestNeovimOmnifuncHasNoContext(t *testing.T) {
	gen := &fakeGen{text: "fmt.Println()", more: []string{"fmt.Println(1)"}}
	e := ready(t, testOptions(t, gen), map[string]any{"textDocument": map[string]any{"completion": map[string]any{"contextSupport": false}}})
	line, col := lineCol(goSource, "\t\n}")
	raw := e.call("textDocument/completion", map[string]any{
		"textDocument": map[string]any{"uri": "file:///w/main.go"},
		"position":     map[string]any{"line": line, "character": col + 1},
	})
	var list protocol.CompletionList
	if raw.Error != nil || protocol.Unmarshal(raw.Result, &list) != nil {
		t.Fatalf("answer %s %+v", raw.Result, raw.Error)
	}
	if len(list.Items) != 2 {
		t.Errorf("%d items, want both candidates (an explicit request)", len(list.Items))
	}
	auto := e.complete("file:///w/main.go", line, col+1, protocol.CompletionTriggerKindTriggerForIncompleteCompletions)
	if len(auto.Items) != 1 {
		t.Errorf("an automatic request got %d items, want the best one", len(auto.Items))
	}
}

// TestDistinctLabels: eglot merges items with the same label, so the
// one-line and the two-line form of an answer must read differently.
func TestDistinctLabels(t *testing.T) {
	doc := "package p\n\nfunc f() (int, bool) {\n\t\n}\n"
	e := ready(t, testOptions(t, &fakeGen{text: "return 0, true", more: []string{"return 0, true\n\t// done"}}), map[string]any{})
	e.open("file:///w/f.go", "go", doc)
	line, col := lineCol(doc, "\t\n}")
	list := e.complete("file:///w/f.go", line, col+1, protocol.CompletionTriggerKindInvoked)
	if len(list.Items) != 2 {
		t.Fatalf("items %+v, want two", list.Items)
	}
	if list.Items[0].Label == list.Items[1].Label {
		t.Errorf("two items labelled %q", list.Items[0].Label)
	}
	for _, it := range list.Items {
		te := it.TextEdit.(*protocol.TextEdit)
		if strings.Contains(te.NewText, "\n") != strings.HasSuffix(it.Label, " …") {
			t.Errorf("label %q does not say whether %q is multi-line", it.Label, te.NewText)
		}
	}
}

// TestPositionOutsideDocument: a client whose copy is out of sync asks at
// line 500 of a 27-line file: the answer is empty, never an item
// somewhere else; positions inside are answered.
func TestPositionOutsideDocument(t *testing.T) {
	e := ready(t, testOptions(t, &fakeGen{text: "x := 1"}), map[string]any{})
	if list := e.inline("file:///w/main.go", 500, 0, invokedInline); len(list.Items) != 0 {
		t.Errorf("inline items %+v for a line past the end", list.Items)
	}
	if list := e.complete("file:///w/main.go", 500, 0, protocol.CompletionTriggerKindInvoked); len(list.Items) != 0 {
		t.Errorf("completion items %+v for a line past the end", list.Items)
	}
	line, col := lineCol(goSource, "\t\n}")
	if list := e.inline("file:///w/main.go", line, col+1, invokedInline); len(list.Items) == 0 {
		t.Error("no items inside the document")
	}
}

// TestBadSettings: out-of-range settings are refused with a message that
// names the key, and the previous value stays in force.
func TestBadSettings(t *testing.T) {
	gen := &fakeGen{text: "fmt.Println()"}
	e := ready(t, testOptions(t, gen), map[string]any{})
	e.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"dfill": map[string]any{
		"algorithm": "nope", "threshold": -5, "contextTokens": -1, "steps": "abc"}}})
	m := e.waitFor("window/showMessage", nil)
	var sm protocol.ShowMessageParams
	if err := protocol.Unmarshal(m.Params, &sm); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"algorithm": "nope"`, `"threshold": -5`, `"contextTokens": -1`, `"steps": "abc"`} {
		if !strings.Contains(sm.Message, key) {
			t.Errorf("message %q does not name %s", sm.Message, key)
		}
	}
	line, col := lineCol(goSource, "\t\n}")
	if list := e.inline("file:///w/main.go", line, col+1, invokedInline); len(list.Items) == 0 {
		t.Error("completions stopped after refused settings")
	}
}

// TestSettingsDropCache: a setting that changes answers is not answered
// from what the cache holds for the old one.
func TestSettingsDropCache(t *testing.T) {
	gen := &fakeGen{text: "fmt.Println()"}
	e := ready(t, testOptions(t, gen), map[string]any{})
	line, col := lineCol(goSource, "\t\n}")
	e.inline("file:///w/main.go", line, col+1, automaticInline)
	e.inline("file:///w/main.go", line, col+1, automaticInline)
	if n := gen.calls.Load(); n != 1 {
		t.Fatalf("generator called %d times for the same place, want 1 (the cache)", n)
	}
	e.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"dfill": map[string]any{"steps": 3}}})
	e.stats() // the notification is applied
	e.inline("file:///w/main.go", line, col+1, automaticInline)
	if n := gen.calls.Load(); n != 2 {
		t.Errorf("generator called %d times, want 2: the steps changed", n)
	}
}

// TestBlockedLoaderDoesNotHoldExit: a model load that never returns (a
// FIFO, a stale network mount) does not keep the server from exiting
// after shutdown and exit.
func TestBlockedLoaderDoesNotHoldExit(t *testing.T) {
	never := make(chan struct{})
	defer close(never)
	loader := func(ctx context.Context, cfg ModelConfig) (completion.Generator, func(), error) {
		<-never // ignores ctx, as a blocked open(2) does
		return nil, nil, context.Canceled
	}
	e := startEditor(t, Options{Loader: loader})
	e.initialize(nil, nil)
	e.callOK("shutdown", nil, nil)
	start := time.Now()
	e.notify("exit", nil)
	if s := e.exitStatus(); s.code != 0 {
		t.Errorf("exit code %d, want 0", s.code)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("exit took %v", took) // a bound against a hang, not a timing
	}
}
