package bench

import (
	"context"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/dfill/dfill/completion"
)

// TestOracleFidelity runs the oracle through the real pipeline (post-
// processing, suffix de-duplication, the single/multi-line policy and
// tree-sitter validation) on testdata/oracle.jsonl, whose tasks in both
// formats readTasks reads are chosen so that nothing should be lost.
func TestOracleFidelity(t *testing.T) {
	tasks, err := readTasks("testdata/oracle.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) < len(overrunVariants) {
		t.Fatalf("%d tasks: want one at least per overrun variant (%d)", len(tasks), len(overrunVariants))
	}
	tests := []struct {
		name            string
		mode            string
		minEqual        float64 // share equal as scored
		minBytes        float64 // share byte-exact
		minEqualOrLines float64 // oracleCut: as proposed or trimmed to whole lines
	}{
		{name: "plain keeps every answer", mode: oraclePlain, minEqual: 1, minBytes: 1},
		{name: "overrun is cut back", mode: oracleOverrun, minEqual: 1, minBytes: 1},
		{name: "cut answers mostly kept", mode: oracleCut, minEqualOrLines: 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := measureOracle(context.Background(), tt.mode, tasks, completion.Options{}, zaptest.NewLogger(t), func(int) {})
			if err != nil {
				t.Fatal(err)
			}
			all := out.All
			if all.Tasks != len(tasks) || !out.Validate {
				t.Fatalf("%d tasks, validation %v; want %d, true", all.Tasks, out.Validate, len(tasks))
			}
			if all.Equal < tt.minEqual || all.ByteExact < tt.minBytes || all.Equal+all.WholeLines < tt.minEqualOrLines {
				t.Errorf("equal %.2f, byte-exact %.2f, whole lines %.2f; want at least %.2f, %.2f, and %.2f together; losses %v, byte losses %v",
					all.Equal, all.ByteExact, all.WholeLines, tt.minEqual, tt.minBytes, tt.minEqualOrLines, all.Losses, all.ByteLosses)
			}
		})
	}
}

func TestPropose(t *testing.T) {
	task := infillTask{Prefix: "func f() {\n\tif x {\n\t\t", Middle: "return 1", Suffix: "\n\t}\n}\n"}
	tests := []struct {
		name    string
		mode    string
		i       int
		want    string
		variant string
	}{
		{name: "plain", mode: oraclePlain, want: "return 1"},
		{name: "suffix line", mode: oracleOverrun, i: 0, want: "return 1\n\t}", variant: "suffix-line"},
		{name: "stray bracket", mode: oracleOverrun, i: 1, want: "return 1\n\t\t}", variant: "bracket"},
		{name: "blank lines", mode: oracleOverrun, i: 2, want: "return 1\n\n\n", variant: "blank-lines"},
		{name: "endoftext", mode: oracleOverrun, i: 3, want: "return 1" + "<|endoftext|><|endoftext|><|endoftext|><|endoftext|>", variant: "eos"},
		{name: "eot_id", mode: oracleOverrun, i: 7, want: "return 1" + "<|eot_id|><|eot_id|><|eot_id|><|eot_id|>", variant: "eos"},
		{name: "cut", mode: oracleCut, want: "retu"},
		{name: "cut multi-line", mode: oracleCut, want: "a\nbc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := task
			if tt.name == "cut multi-line" {
				tk.Middle = "a\nbcd\n"
			}
			got, variant := propose(tt.mode, tt.i, tk)
			if got != tt.want || variant != tt.variant {
				t.Errorf("propose(%s, %d) = %q, %q; want %q, %q", tt.mode, tt.i, got, variant, tt.want, tt.variant)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	task := infillTask{Kind: "MultiLineInfilling", Prefix: "def f(x):\n    ", Middle: "y = x\n    return y", Suffix: "\n"}
	ans := func(s string) answer {
		return answer{has: s != "", insert: s, doc: task.Prefix + s + task.Suffix}
	}
	tests := []struct {
		name            string
		withVal, noVal  string
		reason, byteWhy string
	}{
		{name: "equal", withVal: "y = x\n    return y", noVal: "y = x\n    return y"},
		{name: "rejected", withVal: "", noVal: "y = x\n    return y", reason: lossRejected, byteWhy: lossRejected},
		{name: "trimmed", withVal: "y = x", noVal: "y = x\n    return y", reason: lossTrimmed, byteWhy: lossTrimmed},
		{name: "emptied", reason: lossEmptied, byteWhy: lossEmptied},
		{name: "policy", withVal: "y = x", noVal: "y = x", reason: lossPolicy, byteWhy: lossPolicy},
		{name: "whitespace", withVal: "y = x\n    return  y", noVal: "y = x\n    return  y", reason: lossWhitespace, byteWhy: lossWhitespace},
		{name: "overrun", withVal: "y = x\n    return y\n)", noVal: "y = x\n    return y\n)", reason: lossOverrun, byteWhy: lossOverrun},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := classify(task, task.Middle, ans(tt.withVal), ans(tt.noVal))
			if f.Reason != tt.reason || f.BytesReason != tt.byteWhy {
				t.Errorf("reasons %q, %q; want %q, %q", f.Reason, f.BytesReason, tt.reason, tt.byteWhy)
			}
		})
	}
}
