package bench

import (
	"context"
	"strings"
	"testing"

	"github.com/dfill/dfill/cmd/dfill/internal/cli"
)

// TestBenchKernelsRuns runs `dfill bench kernels` on the tiny model's shapes
// with the shortest timings, as a table and as JSON, with each --prepack,
// and checks that bad flags are refused.
func TestBenchKernelsRuns(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int // exit status
	}{
		{"table", []string{"--models", "tiny", "--m", "16,33", "--types", "f32,q8_0,q4_k", "--min-time", "1ms", "--repeats", "1", "--threads", "2"}, 0},
		{"json", []string{"--models", "tiny", "--shapes", "attn_q", "--m", "7", "--types", "bf16", "--min-time", "1ms", "--repeats", "2", "--json"}, 0},
		{"every weight packed", []string{"--prepack", "--models", "tiny", "--shapes", "output", "--m", "20", "--types", "f16", "--min-time", "1ms", "--repeats", "1"}, 0},
		{"none packed", []string{"--prepack=false", "--models", "dfill-go", "--shapes", "attn_q", "--m", "40", "--types", "q8_0", "--min-time", "1ms", "--repeats", "1"}, 0},
		{"bad prepack", []string{"--prepack=sometimes"}, 2},
		{"unknown model", []string{"--models", "gpt-5"}, 1},
		{"unknown type", []string{"--types", "q2_k"}, 1},
		{"bad m", []string{"--m", "x"}, 1},
		{"an argument", []string{"tiny"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr strings.Builder
			if code := cli.Main(context.Background(), kernelsCommand(), tt.args, &stderr); code != tt.code {
				t.Errorf("bench kernels %q: exit status %d, want %d; stderr:\n%s", tt.args, code, tt.code, stderr.String())
			}
		})
	}
}
