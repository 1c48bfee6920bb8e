package bench

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
	"go.lsp.dev/protocol"
	"go.lsp.dev/uri"

	"github.com/dfill/dfill/cmd/dfill/internal/cli"
	"github.com/dfill/dfill/fim"
	"github.com/dfill/dfill/lsp"
)

// benchLSPResult is what dfill bench lsp prints (as a table, or as JSON).
type benchLSPResult struct {
	File       string   `json:"file"`
	StartLine  int      `json:"startLine"`
	Keystrokes int      `json:"keystrokes"`
	IntervalMs float64  `json:"intervalMs"`
	DebounceMs int64    `json:"debounceMs"`
	Model      string   `json:"model"`
	Methods    []string `json:"methods"` // the requests sent per keystroke
	Requests   int      `json:"requests"`
	Answered   int      `json:"answered"`
	WithItems  int      `json:"withItems"`
	// Cancelled counts requests the client cancelled itself (as VS Code
	// does when the next keystroke comes) that answered RequestCancelled;
	// Lost counts those that answered RequestCancelled without the client
	// having cancelled them: answers the user waited for and never got.
	Cancelled   int       `json:"cancelled"`
	Lost        int       `json:"lost"`
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

// lspFlags are the flags of `dfill bench lsp`.
type lspFlags struct {
	shared   cli.Shared
	file     string
	start    int
	keys     int
	interval time.Duration
	debounce time.Duration
	requests string
	asJSON   bool
}

func lspCommand() *cli.Command {
	f := &lspFlags{}
	return &cli.Command{
		Name:    "lsp",
		Summary: "replays typing a file through `dfill serve`; latency percentiles, answers lost, RSS",
		Flags:   f.register,
		Run:     f.run,
	}
}

func (f *lspFlags) register(fs *flag.FlagSet) {
	// Not the Command's Shared: --cpuprofile is the server's to take.
	f.shared.Register(fs)
	fs.StringVar(&f.file, "file", "", "source `file` to type (default: strings/strings.go of the Go installation)")
	fs.IntVar(&f.start, "start", 200, "1-based `line` where typing starts")
	fs.IntVar(&f.keys, "keys", 300, "keystrokes to replay")
	fs.DurationVar(&f.interval, "interval", 30*time.Millisecond, "time between keystrokes")
	fs.DurationVar(&f.debounce, "debounce", 0, "the server's debounceMs setting (0: its default)")
	fs.StringVar(&f.requests, "requests", "inline", "requests per keystroke: inline, completion, or inline,completion (as VS Code sends)")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON")
}

// run starts dfill serve as a child over stdio, opens a real source file
// with a region cut out, and types that region back one character at a
// time as an editor would: one incremental didChange and, per keystroke,
// an automatic inlineCompletion (and a completion, with --requests
// inline,completion, as VS Code sends both), sent without waiting for
// answers; the requests of the previous keystroke still unanswered are
// cancelled with $/cancelRequest, as VS Code does.
func (f *lspFlags) run(ctx context.Context, _ []string) error {
	path := f.file
	if path == "" {
		path = filepath.Join(cli.GoRoot(), "src", "strings", "strings.go")
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	plan, err := planTyping(string(src), f.start, f.keys)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}

	methods, err := benchMethods(f.requests)
	if err != nil {
		return err
	}
	child, err := startChild(ctx, &f.shared)
	if err != nil {
		return err
	}
	defer child.kill()

	settings := map[string]any{"completionItems": "always"}
	if f.debounce > 0 {
		settings["debounceMs"] = f.debounce.Milliseconds()
	}
	res, err := replay(ctx, child, settings, uri.File(absPath(path)), languageOf(path), plan, f.interval, methods)
	if err != nil {
		return err
	}
	res.File, res.StartLine, res.IntervalMs, res.DebounceMs = path, f.start, cli.Millis(f.interval), f.debounce.Milliseconds()
	res.PeakRSSMB = child.vmHWM()
	if err := child.stop(ctx); err != nil {
		return err
	}
	if rss := child.maxRSS(); rss > res.PeakRSSMB {
		res.PeakRSSMB = rss
	}
	if f.asJSON {
		return cli.PrintJSON(res)
	}
	printBenchLSP(os.Stdout, res)
	return nil
}

// keystroke is one typed character: Text inserted at At (a UTF-16 LSP
// position), after which the cursor is at Cursor.
type keystroke struct {
	At, Cursor protocol.Position
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
	cur := protocol.Position{Line: uint32(start - 1)}
	for len(plan.Keys) < keys && end < len(text) {
		r, size := utf8.DecodeRuneInString(text[end:])
		k := keystroke{At: cur, Text: text[end : end+size]}
		if r == '\n' {
			cur = protocol.Position{Line: cur.Line + 1}
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

// benchMethods parses --requests.
func benchMethods(list string) ([]string, error) {
	var out []string
	for _, m := range strings.Split(list, ",") {
		switch strings.TrimSpace(m) {
		case "inline":
			out = append(out, protocol.MethodTextDocumentInlineCompletion)
		case "completion":
			out = append(out, protocol.MethodTextDocumentCompletion)
		default:
			return nil, fmt.Errorf("--requests: %q is not inline or completion", m)
		}
	}
	return out, nil
}

// sentRequest is one completion request of the replay.
type sentRequest struct {
	cancel    context.CancelFunc // cancels the call: jsonrpc2 sends $/cancelRequest
	cancelled bool               // the client cancelled it; guarded by the replay's mutex
}

// replay opens the plan's document and types it, sending each keystroke's
// didChange and requests without waiting, cancelling the previous
// keystroke's requests still in flight, then waits for every answer and
// asks the server for its own timings.
func replay(ctx context.Context, c *child, settings map[string]any, docURI uri.URI, languageID string, plan typingPlan, interval time.Duration, methods []string) (benchLSPResult, error) {
	res := benchLSPResult{Methods: methods}
	if err := waitModel(ctx, c, settings, &res); err != nil {
		return res, err
	}
	if err := c.server.DidOpen(ctx, &protocol.DidOpenTextDocumentParams{TextDocument: protocol.TextDocumentItem{
		URI: docURI, LanguageID: protocol.LanguageKind(languageID), Version: 1, Text: plan.Initial}}); err != nil {
		return res, err
	}
	var (
		mu        sync.Mutex // guards res, latencies and the requests' cancelled flags
		pending   sync.WaitGroup
		latencies []time.Duration
		previous  []*sentRequest
	)
	began := time.Now()
	for i, k := range plan.Keys {
		mu.Lock()
		for _, r := range previous {
			r.cancelled = true
			r.cancel()
		}
		mu.Unlock()
		previous = previous[:0]
		err := c.server.DidChange(ctx, &protocol.DidChangeTextDocumentParams{
			TextDocument: protocol.VersionedTextDocumentIdentifier{
				TextDocumentIdentifier: protocol.TextDocumentIdentifier{URI: docURI}, Version: int32(i + 2)},
			ContentChanges: []protocol.TextDocumentContentChangeEvent{
				&protocol.TextDocumentContentChangePartial{Range: protocol.Range{Start: k.At, End: k.At}, Text: k.Text}},
		})
		if err != nil {
			return res, err
		}
		at := protocol.TextDocumentPositionParams{TextDocument: protocol.TextDocumentIdentifier{URI: docURI}, Position: k.Cursor}
		for _, method := range methods {
			callCtx, cancel := context.WithCancel(ctx)
			sent := &sentRequest{cancel: cancel}
			previous = append(previous, sent)
			pending.Add(1)
			go func() {
				defer pending.Done()
				defer cancel()
				t0 := time.Now()
				items, err := benchRequest(callCtx, c.server, method, at)
				took := time.Since(t0)
				mu.Lock()
				defer mu.Unlock()
				res.Requests++
				var rpcErr *jsonrpc2.Error
				switch {
				case err == nil:
					res.Answered++
					latencies = append(latencies, took)
					if items > 0 {
						res.WithItems++
					}
				case sent.cancelled:
					res.Cancelled++
				case errors.As(err, &rpcErr) && rpcErr.Code == protocol.CodeRequestCancelled:
					res.Lost++
				default:
					res.Failed++
				}
			}()
		}
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
		res.LatencyMs = latencyMs{P50: cli.Millis(percentile(latencies, 0.50)), P95: cli.Millis(percentile(latencies, 0.95)), Max: cli.Millis(latencies[n-1])}
	}
	if err := c.stats(ctx, &res.Server); err != nil {
		return res, err
	}
	return res, nil
}

// benchRequest sends one completion request of method and returns how
// many items it answered.
func benchRequest(ctx context.Context, server protocol.Server, method string, at protocol.TextDocumentPositionParams) (int, error) {
	if method == protocol.MethodTextDocumentCompletion {
		r, err := server.Completion(ctx, &protocol.CompletionParams{TextDocumentPositionParams: at,
			Context: protocol.CompletionContext{TriggerKind: protocol.CompletionTriggerKindTriggerForIncompleteCompletions}})
		if list, ok := r.(*protocol.CompletionList); ok && list != nil {
			return len(list.Items), err
		}
		return 0, err
	}
	r, err := server.InlineCompletion(ctx, &protocol.InlineCompletionParams{TextDocumentPositionParams: at,
		Context: protocol.InlineCompletionContext{TriggerKind: protocol.InlineCompletionTriggerKindAutomatic}})
	if list, ok := r.(*protocol.InlineCompletionList); ok && list != nil {
		return len(list.Items), err
	}
	return 0, err
}

// waitModel initializes the session with settings as its
// initializationOptions and waits until the server has loaded its model
// (or failed to).
func waitModel(ctx context.Context, c *child, settings map[string]any, res *benchLSPResult) error {
	opts, err := json.Marshal(settings)
	if err != nil {
		return err
	}
	pid := int32(os.Getpid())
	if _, err := c.server.Initialize(ctx, &protocol.InitializeParams{ProcessID: &pid, InitializationOptions: opts}); err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	if err := c.server.Initialized(ctx, &protocol.InitializedParams{}); err != nil {
		return err
	}
	for {
		var st lsp.Stats
		if err := c.stats(ctx, &st); err != nil {
			return err
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
	cmd    *exec.Cmd
	conn   jsonrpc2.Conn
	server protocol.Server
}

// stats asks the child for dfill/stats.
func (c *child) stats(ctx context.Context, st *lsp.Stats) error {
	raw, err := c.server.Request(ctx, "dfill/stats", nil)
	if err != nil {
		return fmt.Errorf("dfill/stats: %w", err)
	}
	b, err := protocol.Marshal(raw)
	if err == nil {
		err = json.Unmarshal(b, st)
	}
	if err != nil {
		return fmt.Errorf("dfill/stats: %w", err)
	}
	return nil
}

// benchClient is the editor's side of the bench's connection: it shows the
// server's messages on stderr.
type benchClient struct{ protocol.UnimplementedClient }

func (benchClient) ShowMessage(ctx context.Context, p *protocol.ShowMessageParams) error {
	fmt.Fprintln(os.Stderr, "dfill serve:", p.Message)
	return nil
}

type childPipes struct {
	io.ReadCloser
	io.WriteCloser
}

func (p childPipes) Close() error { return errors.Join(p.WriteCloser.Close(), p.ReadCloser.Close()) }

// startChild starts dfill serve with the shared flags and connects to it.
func startChild(ctx context.Context, sf *cli.Shared) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--backend", sf.Backend, "--threads", strconv.Itoa(sf.Threads),
		"--steps", strconv.Itoa(sf.Steps), "--algorithm", sf.Algorithm, "--log-level", sf.LogLevel}
	if sf.Model != "" {
		args = append(args, "--model", sf.Model)
	}
	if sf.LogFile != "" {
		args = append(args, "--log-file", sf.LogFile)
	}
	if sf.CPUProfile != "" {
		// The profile worth having is the server's.
		args = append(args, "--cpuprofile", sf.CPUProfile)
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
	c := &child{cmd: cmd}
	_, c.conn, c.server = protocol.NewClient(ctx, benchClient{}, jsonrpc2.NewStream(childPipes{stdout, stdin}))
	return c, nil
}

// stop shuts the child down as an editor does and waits for it.
func (c *child) stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.server.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := c.server.Exit(ctx); err != nil {
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
	fmt.Fprintf(w, "  requests            %6d  %s per keystroke (answered %d, with items %d, cancelled by the client %d, lost %d, failed %d)\n",
		r.Requests, strings.Join(r.Methods, " + "), r.Answered, r.WithItems, r.Cancelled, r.Lost, r.Failed)
	fmt.Fprintf(w, "  latency answered    p50 %7.2fms  p95 %7.2fms  max %7.2fms\n", r.LatencyMs.P50, r.LatencyMs.P95, r.LatencyMs.Max)
	fmt.Fprintf(w, "  server own time     p50 %7.3fms  p95 %7.3fms  max %7.3fms  (excluding the model)\n",
		r.Server.OwnP50Ms, r.Server.OwnP95Ms, r.Server.OwnMaxMs)
	fmt.Fprintf(w, "  server totals       %d answered, %d cancelled, %d cache hits, %.1fms total, %.1fms in the model\n",
		r.Server.Count, r.Server.Cancelled, r.Server.CacheHits, r.Server.TotalMs, r.Server.ModelMs)
	fmt.Fprintf(w, "  peak RSS            %.1f MB\n", r.PeakRSSMB)
	fmt.Fprintf(w, "  wall                %.2fs\n", r.WallSeconds)
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// languageOf returns the LSP language id for a file name: the one dfill's
// table of extensions gives, or plaintext.
func languageOf(path string) string {
	if id := fim.LanguageFromPath(path); id != "" {
		return id
	}
	return "plaintext"
}
