package main

import (
	"context"
	"testing"
)

// TestBenchKernelsRuns runs `dfill bench kernels` on the tiny model's shapes
// with the shortest timings, as a table and as JSON, with each --prepack,
// and checks that bad flags are refused.
func TestBenchKernelsRuns(t *testing.T) {
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"table", []string{"--models", "tiny", "--m", "16,33", "--types", "f32,q8_0,q4_k", "--min-time", "1ms", "--repeats", "1", "--threads", "2"}, true},
		{"json", []string{"--models", "tiny", "--shapes", "attn_q", "--m", "7", "--types", "bf16", "--min-time", "1ms", "--repeats", "2", "--json"}, true},
		{"every weight packed", []string{"--prepack", "--models", "tiny", "--shapes", "output", "--m", "20", "--types", "f16", "--min-time", "1ms", "--repeats", "1"}, true},
		{"none packed", []string{"--prepack=false", "--models", "dfill-go", "--shapes", "attn_q", "--m", "40", "--types", "q8_0", "--min-time", "1ms", "--repeats", "1"}, true},
		{"bad prepack", []string{"--prepack=sometimes"}, false},
		{"unknown model", []string{"--models", "gpt-5"}, false},
		{"unknown type", []string{"--types", "q2_k"}, false},
		{"bad m", []string{"--m", "x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := runBenchKernels(context.Background(), tt.args)
			if (err == nil) != tt.ok {
				t.Errorf("runBenchKernels(%q) = %v, want ok=%v", tt.args, err, tt.ok)
			}
		})
	}
}
