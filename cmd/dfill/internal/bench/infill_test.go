package bench

import (
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestScoreText(t *testing.T) {
	tests := []struct {
		name         string
		pred, middle string
		single       bool
		exact        bool
		sim          float64
	}{
		{name: "equal after trim", pred: "  return x\n", middle: "return x", exact: true, sim: 1},
		{name: "first line only", pred: "return x\n}\nfoo", middle: "return x\n", single: true, exact: true, sim: 1},
		{name: "multi-line counts all", pred: "return x\n}", middle: "return x", exact: false, sim: 8.0 / 10},
		{name: "one edit", pred: "return y", middle: "return x", sim: 7.0 / 8},
		{name: "empty prediction", pred: "", middle: "abcd", sim: 0},
		{name: "runes not bytes", pred: "é", middle: "e", sim: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exact, sim := scoreText(tt.pred, tt.middle, tt.single)
			if exact != tt.exact || sim != tt.sim {
				t.Errorf("scoreText(%q, %q) = %v, %v; want %v, %v", tt.pred, tt.middle, exact, sim, tt.exact, tt.sim)
			}
		})
	}
}

func TestReadTasks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "t.jsonl.gz")
	f, _ := os.Create(path)
	gz := gzip.NewWriter(f)
	gz.Write([]byte(`{"id":"Go/0/line/L1","lang":"go","kind":"line","prefix":"a","middle":"b","suffix":"c"}
{"task_id":"SingleLineInfilling/HumanEval/0/L0","prompt":"p","suffix":"s","canonical_solution":"m","test":"t"}

{"task_id":"MultiLineInfilling/HumanEval/0/L0_L2","prompt":"p","suffix":"s","canonical_solution":"m"}
`))
	gz.Close()
	f.Close()
	tasks, err := readTasks(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []infillTask{
		{ID: "Go/0/line/L1", Lang: "go", Kind: "line", Prefix: "a", Middle: "b", Suffix: "c", SingleLine: true},
		{ID: "SingleLineInfilling/HumanEval/0/L0", Lang: "python", Kind: "SingleLineInfilling", Prefix: "p", Middle: "m", Suffix: "s", SingleLine: true},
		{ID: "MultiLineInfilling/HumanEval/0/L0_L2", Lang: "python", Kind: "MultiLineInfilling", Prefix: "p", Middle: "m", Suffix: "s"},
	}
	if len(tasks) != len(want) {
		t.Fatalf("got %d tasks, want %d", len(tasks), len(want))
	}
	for i := range want {
		if tasks[i] != want[i] {
			t.Errorf("task %d = %+v, want %+v", i, tasks[i], want[i])
		}
	}
	if got := selectTasks(tasks, "", 1); len(got) != 3 {
		t.Errorf("limit 1 per kind kept %d, want 3", len(got))
	}
	if got := selectTasks(tasks, "line", 0); len(got) != 1 || got[0].Kind != "line" {
		t.Errorf("kind filter kept %+v", got)
	}

	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte("{not json\n"), 0o644)
	if _, err := readTasks(bad); err == nil {
		t.Error("malformed row: no error")
	}
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if p := percentile(ds, 0.5); p != 5 {
		t.Errorf("p50 = %d, want 5", p)
	}
	if p := percentile(ds, 0.95); p != 10 {
		t.Errorf("p95 = %d, want 10", p)
	}
	if p := percentile(nil, 0.5); p != 0 {
		t.Errorf("empty p50 = %d", p)
	}
}
