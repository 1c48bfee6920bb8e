package api

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dfill/dfill/engine"
	"github.com/dfill/dfill/engine/gguf"
)

// loadRandom writes a tiny random-weight model and loads it.
func loadRandom(t *testing.T, arch engine.Arch) *engine.Model {
	t.Helper()
	var buf bytes.Buffer
	spec := engine.Spec{Arch: arch, Name: "random-" + string(arch), Layers: 2, Dim: 64, Heads: 4, KVHeads: 2, FFN: 128,
		Vocab: 320, Context: 256, RopeBase: 10000, Eps: 1e-6, Tied: true, Type: gguf.TypeF32, Seed: 11}
	if err := engine.WriteRandom(&buf, spec); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := engine.Load(path, engine.LoadOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestEngineModel runs the whole path on a real (random-weight) model:
// the same greedy request answered whole, streamed, and streamed with
// diffusing gives the same text, the usage counts real tokens, and the
// diffusing steps unmask the span down to that text.
func TestEngineModel(t *testing.T) {
	tests := []struct {
		name string
		arch engine.Arch
	}{
		{"llada", engine.ArchLLaDA},
		{"dream", engine.ArchDream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := loadRandom(t, tt.arch)
			_, ts := serve(t, FromEngine(m), Options{})
			const prefix, suffix = "func add(a, b int) int {\n\t", "\n}\n"
			body := fmt.Sprintf(`{"model":%q,"prompt":%q,"suffix":%q,"max_tokens":8,"temperature":0`, m.Name(), prefix, suffix)

			resp, out := post(t, ts, "/v1/fim/completions", body+`}`)
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, out)
			}
			whole := decode[wireCompletion](t, out)
			text := whole.Choices[0].Text
			t.Logf("answer %q, finish %s, usage %+v", text, *whole.Choices[0].FinishReason, *whole.Usage)
			u := whole.Usage
			wantPrompt := len(m.Tokenizer.EncodePlain(prefix)) + len(m.Tokenizer.EncodePlain(suffix))
			if u.PromptTokens != wantPrompt || u.CompletionTokens < 0 || u.CompletionTokens > 8 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
				t.Errorf("usage %+v, want %d prompt tokens and at most 8 more", u, wantPrompt)
			}
			if fr := *whole.Choices[0].FinishReason; (fr == "length") != (u.CompletionTokens == 8) {
				t.Errorf("finish %q with %d of 8 tokens", fr, u.CompletionTokens)
			}

			s := streamRequest(t, ts.URL+"/v1/completions", body+`,"stream":true,"stream_options":{"include_usage":true}}`)
			if s.text() != text || s.usage == nil || *s.usage != *u {
				t.Errorf("streamed %q (usage %+v), whole %q (usage %+v)", s.text(), s.usage, text, u)
			}

			d := streamRequest(t, ts.URL+"/v1/fim/completions", body+`,"stream":true,"diffusing":true}`)
			steps := d.chunks[:len(d.chunks)-1]
			if last := d.chunks[len(d.chunks)-1].Choices[0].Text; last != text || len(steps) < 2 {
				t.Fatalf("diffusing: %d steps, last %q, want several and %q", len(steps), last, text)
			}
			if first := steps[0].Choices[0].Text; !strings.Contains(first, engine.MaskGlyph) {
				t.Errorf("the first step %q has no masked position", first)
			}
			if final := steps[len(steps)-1].Choices[0].Text; strings.Contains(final, engine.MaskGlyph) {
				t.Errorf("the last step %q still has masked positions", final)
			}
		})
	}
}
