package api

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// reply is the answer to a request run in the background.
type reply struct {
	status int
	body   []byte
	header http.Header
}

// postAsync posts body to url in the background.
func postAsync(t *testing.T, url, body string) <-chan reply {
	t.Helper()
	out := make(chan reply, 1)
	go func() {
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			out <- reply{status: -1, body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		out <- reply{status: resp.StatusCode, body: b, header: resp.Header}
	}()
	return out
}

// waitFor polls cond, which the server's goroutines make true, until it
// holds (the test's own deadline ends a wait that never does).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if t.Context().Err() != nil {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestQueueFull checks the bounded queue: one generation runs, QueueSize
// wait, and one more is answered 429 with Retry-After; the waiting one
// runs when the first ends.
func TestQueueFull(t *testing.T) {
	f := newFake()
	f.blockAfter, f.unblock = 0, make(chan struct{})
	_, ts := serve(t, f, Options{QueueSize: 1})
	url := ts.URL + "/v1/fim/completions"
	first := postAsync(t, url, `{"prompt":"a"}`)
	<-f.started
	second := postAsync(t, url, `{"prompt":"b"}`)
	waitFor(t, "the second request to wait", func() bool { return metricValue(scrape(t, ts, nil), "dfill_queue_depth") == 1 })

	resp, body := post(t, ts, "/v1/fim/completions", `{"prompt":"c"}`)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third request: %d %s, want 429", resp.StatusCode, body)
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	if e := decode[wireError](t, body); e.Error.Type != typeRateLimit || e.Error.Code != "queue_full" {
		t.Errorf("429 body %s", body)
	}

	close(f.unblock)
	for i, c := range []<-chan reply{first, second} {
		if r := <-c; r.status != http.StatusOK {
			t.Errorf("request %d: %d %s", i+1, r.status, r.body)
		}
	}
	if _, _, calls, _ := f.seen(); calls != 2 {
		t.Errorf("%d generations, want 2", calls)
	}
	fams := scrape(t, ts, nil)
	if got := metricValue(fams, "dfill_http_requests_total", "route", "fim", "code", "429"); got != 1 {
		t.Errorf("429s counted: %v", got)
	}
	if got := metricValue(fams, "dfill_queue_depth"); got != 0 {
		t.Errorf("queue depth after: %v", got)
	}
}

// TestNoQueue checks QueueSize 0: a request that finds the model busy is
// answered 429 at once.
func TestNoQueue(t *testing.T) {
	f := newFake()
	f.blockAfter, f.unblock = 0, make(chan struct{})
	_, ts := serve(t, f, Options{})
	first := postAsync(t, ts.URL+"/v1/completions", `{"prompt":"a"}`)
	<-f.started
	if resp, body := post(t, ts, "/v1/completions", `{"prompt":"b"}`); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("second request: %d %s", resp.StatusCode, body)
	}
	close(f.unblock)
	if r := <-first; r.status != http.StatusOK {
		t.Errorf("first request: %d %s", r.status, r.body)
	}
}

// TestClientDisconnects checks that a client that goes away cancels its
// generation, and is counted as 499.
func TestClientDisconnects(t *testing.T) {
	f := newFake()
	f.blockAfter, f.unblock = 1, make(chan struct{})
	_, ts := serve(t, f, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/fim/completions", strings.NewReader(`{"prompt":"p"}`))
		_, err := http.DefaultClient.Do(req)
		done <- err
	}()
	<-f.started
	cancel()
	<-f.canceled // the test times out if the generation is never cancelled
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("client: %v", err)
	}
	waitFor(t, "the 499 to be counted", func() bool {
		return metricValue(scrape(t, ts, nil), "dfill_http_requests_total", "route", "fim", "code", "499") == 1
	})
	if got := metricValue(scrape(t, ts, nil), "dfill_http_errors_total", "route", "fim", "type", "canceled"); got != 1 {
		t.Errorf("canceled errors: %v", got)
	}
}

// TestDeadline checks the per-request deadline, in a generation and in
// the queue: 504 with a timeout error.
func TestDeadline(t *testing.T) {
	f := newFake()
	f.blockAfter, f.unblock = 1, make(chan struct{}) // never unblocked
	_, ts := serve(t, f, Options{Timeout: 20 * time.Millisecond, QueueSize: 1})
	first := postAsync(t, ts.URL+"/v1/fim/completions", `{"prompt":"a"}`)
	second := postAsync(t, ts.URL+"/v1/fim/completions", `{"prompt":"b"}`)
	for i, c := range []<-chan reply{first, second} {
		r := <-c
		if r.status != http.StatusGatewayTimeout {
			t.Errorf("request %d: %d %s, want 504", i+1, r.status, r.body)
			continue
		}
		if e := decode[wireError](t, r.body); e.Error.Type != typeTimeout || e.Error.Code != "timeout" {
			t.Errorf("request %d: %s", i+1, r.body)
		}
	}
	<-f.canceled
}

// TestShutdownFinishesInFlight checks Serve's graceful shutdown: once its
// context is done it takes no new connections, lets the request in flight
// finish, and returns nil.
func TestShutdownFinishesInFlight(t *testing.T) {
	f := newFake()
	f.blockAfter, f.unblock = 1, make(chan struct{})
	s := New(Options{Logger: zaptest.NewLogger(t)})
	s.SetModel(f)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()

	inFlight := postAsync(t, url+"/v1/fim/completions", `{"prompt":"p"}`)
	<-f.started
	stop()
	waitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-served:
		t.Fatalf("Serve returned with a request in flight: %v", err)
	default:
	}
	close(f.unblock)
	r := <-inFlight
	if r.status != http.StatusOK || decode[wireCompletion](t, r.body).Choices[0].Text != "return err" {
		t.Errorf("in-flight request: %d %s", r.status, r.body)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// TestShutdownCancelsAfterGrace checks that requests still running when
// the grace period ends are cancelled, and that Serve returns only after
// their handlers have (the model may be closed then).
func TestShutdownCancelsAfterGrace(t *testing.T) {
	f := newFake()
	f.blockAfter, f.unblock = 1, make(chan struct{}) // never unblocked
	s := New(Options{Logger: zaptest.NewLogger(t), ShutdownTimeout: 20 * time.Millisecond})
	s.SetModel(f)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	inFlight := postAsync(t, "http://"+ln.Addr().String()+"/v1/fim/completions", `{"prompt":"p"}`)
	<-f.started
	stop()
	err = <-served
	if err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Errorf("Serve: %v, want the requests it cancelled", err)
	}
	select {
	case <-f.canceled:
	default:
		t.Error("Serve returned before the generation it cancelled ended")
	}
	if r := <-inFlight; r.status == http.StatusOK {
		t.Errorf("the cancelled request answered 200: %s", r.body)
	}
}

// TestLoading checks the answers before the model is loaded and after.
func TestLoading(t *testing.T) {
	f := newFake()
	s, ts := serve(t, nil, Options{})
	get := func(path string) (*http.Response, []byte) {
		return do(t, context.Background(), http.MethodGet, ts.URL+path, "", nil)
	}

	if resp, body := get("/healthz"); resp.StatusCode != http.StatusServiceUnavailable || decode[health](t, body).Status != "loading" {
		t.Errorf("healthz while loading: %d %s", resp.StatusCode, body)
	}
	resp, body := post(t, ts, "/v1/fim/completions", `{"prompt":"x"}`)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || decode[wireError](t, body).Error.Code != "model_loading" {
		t.Errorf("completion while loading: %d %s", resp.StatusCode, body)
	}
	if _, body := get("/v1/models"); len(decode[modelList](t, body).Data) != 0 {
		t.Errorf("models while loading: %s", body)
	}
	if got := metricValue(scrape(t, ts, nil), "dfill_model_loaded"); got != 0 {
		t.Errorf("dfill_model_loaded while loading: %v", got)
	}

	s.SetModel(f)
	if resp, body := get("/healthz"); resp.StatusCode != http.StatusOK || decode[health](t, body) != (health{Status: "ok", Model: "fake-model"}) {
		t.Errorf("healthz: %d %s", resp.StatusCode, body)
	}
	resp, body = get("/v1/models")
	list := decode[modelList](t, body)
	if resp.StatusCode != http.StatusOK || list.Object != "list" || len(list.Data) != 1 ||
		list.Data[0].ID != "fake-model" || list.Data[0].Object != "model" || list.Data[0].ContextLength != 1024 {
		t.Errorf("models: %d %s", resp.StatusCode, body)
	}
	fams := scrape(t, ts, nil)
	if metricValue(fams, "dfill_model_loaded") != 1 || metricValue(fams, "dfill_model_info", "model", "fake-model") != 1 {
		t.Errorf("model metrics: loaded %v info %v", metricValue(fams, "dfill_model_loaded"), metricValue(fams, "dfill_model_info", "model", "fake-model"))
	}
}

// TestMetrics checks that /metrics parses with Prometheus's text parser
// and that its counters move with the requests answered.
func TestMetrics(t *testing.T) {
	_, ts := serve(t, newFake(), Options{})
	before := scrape(t, ts, nil)
	for _, name := range []string{"dfill_http_requests_total", "dfill_http_errors_total", "dfill_http_request_duration_seconds"} {
		if metricValue(before, name) != -1 {
			t.Errorf("%s has samples before any request", name)
		}
	}
	if got := metricValue(before, "dfill_generation_tokens_per_second"); got != 0 {
		t.Errorf("dfill_generation_tokens_per_second counts %v generations before any", got)
	}
	if metricValue(before, "dfill_generated_tokens_total") != 0 || metricValue(before, "dfill_queue_depth") != 0 ||
		metricValue(before, "process_resident_memory_bytes") <= 0 || metricValue(before, "go_goroutines") <= 0 {
		t.Error("the gauges and process metrics are missing")
	}

	post(t, ts, "/v1/fim/completions", `{"prompt":"x"}`)
	post(t, ts, "/v1/fim/completions", `{"prompt":"x","stream":true}`)
	post(t, ts, "/v1/fim/completions", `{"prompt":`)
	post(t, ts, "/nope", ``)

	after := scrape(t, ts, nil)
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"dfill_http_requests_total", []string{"route", "fim", "code", "200"}, 2},
		{"dfill_http_requests_total", []string{"route", "fim", "code", "400"}, 1},
		{"dfill_http_requests_total", []string{"route", "other", "code", "404"}, 1},
		{"dfill_http_requests_total", []string{"route", "metrics", "code", "200"}, 1},
		{"dfill_http_errors_total", []string{"route", "fim", "type", typeInvalid}, 1},
		{"dfill_http_errors_total", []string{"route", "other", "type", typeNotFound}, 1},
		{"dfill_http_request_duration_seconds", []string{"route", "fim"}, 3},
		{"dfill_generated_tokens_total", nil, 6},
		{"dfill_generation_tokens_per_second", nil, 2},
		{"dfill_queue_depth", nil, 0},
		{"dfill_generations_running", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name+strings.Join(tt.labels, ","), func(t *testing.T) {
			if got := metricValue(after, tt.name, tt.labels...); got != tt.want {
				t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
			}
		})
	}
}

// TestPanicIsAnError checks that a panic in a handler answers 500 in the
// error envelope and the server goes on serving.
func TestPanicIsAnError(t *testing.T) {
	f := newFake()
	f.panics.Store(true)
	_, ts := serve(t, f, Options{})
	resp, body := post(t, ts, "/v1/fim/completions", `{"prompt":"x"}`)
	if resp.StatusCode != http.StatusInternalServerError || decode[wireError](t, body).Error.Type != typeServer {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
	f.panics.Store(false)
	if resp, body := post(t, ts, "/v1/fim/completions", `{"prompt":"x"}`); resp.StatusCode != http.StatusOK {
		t.Errorf("after the panic: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, context.Background(), http.MethodGet, ts.URL+"/healthz", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("healthz after the panic: %d", resp.StatusCode)
	}
}
