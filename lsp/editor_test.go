package lsp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.lsp.dev/protocol"
	"go.lsp.dev/uri"
	"go.uber.org/zap/zaptest"

	"github.com/dfill/dfill/completion"
	"github.com/dfill/dfill/fim"
)

// hang bounds every wait of the fake editor. It is not a timing assertion:
// it only turns a hung server into a test failure instead of a test timeout.
const hang = 20 * time.Second

// wireMsg is any JSON-RPC message as the editor sees it.
type wireMsg struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *wireErr        `json:"error,omitempty"`
}

type wireErr struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// editor is an in-memory LSP client driving a Server over net.Pipe, as
// gopls' integration tests and starlark-lsp's fixture do.
type editor struct {
	t    *testing.T
	conn net.Conn
	wmu  sync.Mutex
	seq  atomic.Int64

	// mu guards the fields below.
	mu       sync.Mutex
	waiting  map[string]chan *wireMsg // by id
	nullErrs []*wireMsg               // responses with a null id
	notes    []*wireMsg               // notifications and server requests, in order
	changed  chan struct{}            // closed and replaced on every new message
	config   json.RawMessage          // the answer to workspace/configuration

	served chan served
}

type served struct {
	code int
	err  error
}

// startEditor starts a server with opts and returns an editor connected to it.
func startEditor(t *testing.T, opts Options) *editor {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t)
	}
	client, server := net.Pipe()
	e := &editor{
		t:       t,
		conn:    client,
		waiting: make(map[string]chan *wireMsg),
		changed: make(chan struct{}),
		served:  make(chan served, 1),
	}
	go func() {
		code, err := Serve(context.Background(), server, opts)
		e.served <- served{code, err}
	}()
	go e.read()
	t.Cleanup(func() {
		client.Close()
		select {
		case <-e.served:
		case <-time.After(hang):
			t.Error("server did not stop after the client closed the stream")
		}
	})
	return e
}

// read dispatches what the server sends.
func (e *editor) read() {
	r := bufio.NewReader(e.conn)
	tp := textproto.NewReader(r)
	for {
		h, err := tp.ReadMIMEHeader()
		if err != nil {
			return
		}
		n, err := strconv.Atoi(h.Get("Content-Length"))
		if err != nil {
			e.t.Errorf("server sent a bad header: %v", h)
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		m := new(wireMsg)
		if err := json.Unmarshal(body, m); err != nil {
			e.t.Errorf("server sent bad JSON: %v: %s", err, body)
			return
		}
		e.mu.Lock()
		switch {
		case m.Method != "":
			e.notes = append(e.notes, m)
			if len(m.ID) > 0 {
				go e.answer(m)
			}
		case string(m.ID) == "null" || len(m.ID) == 0:
			e.nullErrs = append(e.nullErrs, m)
		default:
			if ch := e.waiting[string(m.ID)]; ch != nil {
				ch <- m
				delete(e.waiting, string(m.ID))
			} else {
				e.t.Errorf("response to an unknown id: %s", body)
			}
		}
		close(e.changed)
		e.changed = make(chan struct{})
		e.mu.Unlock()
	}
}

// answer replies to a request from the server (on its own goroutine, so the
// reader keeps reading while the reply is written).
func (e *editor) answer(m *wireMsg) {
	var result any
	switch m.Method {
	case "workspace/configuration":
		e.mu.Lock()
		cfg := e.config
		e.mu.Unlock()
		if cfg == nil {
			cfg = json.RawMessage("null")
		}
		result = []json.RawMessage{cfg}
	}
	e.send(map[string]any{"jsonrpc": "2.0", "id": m.ID, "result": result})
}

// writeRaw writes bytes to the server as they are.
func (e *editor) writeRaw(b []byte) {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if _, err := e.conn.Write(b); err != nil {
		e.t.Errorf("write: %v", err)
	}
}

// frame returns body with its Content-Length header.
func frame(body []byte) []byte {
	return append([]byte(fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body))), body...)
}

// params encodes a message's params as go.lsp.dev/protocol encodes them
// (its types hold unions and optional fields encoding/json does not know).
func (e *editor) params(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := protocol.Marshal(v)
	if err != nil {
		e.t.Fatalf("params %T: %v", v, err)
	}
	return b
}

func (e *editor) send(msg any) {
	body, err := json.Marshal(msg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.writeRaw(frame(body))
}

// notify sends a notification.
func (e *editor) notify(method string, params any) {
	msg := map[string]any{"jsonrpc": "2.0", "method": method}
	if raw := e.params(params); raw != nil {
		msg["params"] = raw
	}
	e.send(msg)
}

// start sends a request and returns its id and the channel its response
// arrives on.
func (e *editor) start(method string, params any) (int64, <-chan *wireMsg) {
	id := e.seq.Add(1)
	ch := make(chan *wireMsg, 1)
	e.mu.Lock()
	e.waiting[strconv.FormatInt(id, 10)] = ch
	e.mu.Unlock()
	msg := map[string]any{"jsonrpc": "2.0", "id": id, "method": method}
	if raw := e.params(params); raw != nil {
		msg["params"] = raw
	}
	e.send(msg)
	return id, ch
}

// wait returns the response on ch.
func (e *editor) wait(ch <-chan *wireMsg) *wireMsg {
	e.t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(hang):
		e.t.Fatal("no response")
		return nil
	}
}

// call sends a request and waits for its response.
func (e *editor) call(method string, params any) *wireMsg {
	e.t.Helper()
	_, ch := e.start(method, params)
	return e.wait(ch)
}

// callOK calls and decodes the result into result, failing on an error.
func (e *editor) callOK(method string, params, result any) {
	e.t.Helper()
	m := e.call(method, params)
	if m.Error != nil {
		e.t.Fatalf("%s: error %d %s", method, m.Error.Code, m.Error.Message)
	}
	if result != nil {
		if err := protocol.Unmarshal(m.Result, result); err != nil {
			e.t.Fatalf("%s: result %s: %v", method, m.Result, err)
		}
	}
}

// waitFor waits for a message from the server (a notification or a server
// request) with the method that pred accepts, and returns it.
func (e *editor) waitFor(method string, pred func(*wireMsg) bool) *wireMsg {
	e.t.Helper()
	deadline := time.After(hang)
	for i := 0; ; {
		e.mu.Lock()
		for ; i < len(e.notes); i++ {
			if m := e.notes[i]; m.Method == method && (pred == nil || pred(m)) {
				e.mu.Unlock()
				return m
			}
		}
		changed := e.changed
		e.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			e.t.Fatalf("no %s from the server", method)
		}
	}
}

// count returns how many messages with method the server sent so far.
func (e *editor) count(method string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, m := range e.notes {
		if m.Method == method {
			n++
		}
	}
	return n
}

// waitNullError waits for the n-th response with a null id (an answer to a
// message the server could not parse).
func (e *editor) waitNullError(n int) *wireMsg {
	e.t.Helper()
	deadline := time.After(hang)
	for {
		e.mu.Lock()
		if len(e.nullErrs) >= n {
			m := e.nullErrs[n-1]
			e.mu.Unlock()
			return m
		}
		changed := e.changed
		e.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			e.t.Fatalf("no error response with a null id")
		}
	}
}

// exitStatus waits for Serve to return.
func (e *editor) exitStatus() served {
	e.t.Helper()
	select {
	case s := <-e.served:
		e.served <- s
		return s
	case <-time.After(hang):
		e.t.Fatal("server did not exit")
		return served{}
	}
}

// initialize runs the initialize handshake with the given client
// capabilities and initializationOptions (either may be nil).
func (e *editor) initialize(caps, initOptions any) protocol.InitializeResult {
	e.t.Helper()
	if caps == nil {
		caps = map[string]any{}
	}
	var res protocol.InitializeResult
	e.callOK("initialize", map[string]any{
		"processId":             nil,
		"clientInfo":            map[string]any{"name": "fake-editor", "version": "1"},
		"capabilities":          caps,
		"initializationOptions": initOptions,
	}, &res)
	e.notify("initialized", map[string]any{})
	return res
}

func (e *editor) open(uri, languageID, text string) {
	e.notify("textDocument/didOpen", &protocol.DidOpenTextDocumentParams{TextDocument: protocol.TextDocumentItem{
		URI: protocolURI(uri), LanguageID: protocol.LanguageKind(languageID), Version: 1, Text: text}})
}

func (e *editor) change(uri string, version int32, changes ...protocol.TextDocumentContentChangeEvent) {
	e.notify("textDocument/didChange", &protocol.DidChangeTextDocumentParams{
		TextDocument: protocol.VersionedTextDocumentIdentifier{
			TextDocumentIdentifier: protocol.TextDocumentIdentifier{URI: protocolURI(uri)}, Version: version},
		ContentChanges: changes,
	})
}

// edit is one content change: r replaced by text, or the whole document
// when r is nil.
func edit(r *Range, text string) protocol.TextDocumentContentChangeEvent {
	if r == nil {
		return &protocol.TextDocumentContentChangeWholeDocument{Text: text}
	}
	return &protocol.TextDocumentContentChangePartial{Range: *r, Text: text}
}

// protocolURI is a document URI as the protocol types hold it.
func protocolURI(s string) uri.URI { return uri.URI(s) }

// at is the text document and position params of a request.
func at(docURI string, line, char uint32) protocol.TextDocumentPositionParams {
	return protocol.TextDocumentPositionParams{
		TextDocument: protocol.TextDocumentIdentifier{URI: protocolURI(docURI)},
		Position:     Position{Line: line, Character: char},
	}
}

// Inline completion trigger kinds, short.
const (
	invokedInline   = protocol.InlineCompletionTriggerKindInvoked
	automaticInline = protocol.InlineCompletionTriggerKindAutomatic
)

func inlineParams(uri string, line, char uint32, trigger protocol.InlineCompletionTriggerKind) *protocol.InlineCompletionParams {
	return &protocol.InlineCompletionParams{
		TextDocumentPositionParams: at(uri, line, char),
		Context:                    protocol.InlineCompletionContext{TriggerKind: trigger},
	}
}

// completionParams are the params of a completion request; kind 0 sends
// no context (as Neovim's omnifunc does).
func completionParams(uri string, line, char uint32, kind protocol.CompletionTriggerKind) *protocol.CompletionParams {
	return &protocol.CompletionParams{
		TextDocumentPositionParams: at(uri, line, char),
		Context:                    protocol.CompletionContext{TriggerKind: kind},
	}
}

// complete requests plain completion and decodes the list.
func (e *editor) complete(uri string, line, char uint32, kind protocol.CompletionTriggerKind) protocol.CompletionList {
	e.t.Helper()
	var list protocol.CompletionList
	e.callOK("textDocument/completion", completionParams(uri, line, char, kind), &list)
	return list
}

// insertText returns an inline item's text.
func insertText(it protocol.InlineCompletionItem) string {
	if s, ok := it.InsertText.(protocol.String); ok {
		return string(s)
	}
	return ""
}

// inline requests inline completion and decodes the list.
func (e *editor) inline(uri string, line, char uint32, trigger protocol.InlineCompletionTriggerKind) protocol.InlineCompletionList {
	e.t.Helper()
	var list protocol.InlineCompletionList
	e.callOK("textDocument/inlineCompletion", inlineParams(uri, line, char, trigger), &list)
	return list
}

// stats calls dfill/stats: a cheap request that shows the server serves.
func (e *editor) stats() Stats {
	e.t.Helper()
	var st Stats
	e.callOK("dfill/stats", nil, &st)
	return st
}

// fakeGen is a completion.Generator that proposes a fixed text, optionally
// waiting to be released first and reporting denoising steps.
type fakeGen struct {
	name    string
	text    string
	steps   int
	started chan struct{} // receives once per Infill call, if non-nil
	release chan struct{} // Infill waits for it (or ctx), if non-nil
	panics  bool
	calls   atomic.Int32
	// more are further candidates, less confident than text.
	more []string
	// fail, when it holds an error, is what Infill returns.
	fail atomic.Pointer[error]
}

func (g *fakeGen) Infill(ctx context.Context, p fim.Prompt, opt completion.GenerateOptions, onStep func(completion.Step)) ([]completion.Candidate, error) {
	g.calls.Add(1)
	if err := g.fail.Load(); err != nil {
		return nil, *err
	}
	if g.panics {
		panic("fake generator panics")
	}
	if g.started != nil {
		select {
		case g.started <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if g.release != nil {
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	steps := max(g.steps, 1)
	for i := 1; i <= steps; i++ {
		if onStep != nil {
			onStep(completion.Step{Step: i, Steps: steps, Text: g.text[:len(g.text)*i/steps]})
		}
	}
	out := []completion.Candidate{{Text: g.text, Confidence: 0.9, Steps: steps}}
	for i, m := range g.more {
		out = append(out, completion.Candidate{Text: m, Confidence: 0.8 - 0.1*float64(i), Steps: steps})
	}
	return out, nil
}

func (g *fakeGen) CountTokens(s string) int { return len(s)/4 + 1 }
func (g *fakeGen) ContextTokens() int       { return 4096 }
func (g *fakeGen) Name() string {
	if g.name == "" {
		return "fake"
	}
	return g.name
}

// loaderOf returns a Loader that hands out gen and counts releases.
func loaderOf(gen completion.Generator, released *atomic.Int32) Loader {
	return func(ctx context.Context, cfg ModelConfig) (completion.Generator, func(), error) {
		return gen, func() {
			if released != nil {
				released.Add(1)
			}
		}, nil
	}
}

// modelReady waits until dfill/stats names a loaded model.
func (e *editor) modelReady() {
	e.t.Helper()
	deadline := time.Now().Add(hang)
	for time.Now().Before(deadline) {
		if st := e.stats(); st.Model != "" || st.ModelError != "" {
			return
		}
		time.Sleep(time.Millisecond)
	}
	e.t.Fatal("model did not load")
}

// lineCol returns the line and UTF-16 column of the first occurrence of
// marker in text (ASCII text only).
func lineCol(text, marker string) (uint32, uint32) {
	i := strings.Index(text, marker)
	line := strings.Count(text[:i], "\n")
	col := i - (strings.LastIndex(text[:i], "\n") + 1)
	return uint32(line), uint32(col)
}

func timeAfterHang() <-chan time.Time { return time.After(hang) }
