package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"go.lsp.dev/jsonrpc2"

	"github.com/dfill/dfill/lsp"
)

func init() { benches["lsp"] = runBenchLSP }

// benchLSPResult is what dfill bench lsp prints (as a table, or as JSON).
type benchLSPResult struct {
	File        string    `json:"file"`
	StartLine   int       `json:"startLine"`
	Keystrokes  int       `json:"keystrokes"`
	IntervalMs  float64   `json:"intervalMs"`
	DebounceMs  int64     `json:"debounceMs"`
	Model       string    `json:"model"`
	Requests    int       `json:"requests"`
	Answered    int       `json:"answered"`
	WithItems   int       `json:"withItems"`
	Superseded  int       `json:"superseded"`
	Failed      int       `json:"failed"`
	LatencyMs   latencyMs `json:"latencyMs"`
	Server      lsp.Stats `json:"server"`
	PeakRSSMB   float64   `json:"peakRssMB"`
	WallSeconds float64   `json:"wallSeconds"`
}

// latencyMs summarises the latencies of answered requests.
type latencyMs struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	Max float64 `json:"max"`
}

// runBenchLSP starts dfill serve as a child over stdio, opens a real source
// file with a region cut out, and types that region back one character at a
// time as an editor would: one incremental didChange and one automatic
// inlineCompletion per keystroke, sent without waiting for answers.
func runBenchLSP(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench lsp", flag.ContinueOnError)
	sf := addSharedFlags(fs)
	file := fs.String("file", "", "source `file` to type (default: strings/strings.go of the Go installation)")
	start := fs.Int("start", 200, "1-based `line` where typing starts")
	keys := fs.Int("keys", 300, "keystrokes to replay")
	interval := fs.Duration("interval", 30*time.Millisecond, "time between keystrokes")
	debounce := fs.Duration("debounce", 0, "the server's debounceMs setting (0: its default)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	path := *file
	if path == "" {
		path = filepath.Join(goroot(), "src", "strings", "strings.go")
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	plan, err := planTyping(string(src), *start, *keys)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}

	child, err := startChild(ctx, sf)
	if err != nil {
		return err
	}
	defer child.kill()

	settings := map[string]any{}
	if *debounce > 0 {
		settings["debounceMs"] = debounce.Milliseconds()
	}
	res, err := replay(ctx, child.conn, settings, "file://"+filepath.ToSlash(absPath(path)), languageOf(path), plan, *interval)
	if err != nil {
		return err
	}
	res.File, res.StartLine, res.IntervalMs, res.DebounceMs = path, *start, ms(*interval), debounce.Milliseconds()
	res.PeakRSSMB = child.vmHWM()
	if err := child.stop(ctx); err != nil {
		return err
	}
	if rss := child.maxRSS(); rss > res.PeakRSSMB {
		res.PeakRSSMB = rss
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printBenchLSP(os.Stdout, res)
	return nil
}

// keystroke is one typed character: Text inserted at At (a UTF-16 LSP
// position), after which the cursor is at Cursor.
type keystroke struct {
	At, Cursor lsp.Position
	Text       string
}

// typingPlan is a document with a region cut out and the keystrokes that
// type the region back.
type typingPlan struct {
	Initial string
	Keys    []keystroke
}

// planTyping cuts up to keys runes of text, from the start of the 1-based
// line start, and returns the document without them and the keystrokes that
// type them back in.
func planTyping(text string, start, keys int) (typingPlan, error) {
	if start < 1 || keys < 1 {
		return typingPlan{}, fmt.Errorf("start line %d and keystrokes %d must be positive", start, keys)
	}
	begin := 0
	for line := 1; line < start; line++ {
		i := strings.IndexByte(text[begin:], '\n')
		if i < 0 {
			return typingPlan{}, fmt.Errorf("has %d lines, fewer than --start %d", line, start)
		}
		begin += i + 1
	}
	end := begin
	var plan typingPlan
	cur := lsp.Position{Line: uint32(start - 1)}
	for len(plan.Keys) < keys && end < len(text) {
		r, size := utf8.DecodeRuneInString(text[end:])
		k := keystroke{At: cur, Text: text[end : end+size]}
		if r == '\n' {
			cur = lsp.Position{Line: cur.Line + 1}
		} else {
			n := 1
			if size == 4 { // outside the BMP: a surrogate pair
				n = 2
			}
			cur.Character += uint32(n)
		}
		k.Cursor = cur
		plan.Keys = append(plan.Keys, k)
		end += size
	}
	plan.Initial = text[:begin] + text[end:]
	return plan, nil
}

// replay opens the plan's document and types it, sending each keystroke's
// didChange and inlineCompletion without waiting, then waits for every
// answer and asks the server for its own timings.
func replay(ctx context.Context, conn jsonrpc2.Conn, settings map[string]any, uri, languageID string, plan typingPlan, interval time.Duration) (benchLSPResult, error) {
	var res benchLSPResult
	if err := waitModel(ctx, conn, settings, &res); err != nil {
		return res, err
	}
	if err := conn.Notify(ctx, "textDocument/didOpen", lsp.DidOpenTextDocumentParams{TextDocument: lsp.TextDocumentItem{
		URI: uri, LanguageID: languageID, Version: 1, Text: plan.Initial}}); err != nil {
		return res, err
	}
	var (
		wg        sync.Mutex
		pending   sync.WaitGroup
		latencies []time.Duration
	)
	began := time.Now()
	for i, k := range plan.Keys {
		r := lsp.Range{Start: k.At, End: k.At}
		err := conn.Notify(ctx, "textDocument/didChange", lsp.DidChangeTextDocumentParams{
			TextDocument:   lsp.VersionedTextDocumentIdentifier{URI: uri, Version: int32(i + 2)},
			ContentChanges: []lsp.TextDocumentContentChangeEvent{{Range: &r, Text: k.Text}},
		})
		if err != nil {
			return res, err
		}
		params := lsp.InlineCompletionParams{
			TextDocument: lsp.TextDocumentIdentifier{URI: uri},
			Position:     k.Cursor,
			Context:      lsp.InlineCompletionContext{TriggerKind: lsp.InlineTriggerAutomatic},
		}
		pending.Add(1)
		go func() {
			defer pending.Done()
			t0 := time.Now()
			var list lsp.InlineCompletionList
			_, err := conn.Call(ctx, "textDocument/inlineCompletion", params, &list)
			took := time.Since(t0)
			wg.Lock()
			defer wg.Unlock()
			res.Requests++
			var rpcErr *jsonrpc2.Error
			switch {
			case err == nil:
				res.Answered++
				latencies = append(latencies, took)
				if len(list.Items) > 0 {
					res.WithItems++
				}
			case errors.As(err, &rpcErr) && rpcErr.Code == lsp.RequestCancelled:
				res.Superseded++
			default:
				res.Failed++
			}
		}()
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(interval):
		}
	}
	pending.Wait()
	res.WallSeconds = time.Since(began).Seconds()
	res.Keystrokes = len(plan.Keys)
	slices.Sort(latencies)
	if n := len(latencies); n > 0 {
		res.LatencyMs = latencyMs{P50: ms(percentile(latencies, 0.50)), P95: ms(percentile(latencies, 0.95)), Max: ms(latencies[n-1])}
	}
	if _, err := conn.Call(ctx, "dfill/stats", nil, &res.Server); err != nil {
		return res, fmt.Errorf("dfill/stats: %w", err)
	}
	return res, nil
}

// waitModel initializes the session with settings as its
// initializationOptions and waits until the server has loaded its model
// (or failed to).
func waitModel(ctx context.Context, conn jsonrpc2.Conn, settings map[string]any, res *benchLSPResult) error {
	var init lsp.InitializeResult
	params := map[string]any{"processId": os.Getpid(), "capabilities": map[string]any{}, "initializationOptions": settings}
	if _, err := conn.Call(ctx, "initialize", params, &init); err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	if err := conn.Notify(ctx, "initialized", map[string]any{}); err != nil {
		return err
	}
	for {
		var st lsp.Stats
		if _, err := conn.Call(ctx, "dfill/stats", nil, &st); err != nil {
			return fmt.Errorf("dfill/stats: %w", err)
		}
		if st.ModelError != "" {
			return fmt.Errorf("the server could not load its model: %s", st.ModelError)
		}
		if st.Model != "" {
			res.Model = st.Model
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// child is dfill serve running as a child process.
type child struct {
	cmd  *exec.Cmd
	conn jsonrpc2.Conn
}

type childPipes struct {
	io.ReadCloser
	io.WriteCloser
}

func (p childPipes) Close() error { return errors.Join(p.WriteCloser.Close(), p.ReadCloser.Close()) }

// startChild starts dfill serve with the shared flags and connects to it.
func startChild(ctx context.Context, sf *sharedFlags) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--backend", sf.backend, "--threads", strconv.Itoa(sf.threads),
		"--steps", strconv.Itoa(sf.steps), "--algorithm", sf.algorithm, "--log-level", sf.logLevel}
	if sf.model != "" {
		args = append(args, "--model", sf.model)
	}
	if sf.logFile != "" {
		args = append(args, "--log-file", sf.logFile)
	}
	if sf.cpuProf != "" {
		// The profile worth having is the server's.
		args = append(args, "--cpuprofile", sf.cpuProf)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s serve: %w", exe, err)
	}
	c := &child{cmd: cmd, conn: jsonrpc2.NewConn(jsonrpc2.NewStream(childPipes{stdout, stdin}))}
	c.conn.Go(ctx, func(ctx context.Context, req *jsonrpc2.Request) (any, error) {
		if req.Method() == "window/showMessage" {
			var m lsp.ShowMessageParams
			if json.Unmarshal(req.Params(), &m) == nil {
				fmt.Fprintln(os.Stderr, "dfill serve:", m.Message)
			}
		}
		return nil, nil
	})
	return c, nil
}

// stop shuts the child down as an editor does and waits for it.
func (c *child) stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := c.conn.Call(ctx, "shutdown", nil, nil); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := c.conn.Notify(ctx, "exit", nil); err != nil {
		return err
	}
	c.conn.Close()
	if err := c.cmd.Wait(); err != nil {
		return fmt.Errorf("dfill serve: %w", err)
	}
	return nil
}

// kill ends a child that did not stop.
func (c *child) kill() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	}
}

// vmHWM returns the child's peak resident set in MB from /proc (Linux), or 0.
func (c *child) vmHWM() float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err == nil {
				return float64(kb) / 1024
			}
		}
	}
	return 0
}

// maxRSS returns the exited child's peak resident set in MB, or 0.
func (c *child) maxRSS() float64 {
	if c.cmd.ProcessState == nil {
		return 0
	}
	if ru, ok := c.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && runtime.GOOS == "linux" {
		return float64(ru.Maxrss) / 1024 // kilobytes on Linux
	}
	return 0
}

func printBenchLSP(w io.Writer, r benchLSPResult) {
	fmt.Fprintf(w, "dfill bench lsp: %s from line %d, %d keystrokes every %.0fms (debounce %dms), model %s\n",
		r.File, r.StartLine, r.Keystrokes, r.IntervalMs, r.DebounceMs, r.Model)
	fmt.Fprintf(w, "  requests            %6d  (answered %d, with items %d, superseded -32800 %d, failed %d)\n",
		r.Requests, r.Answered, r.WithItems, r.Superseded, r.Failed)
	fmt.Fprintf(w, "  latency answered    p50 %7.2fms  p95 %7.2fms  max %7.2fms\n", r.LatencyMs.P50, r.LatencyMs.P95, r.LatencyMs.Max)
	fmt.Fprintf(w, "  server own time     p50 %7.3fms  p95 %7.3fms  max %7.3fms  (excluding the model)\n",
		r.Server.OwnP50Ms, r.Server.OwnP95Ms, r.Server.OwnMaxMs)
	fmt.Fprintf(w, "  server totals       %d answered, %d cancelled, %d cache hits, %.1fms total, %.1fms in the model\n",
		r.Server.Count, r.Server.Cancelled, r.Server.CacheHits, r.Server.TotalMs, r.Server.ModelMs)
	fmt.Fprintf(w, "  peak RSS            %.1f MB\n", r.PeakRSSMB)
	fmt.Fprintf(w, "  wall                %.2fs\n", r.WallSeconds)
}

// goroot returns the Go installation's root, from `go env GOROOT` or the
// one this binary was built with.
func goroot() string {
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		if s := strings.TrimSpace(string(out)); s != "" {
			return s
		}
	}
	return runtime.GOROOT()
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// languageOf returns the LSP language id for a file name.
func languageOf(path string) string {
	switch filepath.Ext(path) {
	case ".go":
		return "go"
	case ".py":
		return "python"
	case ".rs":
		return "rust"
	case ".js":
		return "javascript"
	case ".ts":
		return "typescript"
	case ".c", ".h":
		return "c"
	}
	return "plaintext"
}
