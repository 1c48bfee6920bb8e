package tokenizer

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// naiveBPE is the textbook BPE: while any merge applies, apply the one of
// lowest rank at its leftmost place. It is the reference for bpe.
func naiveBPE(t *Tokenizer, piece string) []int32 {
	ids := make([]int32, len(piece))
	for i := range len(piece) {
		ids[i] = t.byteID[piece[i]]
	}
	for {
		best, at := merge{rank: -1}, -1
		for i := 0; i+1 < len(ids); i++ {
			if m, ok := t.ranks[pairKey(ids[i], ids[i+1])]; ok && (at < 0 || m.rank < best.rank) {
				best, at = m, i
			}
		}
		if at < 0 {
			return ids
		}
		ids = slices.Replace(ids, at, at+2, best.id)
	}
}

// naiveEncodePlain encodes with naiveBPE.
func naiveEncodePlain(t *Tokenizer, s string) []int32 {
	var out []int32
	for i := 0; i < len(s); {
		j := t.pre.next(s, i)
		if id, ok := t.pieces[s[i:j]]; ok && t.ignoreMerges && j-i > 1 {
			out = append(out, id)
		} else {
			out = append(out, naiveBPE(t, s[i:j])...)
		}
		i = j
	}
	return out
}

var (
	fuzzOnce       sync.Once
	fuzzTokenizers []*Tokenizer
)

// trainedTokenizers returns one tokenizer per pre-tokenizer, trained on this
// package's own source so that they have realistic merges.
func trainedTokenizers(tb testing.TB) []*Tokenizer {
	fuzzOnce.Do(func() {
		var src []string
		for _, f := range []string{"tokenizer.go", "encode.go", "pretokenize.go", "train.go", "bytes.go"} {
			b, err := os.ReadFile(f)
			if err != nil {
				panic(err)
			}
			src = append(src, string(b), strings.ToUpper(string(b)))
		}
		src = append(src, "héllo wörld 世界 мир ¿qué? 😀😀 \u00a0\u00a0 '' \r\n\r\n 1234567890")
		for _, pre := range []string{"gpt2", "llama-bpe", "qwen2"} {
			c, err := Train(seq(src...), 700, pre, DefaultSpecials())
			if err != nil {
				panic(err)
			}
			tk, err := New(c)
			if err != nil {
				panic(err)
			}
			fuzzTokenizers = append(fuzzTokenizers, tk)
		}
	})
	return fuzzTokenizers
}

// checkRoundTrip checks the encode/decode properties on s.
func checkRoundTrip(t *testing.T, tk *Tokenizer, s string) {
	plain := tk.EncodePlain(s)
	if got := tk.Decode(plain); got != s {
		t.Fatalf("%v: Decode(EncodePlain(%q)) = %q", tk.pre, s, got)
	}
	// The naive reference is quadratic; long inputs would stall the fuzzers.
	if len(s) <= 4096 {
		if want := naiveEncodePlain(tk, s); !slices.Equal(plain, want) {
			t.Fatalf("%v: EncodePlain(%q) = %v, naive BPE gives %v", tk.pre, s, plain, want)
		}
	}
	for _, id := range plain {
		if tk.IsSpecial(id) {
			t.Fatalf("%v: EncodePlain(%q) gave special %d", tk.pre, s, id)
		}
	}
	if got := tk.Decode(tk.Encode(s)); got != s {
		t.Fatalf("%v: Decode(Encode(%q)) = %q", tk.pre, s, got)
	}
}

func TestBPEMatchesNaive(t *testing.T) {
	inputs := []string{
		"func (t *Tokenizer) Encode(text string) []int32 {\n\treturn nil\n}\n",
		strings.Repeat("=", 1000), strings.Repeat("aaab", 300), strings.Repeat(" ", 700) + "x",
		"tokenizer tokenizer TOKENIZER Tokenizer", "\xff\xfe<|mask|>\x00",
	}
	for _, tk := range trainedTokenizers(t) {
		for _, s := range inputs {
			t.Run(fmt.Sprintf("%v/%.10q", tk.pre, s), func(t *testing.T) {
				checkRoundTrip(t, tk, s)
			})
		}
	}
}

func FuzzEncodeDecode(f *testing.F) {
	for _, s := range []string{"", "hello world", "<|endoftext|>x<|mask|>", "\xff\x00\x80", "  \n\t\tfoo := 123456\r\n", "it's DON'T 世界"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, tk := range trainedTokenizers(t) {
			checkRoundTrip(t, tk, s)
		}
	})
}

// fuzzPres are the pre-tokenizer names FuzzNew picks from.
var fuzzPres = []string{"gpt2", "llama-bpe", "qwen2", "default", "llada", "bogus"}

func FuzzNew(f *testing.F) {
	f.Add([]byte("Tx\nM a b\nab\nT3<|x|>"), true, uint8(0), int32(-1), int32(256), int32(-1))
	f.Add([]byte("ab\nM a b\nM ab c\nabc\nT9bad"), true, uint8(1), int32(0), int32(1), int32(2))
	f.Add([]byte("a\nb\nM a b"), false, uint8(2), int32(-1), int32(-1), int32(-1))
	f.Add([]byte(""), false, uint8(5), int32(7), int32(-3), int32(1<<30))
	f.Add([]byte("T6<0x0A>\nT4\xc4\nT1\xa0\nM \xc4 \xa0"), true, uint8(3), int32(-1), int32(-1), int32(-1))
	f.Fuzz(func(t *testing.T, data []byte, withBytes bool, pre uint8, bos, eos, mask int32) {
		c := Config{Model: "gpt2", Pre: fuzzPres[int(pre)%len(fuzzPres)], BOS: bos, EOS: eos, Mask: mask, PAD: -1, EOT: -1, Expand: -1}
		if withBytes {
			c = ByteLevel(nil)
			c.Pre, c.BOS, c.EOS, c.Mask = fuzzPres[int(pre)%len(fuzzPres)], bos, eos, mask
		}
		for _, line := range strings.Split(string(data), "\n") {
			switch {
			case line == "":
			case line[0] == 'M':
				c.Merges = append(c.Merges, line[1:])
			case line[0] == 'T' && len(line) >= 2:
				c.Tokens = append(c.Tokens, line[2:])
				c.Types = append(c.Types, int32(line[1])-'0')
			default:
				c.Tokens = append(c.Tokens, line)
				c.Types = append(c.Types, TypeNormal)
			}
		}
		tk, err := New(c)
		if err != nil {
			return
		}
		for _, s := range []string{string(data), "hello <|x|> world\xff", "\t\t1234 x'S"} {
			checkRoundTrip(t, tk, s)
		}
		tk.Decode([]int32{-1, bos, eos, mask, 1 << 30})
	})
}
