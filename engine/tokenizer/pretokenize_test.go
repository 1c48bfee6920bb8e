package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// split pre-tokenizes s with k.
func split(k preKind, s string) []string {
	var out []string
	for i := 0; i < len(s); {
		j := k.next(s, i)
		out = append(out, s[i:j])
		i = j
	}
	return out
}

func TestPreTokenize(t *testing.T) {
	tests := []struct {
		name string
		pre  string
		in   string
		want []string
	}{
		// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
		{"gpt2 words", "gpt2", "Hello world", []string{"Hello", " world"}},
		{"gpt2 spaces before word", "gpt2", "a   b", []string{"a", "  ", " b"}},
		{"gpt2 trailing spaces", "gpt2", "a   ", []string{"a", "   "}},
		{"gpt2 one space before punct", "gpt2", "a .b", []string{"a", " .", "b"}},
		{"gpt2 digits unbounded", "gpt2", "x 12345", []string{"x", " 12345"}},
		{"gpt2 newlines", "gpt2", "a\n\nb", []string{"a", "\n", "\n", "b"}},
		{"gpt2 newline then indent", "gpt2", "{\n\treturn", []string{"{", "\n", "\t", "return"}},
		{"gpt2 contractions", "gpt2", "don't we'll", []string{"don", "'t", " we", "'ll"}},
		{"gpt2 contraction is case sensitive", "gpt2", "DON'T", []string{"DON", "'", "T"}},
		{"gpt2 contraction ignores what follows", "gpt2", "'sa", []string{"'s", "a"}},
		{"gpt2 quote run", "gpt2", "''s", []string{"''", "s"}},
		{"gpt2 non-ASCII letters", "gpt2", "héllo мир", []string{"héllo", " мир"}},
		{"gpt2 tab does not join word", "gpt2", "\tx", []string{"\t", "x"}},
		{"gpt2 invalid byte alone", "gpt2", "ab\xffcd", []string{"ab", "\xff", "cd"}},
		{"gpt2 space before invalid", "gpt2", "a \xff", []string{"a", " ", "\xff"}},
		{"gpt2 nbsp is space", "gpt2", "a\u00a0\u00a0b", []string{"a", "\u00a0", "\u00a0", "b"}},

		// LLaMA-3: (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
		{"llama3 words", "llama-bpe", "Hello world", []string{"Hello", " world"}},
		{"llama3 digits in threes", "llama-bpe", "1234567", []string{"123", "456", "7"}},
		{"llama3 space before digits", "llama-bpe", "x 42", []string{"x", " ", "42"}},
		{"llama3 punct joins word", "llama-bpe", "(self.x", []string{"(self", ".x"}},
		{"llama3 punct run then newline", "llama-bpe", "{\n\treturn", []string{"{\n", "\treturn"}},
		{"llama3 space punct", "llama-bpe", "a := b", []string{"a", " :=", " b"}},
		{"llama3 spaces before word", "llama-bpe", "a   b", []string{"a", "  ", " b"}},
		{"llama3 newlines collapse", "llama-bpe", "a\n\n\nb", []string{"a", "\n\n\n", "b"}},
		{"llama3 spaces then newline", "llama-bpe", "a  \n  b", []string{"a", "  \n", " ", " b"}},
		{"llama3 trailing whitespace", "llama-bpe", "a \n ", []string{"a", " \n", " "}},
		{"llama3 contractions fold case", "llama-bpe", "DON'T I'M", []string{"DON", "'T", " I", "'M"}},
		{"llama3 quote not contraction", "llama-bpe", "'abc", []string{"'abc"}},
		{"llama3 tab joins word", "llama-bpe", "\tx", []string{"\tx"}},
		{"llama3 newline does not join word", "llama-bpe", "\nx", []string{"\n", "x"}},
		{"llama3 non-ASCII", "llama-bpe", "¿Qué 世界", []string{"¿Qué", " 世界"}},
		{"llama3 crlf", "llama-bpe", "a;\r\nb", []string{"a", ";\r\n", "b"}},
		{"llama3 invalid byte alone", "llama-bpe", " \xfe\xffx", []string{" ", "\xfe", "\xff", "x"}},
		{"llama3 unicode digits", "llama-bpe", "٣٤٥٦", []string{"٣٤٥", "٦"}},

		// Qwen2: the LLaMA-3 split with single digits.
		{"qwen2 single digits", "qwen2", "x1234", []string{"x", "1", "2", "3", "4"}},
		{"qwen2 go code", "qwen2", "func f() {\n\treturn 10\n}\n", []string{"func", " f", "()", " {\n", "\treturn", " ", "1", "0", "\n", "}\n"}},
		{"qwen2 indent before word", "qwen2", "\n    x", []string{"\n", "   ", " x"}},
		{"qwen2 string", "qwen2", `s := "it's"`, []string{"s", " :=", ` "`, "it", "'s", `"`}},
		{"llada maps to llama3", "llada", "12345", []string{"123", "45"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := lookupPre(tt.pre)
			if err != nil {
				t.Fatal(err)
			}
			got := split(k, tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("split(%q, %q) = %q, want %q", tt.pre, tt.in, got, tt.want)
			}
			if strings.Join(got, "") != tt.in {
				t.Errorf("pieces do not cover the input")
			}
		})
	}
}

// TestPreTokenizeReference compares the scanners with the regular
// expressions themselves on random strings (testdata/pretokenize.json,
// written by testdata/pretokenize_gen.py with Python's regex module).
func TestPreTokenizeReference(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "pretokenize.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Pre  string   `json:"pre"`
		In   string   `json:"in"`
		Want []string `json:"want"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, c := range cases {
		k, err := lookupPre(c.Pre)
		if err != nil {
			t.Fatal(err)
		}
		if got := split(k, c.In); !reflect.DeepEqual(got, c.Want) {
			t.Errorf("%s: split(%q) = %q, want %q", c.Pre, c.In, got, c.Want)
			if failed++; failed > 10 {
				t.Fatal("too many failures")
			}
		}
	}
}
