package tokenizer

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// seq yields texts.
func seq(texts ...string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for _, s := range texts {
			if !yield(s) {
				return
			}
		}
	}
}

func TestTrainHandWorked(t *testing.T) {
	// Pre-tokens: "ab" once, " ab" twice, "abc" once. Pair counts: a b 4,
	// Ġ a 2, b c 1. After a b: Ġ ab 2, ab c 1. Then ab c, then no pairs.
	c, err := Train(seq("ab ab ab", "abc"), 300, "gpt2", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a b", "Ġ ab", "ab c"}; !reflect.DeepEqual(c.Merges, want) {
		t.Errorf("merges %q, want %q", c.Merges, want)
	}
	if want := []string{"ab", "Ġab", "abc"}; !reflect.DeepEqual(c.Tokens[256:], want) {
		t.Errorf("new tokens %q, want %q", c.Tokens[256:], want)
	}
	tk := mustNew(t, c)
	if got := texts(tk, tk.Encode("abc ab")); !reflect.DeepEqual(got, []string{"abc", "Ġab"}) {
		t.Errorf("Encode = %q", got)
	}
}

func TestTrainTies(t *testing.T) {
	// x y and y z both occur twice: the smaller pair (by token ids) wins.
	c, err := Train(seq("xyz", "xyz"), 257, "gpt2", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Merges, []string{"x y"}) {
		t.Errorf("merges %q", c.Merges)
	}
}

func TestTrainSpecials(t *testing.T) {
	c, err := Train(seq("hello hello world"), 256+3+len(DefaultSpecials()), "qwen2", DefaultSpecials())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tokens) != 256+3+len(DefaultSpecials()) || len(c.Merges) != 3 {
		t.Fatalf("%d tokens, %d merges", len(c.Tokens), len(c.Merges))
	}
	tk := mustNew(t, c)
	if tk.Token(tk.Mask()) != MaskToken || tk.Token(tk.EOS()) != EndOfTextToken || tk.Token(tk.Expand()) != ExpandToken || tk.PAD() != tk.EOS() {
		t.Errorf("special ids %d %d %d", tk.Mask(), tk.EOS(), tk.Expand())
	}
	if c.Tokens[len(c.Tokens)-1] != FIMSuffixToken || !tk.IsSpecial(int32(len(c.Tokens)-1)) {
		t.Error("specials are not last")
	}
}

func TestTrainErrors(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		pre      string
		specials []string
		target   error
	}{
		{"unknown pre", 300, "nope", nil, ErrUnknownPre},
		{"too small", 257, "gpt2", []string{"<a>", "<b>"}, ErrInvalidConfig},
		{"empty special", 300, "gpt2", []string{""}, ErrInvalidConfig},
		{"repeated special", 300, "gpt2", []string{"<a>", "<a>"}, ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Train(seq("abc"), tt.size, tt.pre, tt.specials); !errors.Is(err, tt.target) {
				t.Errorf("Train: %v, want %v", err, tt.target)
			}
		})
	}
}

// goSource returns up to limit bytes of Go source from GOROOT/src, in a
// fixed order, or skips the test when there is none.
func goSource(tb testing.TB, limit int) []string {
	tb.Helper()
	root := filepath.Join(runtime.GOROOT(), "src")
	var files []string
	total := 0
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || total >= limit {
			return filepath.SkipDir
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "vendor") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") {
			b, err := os.ReadFile(path)
			if err == nil {
				files = append(files, string(b))
				total += len(b)
			}
		}
		return nil
	})
	if total == 0 {
		tb.Skip("no Go source under GOROOT")
	}
	return files
}

func TestTrainGoSource(t *testing.T) {
	limit := 1 << 20
	if testing.Short() {
		limit = 128 << 10
	}
	src := goSource(t, limit)
	train := func() Config {
		c, err := Train(seq(src...), 1024, "qwen2", DefaultSpecials())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := train()
	if len(c.Tokens) != 1024 {
		t.Fatalf("%d tokens", len(c.Tokens))
	}
	if !reflect.DeepEqual(c, train()) {
		t.Fatal("training twice gave different vocabularies")
	}
	merges := slices.Clone(c.Merges)
	slices.Sort(merges)
	if len(slices.Compact(merges)) != len(c.Merges) {
		t.Error("repeated merges")
	}
	tk := mustNew(t, c)
	n, bytes := 0, 0
	for _, s := range src[:min(len(src), 50)] {
		ids := tk.EncodePlain(s)
		if tk.Decode(ids) != s {
			t.Fatal("round trip failed")
		}
		n += len(ids)
		bytes += len(s)
	}
	if ratio := float64(bytes) / float64(n); ratio < 2.0 {
		t.Errorf("only %.2f bytes per token", ratio)
	} else {
		t.Logf("%.2f bytes per token", ratio)
	}
}
