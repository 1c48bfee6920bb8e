package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap/zaptest"

	"github.com/dfill/dfill/engine"
)

// fakeModel is a Model that reports the denoising steps it is given and
// answers a fixed candidate; it can block, to hold a generation in flight.
// It counts a token per byte.
type fakeModel struct {
	name    string
	context int
	steps   []string         // each step's text, engine.MaskGlyph for masked positions
	answer  engine.Candidate // what Infill returns after the steps

	// blockAfter steps, Infill waits for unblock or ctx (with unblock
	// nil it does not wait).
	blockAfter int
	unblock    chan struct{}
	panics     atomic.Bool

	started    chan struct{} // receives one value as each Infill begins
	canceled   chan struct{} // closed when an Infill returns because ctx is done
	cancelOnce sync.Once

	mu       sync.Mutex
	calls    int
	prompt   engine.Prompt
	opt      engine.Options
	stepsRun int
}

// newFake returns a fake that denoises "return err" in three steps and
// ends the span with an end token.
func newFake() *fakeModel {
	return &fakeModel{
		name: "fake-model", context: 1024,
		steps:    []string{"░░░░░", "ret░░░", "return░", "return err"},
		answer:   candidate("return err", 4, 3),
		started:  make(chan struct{}, 16),
		canceled: make(chan struct{}),
	}
}

// candidate returns a candidate of text over a span of n tokens, content
// of them before the trailing end tokens.
func candidate(text string, n, content int) engine.Candidate {
	return engine.Candidate{Text: text, Tokens: make([]int32, n), Length: n, Content: content, Steps: 3}
}

func (f *fakeModel) Name() string             { return f.name }
func (f *fakeModel) ContextTokens() int       { return f.context }
func (f *fakeModel) CountTokens(s string) int { return len(s) }

func (f *fakeModel) Infill(ctx context.Context, p engine.Prompt, opt engine.Options, onStep func(engine.Step)) ([]engine.Candidate, error) {
	f.mu.Lock()
	f.calls++
	f.prompt, f.opt = p, opt
	f.mu.Unlock()
	f.started <- struct{}{}
	if f.panics.Load() {
		panic("fake model panics")
	}
	for i, text := range f.steps {
		if i == f.blockAfter && f.unblock != nil {
			select {
			case <-f.unblock:
			case <-ctx.Done():
				f.cancelOnce.Do(func() { close(f.canceled) })
				return nil, ctx.Err()
			}
		}
		if err := ctx.Err(); err != nil {
			f.cancelOnce.Do(func() { close(f.canceled) })
			return nil, err
		}
		onStep(engine.Step{Step: i + 1, Steps: len(f.steps), Text: text})
		f.mu.Lock()
		f.stepsRun++
		f.mu.Unlock()
	}
	return []engine.Candidate{f.answer}, nil
}

// seen returns what the last Infill was asked for, and how many calls and
// steps there were.
func (f *fakeModel) seen() (engine.Prompt, engine.Options, int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.prompt, f.opt, f.calls, f.stepsRun
}

// serve starts an httptest server of a Server with opt and model m (none
// when nil).
func serve(t *testing.T, m Model, opt Options) (*Server, *httptest.Server) {
	t.Helper()
	opt.Logger = zaptest.NewLogger(t)
	s := New(opt)
	if m != nil {
		s.SetModel(m)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

// do sends a request and returns the response with its body read.
func do(t *testing.T, ctx context.Context, method, url, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// post sends body to path of ts.
func post(t *testing.T, ts *httptest.Server, path, body string) (*http.Response, []byte) {
	t.Helper()
	return do(t, context.Background(), http.MethodPost, ts.URL+path, body, nil)
}

// wireCompletion is a completion as a client decodes it: finish_reason
// and usage may be null.
type wireCompletion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index        int     `json:"index"`
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usage `json:"usage"`
}

// wireError is the error envelope as a client decodes it.
type wireError struct {
	Error struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Param   any    `json:"param"`
		Code    string `json:"code"`
	} `json:"error"`
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return v
}

// readEvents reads a Server-Sent Events body: the data of each event, and
// whether the stream ended with [DONE].
func readEvents(t *testing.T, body io.Reader) (data []string, done bool) {
	t.Helper()
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		d, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("SSE line %q is not a data line", line)
		}
		if done {
			t.Fatalf("event %q after [DONE]", d)
		}
		if d == "[DONE]" {
			done = true
			continue
		}
		data = append(data, d)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return data, done
}

// scrape parses GET /metrics with Prometheus's own text parser.
func scrape(t *testing.T, ts *httptest.Server, header map[string]string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, body := do(t, context.Background(), http.MethodGet, ts.URL+"/metrics", "", header)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return fams
}

// metricValue returns the value of the counter or gauge name with the
// labels given (name=value pairs), or the sample count of a histogram;
// -1 when there is none.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}
