package api

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/dfill/dfill/engine"
)

// streamed is one streamed answer as a client reads it.
type streamed struct {
	chunks []wireCompletion // the chunks with a choice, in order
	usage  *usage           // from the usage chunk, when there is one
	done   bool             // ended with [DONE]
}

// text is the concatenation of the chunks' text: the answer, without
// diffusing.
func (s streamed) text() string {
	var b strings.Builder
	for _, c := range s.chunks {
		b.WriteString(c.Choices[0].Text)
	}
	return b.String()
}

// streamRequest posts body and reads the SSE answer, checking the frame
// of every event: one choice per chunk with a null finish_reason but on
// the last, a usage chunk only last, and nothing after [DONE].
func streamRequest(t *testing.T, url, body string) streamed {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	data, done := readEvents(t, resp.Body)
	var s streamed
	s.done = done
	for i, d := range data {
		c := decode[wireCompletion](t, []byte(d))
		if c.Object != "text_completion" || !strings.HasPrefix(c.ID, "cmpl-") || c.Model == "" {
			t.Errorf("event %d: head %+v", i, c)
		}
		if s.usage != nil {
			t.Errorf("event %d after the usage chunk: %s", i, d)
		}
		if len(c.Choices) == 0 {
			if c.Usage == nil {
				t.Errorf("event %d: no choices and no usage: %s", i, d)
			}
			s.usage = c.Usage
			continue
		}
		if c.Usage != nil {
			t.Errorf("event %d: usage on a chunk with a choice: %s", i, d)
		}
		if len(s.chunks) > 0 && s.chunks[len(s.chunks)-1].Choices[0].FinishReason != nil {
			t.Errorf("event %d after the chunk with the finish reason: %s", i, d)
		}
		s.chunks = append(s.chunks, c)
	}
	if len(s.chunks) == 0 || s.chunks[len(s.chunks)-1].Choices[0].FinishReason == nil {
		t.Fatalf("no chunk carries a finish reason: %q", data)
	}
	return s
}

// TestStream checks streamed answers: the text in pieces as the span's
// start is committed, held back where a stop sequence may begin, the
// finish reason on the last chunk, usage when asked for, then [DONE].
func TestStream(t *testing.T) {
	tests := []struct {
		name      string
		steps     []string
		answer    engine.Candidate
		body      string
		finish    string
		pieces    []string // the chunks' texts, the last one's included
		usage     *usage
		stepsRun  int  // steps the model took
		cancelled bool // the generation stopped early
	}{
		{
			name:   "text as it is committed",
			steps:  []string{"░░░░░", "ret░░░", "return░", "return err"},
			answer: candidate("return err", 4, 3),
			body:   `{"prompt":"p","stream":true}`,
			finish: "stop", pieces: []string{"ret", "urn", " err", ""}, stepsRun: 4,
		},
		{
			name:   "include_usage adds a last chunk with the usage",
			steps:  []string{"░░░░░", "return err"},
			answer: candidate("return err", 4, 3),
			body:   `{"prompt":"pp","suffix":"s","stream":true,"stream_options":{"include_usage":true}}`,
			finish: "stop", pieces: []string{"return err", ""}, usage: &usage{3, 3, 6}, stepsRun: 2,
		},
		{
			name:   "a stop sequence ends the generation at the step that commits it",
			steps:  []string{"░░░░░", "return err\n░░", "return err\n}░", "return err\n}\n"},
			answer: candidate("return err\n}\n", 4, 4),
			body:   `{"prompt":"p","stream":true,"stop":"\n","stream_options":{"include_usage":true}}`,
			finish: "stop", pieces: []string{"return err", ""}, usage: &usage{1, 10, 11}, stepsRun: 2, cancelled: true,
		},
		{
			name:   "text that may begin a stop sequence is held back",
			steps:  []string{"a\n░░", "a\nb░", "a\nb\n"},
			answer: candidate("a\nb\n", 4, 4),
			body:   `{"prompt":"p","stream":true,"stop":["\n\n"]}`,
			finish: "length", pieces: []string{"a", "\nb", "\n"}, stepsRun: 3,
		},
		{
			name:   "an incomplete character is held back",
			steps:  []string{"x\xc3░", "x\xc3\xa9░", "x\xc3\xa9!"},
			answer: candidate("x\xc3\xa9!", 3, 3),
			body:   `{"prompt":"p","stream":true}`,
			finish: "length", pieces: []string{"x", "é", "!", ""}, stepsRun: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.steps, f.answer = tt.steps, tt.answer
			_, ts := serve(t, f, Options{})
			s := streamRequest(t, ts.URL+"/v1/fim/completions", tt.body)
			if !s.done {
				t.Error("the stream did not end with [DONE]")
			}
			var pieces []string
			for _, c := range s.chunks {
				pieces = append(pieces, c.Choices[0].Text)
			}
			if strings.Join(pieces, "|") != strings.Join(tt.pieces, "|") {
				t.Errorf("pieces %q, want %q", pieces, tt.pieces)
			}
			if fr := s.chunks[len(s.chunks)-1].Choices[0].FinishReason; *fr != tt.finish {
				t.Errorf("finish %q, want %q", *fr, tt.finish)
			}
			if (s.usage == nil) != (tt.usage == nil) || s.usage != nil && *s.usage != *tt.usage {
				t.Errorf("usage %+v, want %+v", s.usage, tt.usage)
			}
			_, _, _, run := f.seen()
			if run != tt.stepsRun {
				t.Errorf("the model ran %d steps, want %d", run, tt.stepsRun)
			}
			select {
			case <-f.canceled:
				if !tt.cancelled {
					t.Error("the generation was cancelled")
				}
			default:
				if tt.cancelled {
					t.Error("the generation ran on after the stop sequence")
				}
			}
		})
	}
}

// TestDiffusing checks Mercury's diffusing stream: one chunk per
// denoising step holding the step's whole text, then the answer.
func TestDiffusing(t *testing.T) {
	f := newFake()
	_, ts := serve(t, f, Options{})
	s := streamRequest(t, ts.URL+"/v1/fim/completions", `{"prompt":"p","stream":true,"diffusing":true,"stream_options":{"include_usage":true}}`)
	if !s.done {
		t.Error("no [DONE]")
	}
	var texts []string
	for _, c := range s.chunks {
		texts = append(texts, c.Choices[0].Text)
	}
	want := append(append([]string(nil), f.steps...), "return err")
	if strings.Join(texts, "|") != strings.Join(want, "|") {
		t.Errorf("texts %q, want each step's and the answer %q", texts, want)
	}
	distinct := map[string]bool{}
	for _, x := range texts {
		distinct[x] = true
	}
	if len(distinct) < 4 {
		t.Errorf("the steps' texts do not change: %q", texts)
	}
	if last := s.chunks[len(s.chunks)-1].Choices[0]; last.Text != "return err" || *last.FinishReason != "stop" {
		t.Errorf("last chunk %+v", last)
	}
	if s.usage == nil || *s.usage != (usage{1, 3, 4}) {
		t.Errorf("usage %+v", s.usage)
	}
}

// TestStreamErrorAfterStart checks that an error once the stream has
// begun is sent as an error event, without [DONE].
func TestStreamErrorAfterStart(t *testing.T) {
	f := newFake()
	f.blockAfter, f.unblock = 1, make(chan struct{}) // never unblocked: the deadline ends it
	_, ts := serve(t, f, Options{Timeout: 50e6})
	resp, err := http.Post(ts.URL+"/v1/fim/completions", "application/json", strings.NewReader(`{"prompt":"p","stream":true,"diffusing":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, done := readEvents(t, resp.Body)
	if done || len(data) != 2 {
		t.Fatalf("events %q, [DONE] %v; want a step and an error", data, done)
	}
	e := decode[wireError](t, []byte(data[1]))
	if e.Error.Type != typeTimeout || e.Error.Code != "timeout" {
		t.Errorf("error event %s", data[1])
	}
}

// TestStreamClientDisconnects checks that a client that goes away
// mid-stream cancels the generation.
func TestStreamClientDisconnects(t *testing.T) {
	f := newFake()
	f.blockAfter, f.unblock = 2, make(chan struct{})
	_, ts := serve(t, f, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/fim/completions", strings.NewReader(`{"prompt":"p","stream":true,"diffusing":true}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := resp.Body.Read(buf); err != nil { // the first event has begun
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	<-f.canceled // the test times out if the generation is never cancelled
	// The client hangs up after the first event: the model stops at its
	// next step, or while blocked after the second; never after it.
	if _, _, _, run := f.seen(); run < 1 || run > 2 {
		t.Errorf("the model ran %d steps, want 1 or the 2 before it blocked", run)
	}
}
