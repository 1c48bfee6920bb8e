package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.lsp.dev/jsonrpc2"
)

// buildDfill builds the dfill binary into a temporary directory, once per
// test binary run.
var buildDfill = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "dfill-e2e")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "dfill")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", errors.New("go build: " + err.Error() + "\n" + string(out))
	}
	return bin, nil
})

// lspProcess is a dfill serve child spoken to over stdio, as an editor does.
type lspProcess struct {
	cmd  *exec.Cmd
	conn jsonrpc2.Conn

	mu    sync.Mutex
	notes map[string][]json.RawMessage
}

type pipeRWC struct {
	io.ReadCloser
	io.WriteCloser
}

func (p pipeRWC) Close() error { return errors.Join(p.WriteCloser.Close(), p.ReadCloser.Close()) }

func startServe(t *testing.T, args ...string) *lspProcess {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the dfill binary")
	}
	bin, err := buildDfill()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Stderr = &testWriter{t: t}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &lspProcess{cmd: cmd, notes: map[string][]json.RawMessage{}}
	p.conn = jsonrpc2.NewConn(jsonrpc2.NewStream(pipeRWC{stdout, stdin}))
	p.conn.Go(context.Background(), func(ctx context.Context, req *jsonrpc2.Request) (any, error) {
		p.mu.Lock()
		m := strings.Clone(req.Method()) // borrowed from the frame
		p.notes[m] = append(p.notes[m], json.RawMessage(bytes.Clone(req.Params())))
		p.mu.Unlock()
		return nil, nil // answers window/workDoneProgress/create and the like with null
	})
	t.Cleanup(func() {
		p.conn.Close()
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return p
}

// testWriter sends the child's stderr (its logs) to the test log.
type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Logf("dfill: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (p *lspProcess) call(t *testing.T, method string, params, result any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := p.conn.Call(ctx, method, params, result)
	return err
}

func (p *lspProcess) notify(t *testing.T, method string, params any) {
	t.Helper()
	if err := p.conn.Notify(context.Background(), method, params); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
}

// waitNote waits for a notification from the server (a bound on a hang,
// not a timing assertion).
func (p *lspProcess) waitNote(t *testing.T, method string) json.RawMessage {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		p.mu.Lock()
		ns := p.notes[method]
		p.mu.Unlock()
		if len(ns) > 0 {
			return ns[0]
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t.Fatalf("no %s from dfill serve (got %d kinds of message: %v)", method, len(p.notes), slices.Collect(maps.Keys(p.notes)))
	return nil
}

// wait waits for the child to exit and returns its exit status.
func (p *lspProcess) wait(t *testing.T) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		p.cmd.Process.Kill()
		t.Fatal("dfill serve did not exit")
	}
	return p.cmd.ProcessState.ExitCode()
}

// waitModel waits (a minute at most) until the server serves the model
// named want, or any model when want is "", and fails at a load error.
func (p *lspProcess) waitModel(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		var st struct {
			Model      string `json:"model"`
			ModelError string `json:"modelError"`
		}
		if err := p.call(t, "dfill/stats", nil, &st); err != nil {
			t.Fatal(err)
		}
		if st.ModelError != "" {
			t.Fatalf("model error: %s", st.ModelError)
		}
		if want == "" && st.Model != "" || want != "" && st.Model == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("model %q did not load (serving %q)", want, st.Model)
		}
	}
}

func (p *lspProcess) initialize(t *testing.T) {
	p.initializeWith(t, nil)
}

// initializeWith initializes with opts as initializationOptions (the
// dfill settings section) when it is not nil.
func (p *lspProcess) initializeWith(t *testing.T, opts map[string]any) {
	t.Helper()
	var res struct {
		Capabilities struct {
			PositionEncoding         string `json:"positionEncoding"`
			InlineCompletionProvider bool   `json:"inlineCompletionProvider"`
		} `json:"capabilities"`
	}
	params := map[string]any{
		"processId":    os.Getpid(),
		"capabilities": map[string]any{"window": map[string]any{"workDoneProgress": true}},
	}
	if opts != nil {
		params["initializationOptions"] = opts
	}
	err := p.call(t, "initialize", params, &res)
	if err != nil {
		t.Fatalf("initialize: %v", err)
	}
	if !res.Capabilities.InlineCompletionProvider || res.Capabilities.PositionEncoding != "utf-16" {
		t.Errorf("capabilities: %+v", res.Capabilities)
	}
	p.notify(t, "initialized", map[string]any{})
}

func TestServeE2E(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.gguf")
	p := startServe(t, "--model", missing, "--log-level", "debug")
	p.initialize(t)

	// The model does not exist: the server says so and keeps serving.
	msg := p.waitNote(t, "window/showMessage")
	if !strings.Contains(string(msg), "missing.gguf") {
		t.Errorf("showMessage %s does not name the model", msg)
	}
	const text = "package main\n\nfunc main() {\n\t\n}\n"
	p.notify(t, "textDocument/didOpen", map[string]any{"textDocument": map[string]any{
		"uri": "file:///tmp/main.go", "languageId": "go", "version": 1, "text": text}})
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	err := p.call(t, "textDocument/inlineCompletion", map[string]any{
		"textDocument": map[string]any{"uri": "file:///tmp/main.go"},
		"position":     map[string]any{"line": 3, "character": 1},
		"context":      map[string]any{"triggerKind": 1},
	}, &list)
	if err != nil {
		t.Fatalf("inlineCompletion: %v", err)
	}
	if len(list.Items) != 0 {
		t.Errorf("items without a model: %s", list.Items)
	}
	if err := p.call(t, "shutdown", nil, nil); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	p.notify(t, "exit", nil)
	if code := p.wait(t); code != 0 {
		t.Errorf("exit status %d after shutdown, want 0", code)
	}
}

func TestServeE2EExitWithoutShutdown(t *testing.T) {
	p := startServe(t, "--model", filepath.Join(t.TempDir(), "missing.gguf"))
	p.initialize(t)
	p.notify(t, "exit", nil)
	if code := p.wait(t); code != 1 {
		t.Errorf("exit status %d without shutdown, want 1", code)
	}
}

// TestServeE2ERandomModel serves a tiny random-weight model written by
// dfill model random: the model loads with progress and a completion
// request is answered (random weights propose nothing useful, so only the
// answer's shape is checked).
func TestServeE2ERandomModel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the dfill binary")
	}
	bin, err := buildDfill()
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(t.TempDir(), "tiny.gguf")
	if out, err := exec.Command(bin, "model", "random", "-preset", "tiny", "-out", model).CombinedOutput(); err != nil {
		t.Fatalf("dfill model random: %v\n%s", err, out)
	}
	serveAndComplete(t, "", "--model", model, "--log-level", "debug")
}

// TestServeE2EEmbeddedModel serves the embedded model, as an editor that
// starts `dfill serve` with no flags gets it, and asks where the model is
// known to answer: the blank line in the body of `if err != nil {`, which
// it fills with `return err`.
func TestServeE2EEmbeddedModel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the dfill binary")
	}
	serveAndComplete(t, "return err", "--log-level", "debug")
}

// serveAndComplete starts dfill serve with args, waits for its model to
// load, asks for one inline completion at the blank line (8) of
// testdata/sample.go and shuts the server down. The first item must hold
// want; with want "" (a model that proposes nothing useful) only the
// items' shape is checked.
func serveAndComplete(t *testing.T, want string, args ...string) {
	serveAndCompleteWith(t, nil, want, args...)
}

// serveAndCompleteWith is serveAndComplete with the settings opts sent as
// initializationOptions.
func serveAndCompleteWith(t *testing.T, opts map[string]any, want string, args ...string) {
	p := startServe(t, args...)
	p.initializeWith(t, opts)
	p.waitModel(t, "")
	if msg := p.waitNote(t, "$/progress"); !strings.Contains(string(msg), "begin") {
		t.Errorf("first progress %s, want begin", msg)
	}
	text, err := os.ReadFile("testdata/sample.go")
	if err != nil {
		t.Fatal(err)
	}
	const line = 7 // 0-based: the blank line in the body of `if err != nil {`
	if lines := strings.Split(string(text), "\n"); len(lines) <= line || lines[line] != "" || !strings.Contains(lines[line-1], "if err != nil {") {
		t.Fatalf("testdata/sample.go line %d is not the blank line after `if err != nil {`", line+1)
	}
	const uri = "file:///tmp/sample.go"
	p.notify(t, "textDocument/didOpen", map[string]any{"textDocument": map[string]any{
		"uri": uri, "languageId": "go", "version": 1, "text": string(text)}})
	var list struct {
		Items []struct {
			InsertText string `json:"insertText"`
			Range      *struct {
				Start struct {
					Line      int `json:"line"`
					Character int `json:"character"`
				} `json:"start"`
			} `json:"range"`
		} `json:"items"`
	}
	err = p.call(t, "textDocument/inlineCompletion", map[string]any{
		"textDocument": map[string]any{"uri": uri},
		"position":     map[string]any{"line": line, "character": 0},
		"context":      map[string]any{"triggerKind": 1},
	}, &list)
	if err != nil {
		t.Fatalf("inlineCompletion: %v", err)
	}
	for _, it := range list.Items {
		t.Logf("item %q at %+v", it.InsertText, it.Range)
		if it.Range == nil || it.Range.Start.Line != line || it.Range.Start.Character != 0 {
			t.Errorf("item %q does not start at the cursor", it.InsertText)
		}
	}
	if want != "" && (len(list.Items) == 0 || !strings.Contains(list.Items[0].InsertText, want)) {
		t.Errorf("inline completion at line %d: %d items, want a first one holding %q", line+1, len(list.Items), want)
	}
	if err := p.call(t, "shutdown", nil, nil); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	p.notify(t, "exit", nil)
	if code := p.wait(t); code != 0 {
		t.Errorf("exit status %d after shutdown, want 0", code)
	}
}

// TestServeE2EModelIsAFIFO: a model path that would block on open (a
// FIFO; a stale network mount blocks the same way) is refused with a
// message that says what it is, and the server still exits at once after
// shutdown and exit.
func TestServeE2EModelIsAFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "model.gguf")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, "--model", fifo)
	p.initialize(t)
	if msg := p.waitNote(t, "window/showMessage"); !strings.Contains(string(msg), "named pipe") {
		t.Errorf("showMessage %s does not say the model is a named pipe", msg)
	}
	if err := p.call(t, "shutdown", nil, nil); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	start := time.Now()
	p.notify(t, "exit", nil)
	if code := p.waitWithin(t, 5*time.Second); code != 0 {
		t.Errorf("exit status %d after shutdown, want 0", code)
	}
	t.Logf("exited %v after exit", time.Since(start))
}

// TestCompleteModelIsAFIFO: dfill complete with a FIFO as the model ends
// with an error naming it instead of hanging, and SIGTERM ends a serve
// that is waiting on its input.
func TestCompleteModelIsAFIFOAndSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the dfill binary")
	}
	bin, err := buildDfill()
	if err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(t.TempDir(), "model.gguf")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "complete", "--model", fifo, "testdata/sample.go:8:1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := runWithin(cmd, 20*time.Second); err == nil || !strings.Contains(stderr.String(), "named pipe") {
		t.Errorf("dfill complete --model FIFO: %v, stderr %q; want an error naming a named pipe", err, stderr.String())
	}

	serve := exec.Command(bin, "serve")
	stdin, err := serve.StdinPipe() // kept open: serve waits for input
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let it install its signal handler
	serve.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- serve.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		serve.Process.Kill()
		t.Fatal("dfill serve did not end on SIGTERM")
	}
}

// runWithin runs cmd, killing it after d.
func runWithin(cmd *exec.Cmd, d time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return errors.New("still running after " + d.String())
	}
}

// waitWithin waits for the server to exit, failing the test when it runs
// past d (a bound against a hang, not a timing).
func (p *lspProcess) waitWithin(t *testing.T, d time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(d):
		p.cmd.Process.Kill()
		<-done
		t.Fatalf("dfill serve still running %v after exit", d)
	}
	return p.cmd.ProcessState.ExitCode()
}
