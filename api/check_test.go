package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/dfill/dfill/engine"
)

// TestExtension checks dfill's additions to a request: the sampler
// settings reach the engine, a language adds the syntax check of the
// answer where it goes (accepted, trimmed to its first lines, or
// rejected) and the answer's tokens, and bad values are 400s.
func TestExtension(t *testing.T) {
	const prefix, suffix = "package p\n\nfunc f() {\n\t", "\n}\n"
	for _, tt := range []struct {
		name, answer, outcome, validated string
	}{
		{"accepted", "x := 1", validAccepted, "x := 1"},
		{"trimmed", "x := 1\n\t)", validTrimmed, "x := 1"},
		{"rejected", "x := )", validRejected, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newFake()
			m.steps, m.answer = []string{"░░░", tt.answer}, candidate(tt.answer, 4, 3)
			_, ts := serve(t, m, Options{})
			body, _ := json.Marshal(map[string]any{"prompt": prefix, "suffix": suffix, "max_tokens": 8, "language": "go",
				"steps": 4, "algorithm": "margin", "threshold": 0.5})
			resp, b := post(t, ts, "/v1/fim/completions", string(body))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			var got struct {
				Choices []struct{ Text string }
				Dfill   *extension
			}
			if err := json.Unmarshal(b, &got); err != nil || got.Dfill == nil {
				t.Fatalf("answer %s: %v; want a dfill object", b, err)
			}
			if got.Dfill.Validation != tt.outcome || got.Dfill.Validated != tt.validated || got.Dfill.Steps != 3 ||
				strings.Join(got.Dfill.Tokens, "") != tt.answer {
				t.Errorf("dfill %+v, want %s with %q and the answer's runes", got.Dfill, tt.outcome, tt.validated)
			}
			if _, opt, _, _ := m.seen(); opt.Steps != 4 || opt.Score != engine.ScoreMargin || opt.Threshold != 0.5 {
				t.Errorf("engine options %+v, want steps 4, margin, threshold 0.5", opt)
			}
		})
	}

	_, ts := serve(t, newFake(), Options{})
	if _, b := post(t, ts, "/v1/fim/completions", `{"prompt":"x"}`); strings.Contains(string(b), `"dfill"`) {
		t.Errorf("no language, yet a dfill object: %s", b)
	}
	for _, body := range []string{
		`{"prompt":"x","algorithm":"best"}`,
		`{"prompt":"x","steps":-1}`,
		`{"prompt":"x","max_tokens":8,"steps":9}`,
		`{"prompt":"x","threshold":1.5}`,
	} {
		if resp, b := post(t, ts, "/v1/fim/completions", body); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d (%s), want 400", body, resp.StatusCode, b)
		}
	}
}

func TestCutPieces(t *testing.T) {
	for _, tt := range []struct {
		pieces []string
		n      int
		want   string
	}{
		{[]string{"ret", "urn", " err"}, 10, "ret|urn| err"},
		{[]string{"ret", "urn", " err"}, 5, "ret|ur"},
		{[]string{"ret", "urn"}, 0, ""},
	} {
		if got := strings.Join(cutPieces(tt.pieces, tt.n), "|"); got != tt.want {
			t.Errorf("cutPieces(%q, %d) = %q, want %q", tt.pieces, tt.n, got, tt.want)
		}
	}
}
