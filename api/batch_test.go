package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/dfill/dfill/engine"
)

// TestBatcher holds four requests until all wait, runs them as one batch,
// and checks each gets the tokens it gets alone (greedy), its own steps,
// and that a request cancelled in the batch fails alone.
func TestBatcher(t *testing.T) {
	m := loadRandom(t, engine.ArchLLaDA)
	b := FromEngineBatched(m, 8).(*batcher)
	b.running = true // no batch starts until all wait: run is called below
	opt := engine.Options{Lengths: []int{6}, Steps: 3}
	prompts := []engine.Prompt{{Prefix: "ab", Suffix: "c"}, {Prefix: "def", Suffix: "gh"}, {Prefix: "x", Suffix: ""}, {Prefix: "ijk", Suffix: "l"}}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	type answer struct {
		cands []engine.Candidate
		err   error
		steps int
	}
	answers := make([]answer, len(prompts)+1)
	var wg sync.WaitGroup
	for i := range answers {
		ctx, p := context.Background(), engine.Prompt{Prefix: "zz"}
		if i < len(prompts) {
			p = prompts[i]
		} else {
			ctx = cancelled
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := &answers[i]
			a.cands, a.err = b.Infill(ctx, p, opt, func(engine.Step) { a.steps++ })
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		b.mu.Lock()
		n := len(b.pending)
		b.mu.Unlock()
		if n == len(answers) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests pending, want %d", n, len(answers))
		}
	}
	b.run()
	wg.Wait()
	for i, p := range prompts {
		want, err := m.Infill(context.Background(), p, opt, nil)
		a := answers[i]
		if err != nil || a.err != nil || len(a.cands) != 1 || a.cands[0].Text != want[0].Text || a.steps == 0 {
			t.Errorf("request %d: %+v, %v, %d steps; alone %q, %v", i, a.cands, a.err, a.steps, want[0].Text, err)
		}
	}
	if last := answers[len(prompts)]; last.err == nil {
		t.Errorf("the cancelled request: %+v, want its context's error", last)
	}
	if b.running {
		t.Error("the batcher still runs with nothing pending")
	}
}

// TestBatchedServer sends concurrent requests to a server that batches
// four at a time: each answer equals the one a one-at-a-time server gives.
func TestBatchedServer(t *testing.T) {
	m := loadRandom(t, engine.ArchLLaDA)
	_, one := serve(t, FromEngine(m), Options{})
	_, four := serve(t, FromEngineBatched(m, 4), Options{Batch: 4, QueueSize: 8})
	ask := func(url string, i int) string {
		body := fmt.Sprintf(`{"prompt":"%c%c","suffix":"z","max_tokens":5,"temperature":0}`, 'a'+i, 'b'+i)
		resp, b := do(t, context.Background(), http.MethodPost, url+"/v1/fim/completions", body, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("request %d: %d %s", i, resp.StatusCode, b)
			return ""
		}
		var c struct{ Choices []struct{ Text string } }
		json.Unmarshal(b, &c)
		return c.Choices[0].Text
	}
	got := make([]string, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = ask(four.URL, i)
		}()
	}
	wg.Wait()
	for i := range got {
		if want := ask(one.URL, i); got[i] != want {
			t.Errorf("request %d: batched %q, alone %q", i, got[i], want)
		}
	}
}
