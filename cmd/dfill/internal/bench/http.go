package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/dfill/dfill/cmd/dfill/internal/cli"
)

// benchHTTPResult is what dfill bench http prints (as a table, or as
// JSON).
type benchHTTPResult struct {
	Model     string `json:"model"`
	Threads   int    `json:"threads"`
	File      string `json:"file"` // where the prompts come from
	Cuts      int    `json:"cuts"` // distinct prompts cut from it
	MaxTokens int    `json:"maxTokens"`
	// Batch is the server's --batch: up to Batch requests generate at once,
	// denoised together; Queue is its --queue: up to Queue more wait, so
	// Batch+Queue clients are within the limit and one more meets 429s.
	Batch           int     `json:"batch"`
	Queue           int     `json:"queue"`
	DurationSeconds float64 `json:"durationSeconds"` // per level: no request starts after it
	MaxRequests     int     `json:"maxRequests"`     // per level
	// RSSPerLevel is true when each level's peak RSS is its own (the
	// peak was reset through /proc before it); false when it is the
	// server's peak so far.
	RSSPerLevel bool        `json:"rssPerLevel"`
	Levels      []httpLevel `json:"levels"`
	// PeakRSSMB is the server's peak resident set over the whole run,
	// model loading included.
	PeakRSSMB float64 `json:"peakRssMB"`
}

// httpLevel is one level of load: Clients clients sending requests in a
// loop.
type httpLevel struct {
	Clients int `json:"clients"`
	// OverLimit is true when the clients may be more than the server
	// holds (Clients > Queue+Batch), so 429s are expected.
	OverLimit bool `json:"overLimit"`
	Requests  int  `json:"requests"`
	OK        int  `json:"ok"`
	TooMany   int  `json:"tooMany"` // answered 429
	// Errors counts every other answer, a 200 that is not a completion,
	// and requests that got no answer; FirstError says what the first was.
	Errors           int       `json:"errors"`
	FirstError       string    `json:"firstError,omitempty"`
	CompletionTokens int       `json:"completionTokens"` // usage.completion_tokens of the ok answers
	WallSeconds      float64   `json:"wallSeconds"`      // the first request sent to the last answered
	OKPerSecond      float64   `json:"okPerSecond"`
	TokensPerSecond  float64   `json:"tokensPerSecond"`
	LatencyMs        httpLatMs `json:"latencyMs"` // of the ok requests
	PeakRSSMB        float64   `json:"peakRssMB"`
	// AsPromised is whether the server kept its promise: no error and no
	// 429 within the limit, nothing but 429s over it.
	AsPromised bool `json:"asPromised"`
}

// httpLatMs summarises latencies in milliseconds.
type httpLatMs struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// httpFlags are the flags of `dfill bench http`.
type httpFlags struct {
	shared      cli.Shared
	clients     string
	duration    time.Duration
	maxRequests int
	maxTokens   int
	queue       int
	batch       int
	file        string
	asJSON      bool
}

func httpCommand() *cli.Command {
	f := &httpFlags{}
	return &cli.Command{
		Name:    "http",
		Summary: "concurrent clients of `dfill http` on loopback; ok req/s, tokens/s, latency p50/p95/p99, 429s and errors, RSS",
		Flags:   f.register,
		Run:     f.run,
	}
}

func (f *httpFlags) register(fs *flag.FlagSet) {
	// Not the Command's Shared: --cpuprofile is the server's to take.
	f.shared.Register(fs)
	// The server logs every request at info: warn keeps its stderr to
	// what matters while it is loaded.
	f.shared.LogLevel = "warn"
	fs.Lookup("log-level").DefValue = "warn"
	fs.StringVar(&f.clients, "clients", "1,4,16", "concurrent `clients` of each level, comma-separated")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "how long each level sends requests")
	fs.IntVar(&f.maxRequests, "max-requests", 200, "the most requests one level sends")
	fs.IntVar(&f.maxTokens, "max-tokens", 16, "max_tokens of each request")
	fs.IntVar(&f.queue, "queue", 16, "the server's --queue: requests that may wait while a batch generates")
	fs.IntVar(&f.batch, "batch", 4, "the server's --batch: requests denoised together (1: batching off)")
	fs.StringVar(&f.file, "file", "", "source `file` to cut prompts from (default: a built-in Go snippet)")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON")
}

// run starts dfill http as a child on a free loopback port and, for each
// number of clients, runs that many clients sending non-streaming
// POST /v1/fim/completions in a loop for --duration or --max-requests,
// whichever comes first, then stops the server.
func (f *httpFlags) run(ctx context.Context, _ []string) error {
	levels, err := parseInts(f.clients)
	switch {
	case err != nil:
		return cli.Usagef("--clients: %v", err)
	case len(levels) == 0:
		return cli.Usagef("--clients: want at least one number")
	case f.duration <= 0:
		return cli.Usagef("--duration %s: want more than 0", f.duration)
	case f.maxRequests < 1 || f.maxTokens < 1:
		return cli.Usagef("--max-requests %d and --max-tokens %d: want 1 or more", f.maxRequests, f.maxTokens)
	case f.queue < 0:
		return cli.Usagef("--queue %d: want 0 or more", f.queue)
	case f.batch < 1:
		return cli.Usagef("--batch %d: want 1 or more", f.batch)
	}
	name, src := "the built-in Go snippet", builtinSnippet
	if f.file != "" {
		b, err := os.ReadFile(f.file)
		if err != nil {
			return err
		}
		name, src = f.file, string(b)
	}
	bodies, err := fimBodies(src, f.maxTokens)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}

	srv, err := startHTTPChild(ctx, &f.shared, f.queue, f.batch)
	if err != nil {
		return err
	}
	defer srv.kill()
	model, err := srv.waitHealthy(ctx)
	if err != nil {
		return err
	}
	res := benchHTTPResult{Model: model, Threads: f.shared.Threads, File: name, Cuts: len(bodies), MaxTokens: f.maxTokens,
		Batch: f.batch, Queue: f.queue, DurationSeconds: f.duration.Seconds(), MaxRequests: f.maxRequests, RSSPerLevel: true}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: slices.Max(levels)}}
	defer hc.CloseIdleConnections()
	res.PeakRSSMB = srv.proc.vmHWM() // the model's loading, before the first reset
	progress := newProgress(!f.asJSON && isTerminal(os.Stderr))
	for _, n := range levels {
		if err := srv.resetPeakRSS(); err != nil {
			res.RSSPerLevel = false
		}
		plan := loadPlan{url: srv.base + "/v1/fim/completions", clients: n, duration: f.duration, maxRequests: f.maxRequests,
			body: func(i int) []byte { return bodies[i%len(bodies)] }}
		outs, wall := runLoad(ctx, hc, plan, func(done int) { progress("%d clients: %d requests", n, done) })
		progress("")
		if err := ctx.Err(); err != nil {
			return err
		}
		l := summarizeLoad(n, outs, wall)
		l.OverLimit = n > f.queue+f.batch
		l.AsPromised = l.Errors == 0 && (l.OverLimit || l.TooMany == 0)
		l.PeakRSSMB = srv.proc.vmHWM()
		res.Levels = append(res.Levels, l)
		res.PeakRSSMB = max(res.PeakRSSMB, l.PeakRSSMB)
	}
	if err := srv.stop(); err != nil {
		return err
	}
	res.PeakRSSMB = max(res.PeakRSSMB, srv.proc.maxRSS())
	if f.asJSON {
		return cli.PrintJSON(res)
	}
	printBenchHTTP(os.Stdout, res)
	return nil
}

// fimBodies returns the request bodies of the prompts cut from src, in
// order: for each line with text, the line cut in its middle and at its
// end.
func fimBodies(src string, maxTokens int) ([][]byte, error) {
	var bodies [][]byte
	for _, at := range cutPoints(src) {
		b, err := json.Marshal(map[string]any{"prompt": src[:at], "suffix": src[at:], "max_tokens": maxTokens})
		if err != nil {
			return nil, err
		}
		bodies = append(bodies, b)
	}
	if len(bodies) == 0 {
		return nil, errors.New("no line with text to cut a prompt from")
	}
	return bodies, nil
}

// cutPoints returns the byte offsets where prompts are cut from src: for
// each line with text, the middle of its text (after the indentation, on
// a rune boundary) and the end of its text.
func cutPoints(src string) []int {
	var cuts []int
	for start := 0; start < len(src); {
		end := strings.IndexByte(src[start:], '\n')
		if end < 0 {
			end = len(src)
		} else {
			end += start
		}
		line := src[start:end]
		indented := strings.TrimLeft(line, " \t")
		text := strings.TrimRight(indented, " \t\r")
		if text != "" {
			from := start + len(line) - len(indented)
			mid := from + len(text)/2
			for mid > from && !utf8.RuneStart(src[mid]) {
				mid--
			}
			if mid > from {
				cuts = append(cuts, mid)
			}
			cuts = append(cuts, from+len(text))
		}
		start = end + 1
	}
	return cuts
}

// loadPlan is one level of load.
type loadPlan struct {
	url         string // where the requests are POSTed
	clients     int
	duration    time.Duration      // no request starts after it
	maxRequests int                // no more requests are sent in all
	body        func(i int) []byte // the body of the i-th request sent
}

// outcome is what one request came to.
type outcome struct {
	status int           // the HTTP status; 0 when no answer came
	took   time.Duration // from sending to the whole answer read
	tokens int           // usage.completion_tokens of a completion
	err    string        // what went wrong, for any answer but a completion and a 429
}

// runLoad runs p's clients, each sending one request after the other
// until p.duration has passed, p.maxRequests are sent or ctx is done; a
// client answered 429 waits for its Retry-After (within the duration,
// and while requests remain to send) before the next, as a polite client
// does. It returns every request's outcome, in the order they finished,
// and the time from the start to the last answer; progress is told how
// many have finished.
func runLoad(ctx context.Context, hc *http.Client, p loadPlan, progress func(done int)) ([]outcome, time.Duration) {
	start := time.Now()
	deadline := start.Add(p.duration)
	var (
		next      atomic.Int64
		spent     = make(chan struct{}) // closed once every request is claimed
		spentOnce sync.Once
		wg        sync.WaitGroup
		mu        sync.Mutex // guards outs and last
		outs      = make([]outcome, 0, p.maxRequests)
		last      = start // when the last answer came
	)
	for range p.clients {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := int(next.Add(1)) - 1
				if i >= p.maxRequests {
					spentOnce.Do(func() { close(spent) })
					return
				}
				o, wait := post(ctx, hc, p.url, p.body(i))
				mu.Lock()
				outs = append(outs, o)
				last = time.Now()
				progress(len(outs))
				mu.Unlock()
				if wait = min(wait, time.Until(deadline)); wait > 0 {
					select {
					case <-ctx.Done():
					case <-spent:
					case <-time.After(wait):
					}
				}
			}
		})
	}
	wg.Wait()
	return outs, last.Sub(start)
}

// post sends one completion request and reads its answer: its outcome,
// and the Retry-After of a 429.
func post(ctx context.Context, hc *http.Client, url string, body []byte) (outcome, time.Duration) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return outcome{err: err.Error()}, 0
	}
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return outcome{took: time.Since(t0), err: err.Error()}, 0
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	o := outcome{status: resp.StatusCode, took: time.Since(t0)}
	if err != nil {
		o.err = fmt.Sprintf("%s: reading the answer: %v", resp.Status, err)
		return o, 0
	}
	switch resp.StatusCode {
	case http.StatusOK:
		var c struct {
			Choices []struct{ Text string }
			Usage   *struct {
				CompletionTokens int `json:"completion_tokens"`
			}
		}
		if err := json.Unmarshal(data, &c); err != nil || len(c.Choices) != 1 || c.Usage == nil {
			o.err = fmt.Sprintf("%s but not a completion with one choice and usage: %.200q", resp.Status, data)
			return o, 0
		}
		o.tokens = c.Usage.CompletionTokens
	case http.StatusTooManyRequests:
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			return o, time.Duration(s) * time.Second
		}
	default:
		o.err = resp.Status + ": " + errorMessage(data)
	}
	return o, 0
}

// errorMessage returns the message of an OpenAI-style error envelope, or
// the start of the body when it is not one.
func errorMessage(body []byte) string {
	var e struct {
		Error struct{ Message string }
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		return e.Error.Message
	}
	return fmt.Sprintf("%.200q", body)
}

// summarizeLoad counts outs, the outcomes of a level of clients clients that
// took wall, and the throughput and latency of the completions.
func summarizeLoad(clients int, outs []outcome, wall time.Duration) httpLevel {
	l := httpLevel{Clients: clients, Requests: len(outs), WallSeconds: wall.Seconds()}
	var lat []time.Duration
	for _, o := range outs {
		switch {
		case o.status == http.StatusOK && o.err == "":
			l.OK++
			l.CompletionTokens += o.tokens
			lat = append(lat, o.took)
		case o.status == http.StatusTooManyRequests:
			l.TooMany++
		default:
			l.Errors++
			if l.FirstError == "" {
				l.FirstError = o.err
			}
		}
	}
	if wall > 0 {
		l.OKPerSecond = float64(l.OK) / wall.Seconds()
		l.TokensPerSecond = float64(l.CompletionTokens) / wall.Seconds()
	}
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		l.LatencyMs = httpLatMs{P50: cli.Millis(percentile(lat, 0.50)), P95: cli.Millis(percentile(lat, 0.95)),
			P99: cli.Millis(percentile(lat, 0.99)), Max: cli.Millis(lat[n-1])}
	}
	return l
}

// httpChild is dfill http running as a child process.
type httpChild struct {
	cmd  *exec.Cmd
	proc *child // the same process, for its RSS readers (no LSP connection)
	base string // http://127.0.0.1:PORT

	exited chan struct{} // closed when the process has exited
	err    error         // how it exited; set before exited is closed
}

// startHTTPChild starts dfill http with the shared flags, --queue queue
// and --batch batch on a free loopback port, and returns once it listens.
func startHTTPChild(ctx context.Context, sf *cli.Shared, queue, batch int) (*httpChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"http", "--addr", "127.0.0.1:0", "--queue", strconv.Itoa(queue), "--batch", strconv.Itoa(batch), "--backend", sf.Backend,
		"--threads", strconv.Itoa(sf.Threads), "--steps", strconv.Itoa(sf.Steps), "--algorithm", sf.Algorithm,
		"--log-level", sf.LogLevel}
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
	listening := &addrLine{line: make(chan string, 1)}
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = listening, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s http: %w", exe, err)
	}
	c := &httpChild{cmd: cmd, proc: &child{cmd: cmd}, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	select {
	case line := <-listening.line:
		base, ok := strings.CutPrefix(strings.TrimSpace(line), "dfill http: listening on ")
		if !ok || !strings.HasPrefix(base, "http://") {
			c.kill()
			return nil, fmt.Errorf("dfill http printed %q, not the address it listens on", line)
		}
		c.base = base
		return c, nil
	case <-c.exited:
		return nil, fmt.Errorf("dfill http exited before listening: %w", c.err)
	case <-ctx.Done():
		c.kill()
		return nil, ctx.Err()
	}
}

// waitHealthy polls /healthz until the server has loaded its model, and
// returns the model's name.
func (c *httpChild) waitHealthy(ctx context.Context) (string, error) {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/healthz", nil)
		if err != nil {
			return "", err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			// It listens until it stops: an error means it is exiting.
			select {
			case <-c.exited:
				return "", fmt.Errorf("dfill http exited before its model loaded: %w", c.err)
			case <-time.After(5 * time.Second):
				return "", fmt.Errorf("%s/healthz: %w", c.base, err)
			}
		}
		var h struct{ Status, Model string }
		err = json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && err == nil {
			return h.Model, nil
		}
		select { // 503 while the model loads
		case <-c.exited:
			return "", fmt.Errorf("dfill http exited before its model loaded: %w", c.err)
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// resetPeakRSS resets the child's peak resident set (Linux: VmHWM), so
// that the next reading is the peak from now on.
func (c *httpChild) resetPeakRSS() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", c.cmd.Process.Pid), []byte("5"), 0)
}

// stop ends the child as an operator does, with SIGTERM, and waits for it
// (killing it after 30 seconds).
func (c *httpChild) stop() error {
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stopping dfill http: %w", err)
	}
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		c.kill()
		return errors.New("dfill http did not stop within 30s of SIGTERM")
	}
	if c.err != nil {
		return fmt.Errorf("dfill http: %w", c.err)
	}
	return nil
}

// kill ends a child that did not stop, and waits for it.
func (c *httpChild) kill() {
	select {
	case <-c.exited:
	default:
		c.cmd.Process.Kill()
		<-c.exited
	}
}

// addrLine is the child's stdout: it sends the first line written on
// line and discards the rest.
type addrLine struct {
	buf  []byte
	sent bool
	line chan string // buffered: one line
}

func (w *addrLine) Write(p []byte) (int, error) {
	if !w.sent {
		w.buf = append(w.buf, p...)
		if i := bytes.IndexByte(w.buf, '\n'); i >= 0 {
			w.line <- string(w.buf[:i])
			w.sent, w.buf = true, nil
		}
	}
	return len(p), nil
}

// newProgress returns the func that shows progress on stderr when on is
// true: each call replaces the line the last one wrote; an empty format
// clears it.
func newProgress(on bool) func(format string, a ...any) {
	if !on {
		return func(string, ...any) {}
	}
	return func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "\r\x1b[K"+format, a...)
	}
}

// isTerminal reports whether f is a terminal (a character device).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func printBenchHTTP(w io.Writer, r benchHTTPResult) {
	fmt.Fprintf(w, "dfill bench http: model %s, %d threads, --batch %d, --queue %d (%d requests in flight at most), max_tokens %d, %d prompts cut from %s\n",
		r.Model, r.Threads, r.Batch, r.Queue, r.Queue+r.Batch, r.MaxTokens, r.Cuts, r.File)
	rss := "each level's own peak"
	if !r.RSSPerLevel {
		rss = "the server's peak so far"
	}
	batching := fmt.Sprintf("batching on (up to %d requests denoised together)", r.Batch)
	if r.Batch <= 1 {
		batching = "batching off (one request generates at a time)"
	}
	fmt.Fprintf(w, "each level: %gs or %d requests; %s; RSS: %s\n", r.DurationSeconds, r.MaxRequests, batching, rss)
	fmt.Fprintf(w, "%7s  %-6s %8s %6s %6s %6s %8s %9s %8s %8s %8s %8s %8s  %s\n",
		"clients", "limit", "requests", "ok", "429", "errors", "ok/s", "tokens/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "RSS MB", "as promised")
	for _, l := range r.Levels {
		limit, promised := "within", "yes"
		if l.OverLimit {
			limit = "over"
		}
		if !l.AsPromised {
			promised = "NO"
		}
		fmt.Fprintf(w, "%7d  %-6s %8d %6d %6d %6d %8.2f %9.1f %8.1f %8.1f %8.1f %8.1f %8.1f  %s\n",
			l.Clients, limit, l.Requests, l.OK, l.TooMany, l.Errors, l.OKPerSecond, l.TokensPerSecond,
			l.LatencyMs.P50, l.LatencyMs.P95, l.LatencyMs.P99, l.LatencyMs.Max, l.PeakRSSMB, promised)
	}
	for _, l := range r.Levels {
		if l.FirstError != "" {
			fmt.Fprintf(w, "first error at %d clients: %s\n", l.Clients, l.FirstError)
		}
	}
	fmt.Fprintf(w, "as promised: within the limit no error and no 429, over it nothing but 429s (clients told 429 wait its Retry-After)\n")
	fmt.Fprintf(w, "server peak RSS over the run (model loading included): %.1f MB\n", r.PeakRSSMB)
}

// builtinSnippet is the Go source prompts are cut from without --file.
const builtinSnippet = `package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Count returns how many times each word occurs in r.
func Count(r io.Reader) (map[string]int, error) {
	counts := make(map[string]int)
	sc := bufio.NewScanner(r)
	sc.Split(bufio.ScanWords)
	for sc.Scan() {
		word := strings.ToLower(strings.Trim(sc.Text(), ".,;:!?"))
		if word == "" {
			continue
		}
		counts[word]++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading words: %w", err)
	}
	return counts, nil
}

// Top returns the n most frequent words of counts, most frequent first.
func Top(counts map[string]int, n int) []string {
	words := make([]string, 0, len(counts))
	for w := range counts {
		words = append(words, w)
	}
	sort.Slice(words, func(i, j int) bool {
		if counts[words[i]] != counts[words[j]] {
			return counts[words[i]] > counts[words[j]]
		}
		return words[i] < words[j]
	})
	if len(words) > n {
		words = words[:n]
	}
	return words
}

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	counts, err := Count(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, w := range Top(counts, 10) {
		fmt.Printf("%6d %s\n", counts[w], w)
	}
}
`
