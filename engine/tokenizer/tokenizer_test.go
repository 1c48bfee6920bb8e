package tokenizer

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// smallConfig is the byte vocabulary plus extra tokens (in token text) and
// merges, with dfill's specials after the bytes.
func smallConfig(pre string, extra, merges []string) Config {
	c := ByteLevel(DefaultSpecials())
	c.Pre = pre
	for _, e := range extra {
		c.Tokens = append(c.Tokens, e)
		c.Types = append(c.Types, TypeNormal)
	}
	c.Merges = merges
	return c
}

// texts returns the vocabulary texts of ids.
func texts(tk *Tokenizer, ids []int32) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = tk.Token(id)
	}
	return out
}

func mustNew(t testing.TB, c Config) *Tokenizer {
	t.Helper()
	tk, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestEncodeKnown(t *testing.T) {
	tests := []struct {
		name   string
		pre    string
		extra  []string
		merges []string
		in     string
		want   []string
	}{
		{"no merges", "gpt2", nil, nil, "ab c", []string{"a", "b", "Ġ", "c"}},
		{"lower rank first", "gpt2", []string{"ab", "bc", "abc"}, []string{"b c", "a b", "a bc"}, "abc", []string{"abc"}},
		{"rank order decides", "gpt2", []string{"ab", "bc", "abc"}, []string{"a b", "b c", "a bc"}, "abc", []string{"ab", "c"}},
		{"leftmost among equal ranks", "gpt2", []string{"aa"}, []string{"a a"}, "aaa", []string{"aa", "a"}},
		{"repeated pair", "gpt2", []string{"aa"}, []string{"a a"}, "aaaa", []string{"aa", "aa"}},
		{"merge of merges", "gpt2", []string{"aa", "aaaa"}, []string{"a a", "aa aa"}, "aaaaa", []string{"aaaa", "a"}},
		{"space byte", "gpt2", []string{"Ġa", "Ġab", "ab"}, []string{"Ġ a", "Ġa b", "a b"}, "x ab", []string{"x", "Ġab"}},
		{"merges stop at pre-token", "gpt2", []string{"Ġa"}, []string{"Ġ a"}, "  a", []string{"Ġ", "Ġa"}},
		{"multi-byte rune", "gpt2", []string{"Ã©"}, []string{"Ã ©"}, "é", []string{"Ã©"}},
		{"ignore_merges takes whole tokens", "llama-bpe", []string{"abc"}, nil, "abc", []string{"abc"}},
		{"no ignore_merges in qwen2", "qwen2", []string{"abc"}, nil, "abc", []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := mustNew(t, smallConfig(tt.pre, tt.extra, tt.merges))
			ids := tk.Encode(tt.in)
			if got := texts(tk, ids); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Encode(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := tk.Decode(ids); got != tt.in {
				t.Errorf("Decode = %q, want %q", got, tt.in)
			}
			// The cached path must agree with the first.
			if got := texts(tk, tk.Encode(tt.in)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("second Encode(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSpecials(t *testing.T) {
	tk := mustNew(t, smallConfig("qwen2", []string{"<|", "|>"}, []string{"< |", "| >"}))
	eot, _ := tk.ID(EndOfTextToken)
	mask, _ := tk.ID(MaskToken)
	if tk.EOS() != eot || tk.PAD() != eot || tk.Mask() != mask || tk.Mask() < 0 || tk.Expand() < 0 {
		t.Fatalf("special ids: eos %d pad %d mask %d expand %d", tk.EOS(), tk.PAD(), tk.Mask(), tk.Expand())
	}
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"alone", "<|endoftext|>", []string{"<|endoftext|>"}},
		{"in text", "a<|mask|><|mask|>b", []string{"a", "<|mask|>", "<|mask|>", "b"}},
		{"not quite", "<|mask|", []string{"<|", "m", "a", "s", "k", "|"}},
		{"fim", "<|fim_prefix|>x<|fim_suffix|>y<|fim_middle|>", []string{"<|fim_prefix|>", "x", "<|fim_suffix|>", "y", "<|fim_middle|>"}},
		{"word before", "end<|endoftext|>", []string{"e", "n", "d", "<|endoftext|>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids := tk.Encode(tt.in)
			if got := texts(tk, ids); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Encode(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := tk.Decode(ids); got != tt.in {
				t.Errorf("Decode = %q", got)
			}
			for _, id := range tk.EncodePlain(tt.in) {
				if tk.IsSpecial(id) {
					t.Errorf("EncodePlain(%q) gave special %q", tt.in, tk.Token(id))
				}
			}
		})
	}
}

func TestLongestSpecial(t *testing.T) {
	c := ByteLevel([]string{"<a>", "<a><b>"})
	tk := mustNew(t, c)
	if got := texts(tk, tk.Encode("<a><b><a>")); !reflect.DeepEqual(got, []string{"<a><b>", "<a>"}) {
		t.Errorf("got %q", got)
	}
}

func TestRoundTripRandom(t *testing.T) {
	tk := mustNew(t, smallConfig("llama-bpe", []string{"Ġa", "ab", "Ġab", "ĠĠ", "ĊĊ"}, []string{"Ġ a", "a b", "Ġa b", "Ġ Ġ", "Ċ Ċ"}))
	rng := rand.New(rand.NewPCG(1, 2))
	n := 3000
	if testing.Short() {
		n = 300
	}
	alphabet := []rune("ab \t\n\r'sS1٣é世😀<|>.\u00a0")
	for range n {
		// Random bytes.
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		// Random UTF-8 from an alphabet that exercises every rule.
		var sb strings.Builder
		for range rng.IntN(40) {
			sb.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		for _, s := range []string{string(b), sb.String(), sb.String() + string(b) + EndOfTextToken} {
			if got := tk.Decode(tk.EncodePlain(s)); got != s {
				t.Fatalf("Decode(EncodePlain(%q)) = %q", s, got)
			}
			if got := tk.Decode(tk.Encode(s)); got != s {
				t.Fatalf("Decode(Encode(%q)) = %q", s, got)
			}
		}
	}
	if !utf8.ValidString(tk.Token(tk.byteID[0xff])) {
		t.Error("byte token text is not valid UTF-8")
	}
}

func TestNewErrors(t *testing.T) {
	base := func() Config { return smallConfig("gpt2", []string{"ab"}, []string{"a b"}) }
	tests := []struct {
		name   string
		edit   func(*Config)
		target error
		want   string
	}{
		{"model", func(c *Config) { c.Model = "llama" }, ErrInvalidConfig, `"llama"`},
		{"pre", func(c *Config) { c.Pre = "weird" }, ErrUnknownPre, `"weird"`},
		{"empty", func(c *Config) { c.Tokens, c.Types, c.Merges = nil, nil, nil }, ErrInvalidConfig, "empty"},
		{"types length", func(c *Config) { c.Types = c.Types[:3] }, ErrInvalidConfig, "3 token types"},
		{"type value", func(c *Config) { c.Types[5] = 9 }, ErrInvalidConfig, "type 9"},
		{"eos range", func(c *Config) { c.EOS = int32(len(c.Tokens)) }, ErrInvalidConfig, "EOS id"},
		{"mask negative", func(c *Config) { c.Mask = -2 }, ErrInvalidConfig, "Mask id -2"},
		{"merge form", func(c *Config) { c.Merges = []string{"ab"} }, ErrInvalidConfig, `merge 0 "ab"`},
		{"merge part", func(c *Config) { c.Merges = []string{"a zz"} }, ErrInvalidConfig, `"zz" is not a token`},
		{"merge result", func(c *Config) { c.Merges = []string{"a c"} }, ErrInvalidConfig, `result "ac"`},
		{"missing byte", func(c *Config) { c.Tokens[10] = "x-" }, ErrInvalidConfig, "0x0A"},
		{"byte is special", func(c *Config) { c.Types[32] = TypeControl }, ErrInvalidConfig, "0x20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			c.Tokens = append([]string(nil), c.Tokens...)
			c.Types = append([]int32(nil), c.Types...)
			tt.edit(&c)
			_, err := New(c)
			if !errors.Is(err, tt.target) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want %v naming %s", err, tt.target, tt.want)
			}
		})
	}
}

func TestByteTokenFallback(t *testing.T) {
	c := ByteLevel(nil)
	c.Tokens[10] = "<0x0A>" // the "Ċ" token replaced by a byte token
	c.Types[10] = TypeByte
	tk := mustNew(t, c)
	if got := tk.Encode("a\nb"); !reflect.DeepEqual(got, []int32{'a', 10, 'b'}) {
		t.Errorf("Encode = %v", got)
	}
	if got := tk.Decode([]int32{10}); got != "\n" {
		t.Errorf("Decode(<0x0A>) = %q", got)
	}
}

func TestNoTypes(t *testing.T) {
	c := ByteLevel([]string{EndOfTextToken})
	c.Types = nil
	tk := mustNew(t, c)
	if !tk.IsSpecial(tk.EOS()) {
		t.Error("EOS is not special without token types")
	}
	if got := tk.Encode("x" + EndOfTextToken); len(got) != 2 || got[1] != tk.EOS() {
		t.Errorf("Encode = %v", got)
	}
}

func TestAccessors(t *testing.T) {
	tk := mustNew(t, smallConfig("gpt2", nil, nil))
	if tk.VocabSize() != 256+len(DefaultSpecials()) {
		t.Errorf("VocabSize = %d", tk.VocabSize())
	}
	if id, ok := tk.ID("Ġ"); !ok || id != ' ' {
		t.Errorf("ID(Ġ) = %d, %v", id, ok)
	}
	if got := string(tk.TokenBytes(' ')); got != " " {
		t.Errorf("TokenBytes(' ') = %q", got)
	}
	if tk.TokenBytes(-1) != nil || tk.Token(1<<20) != "" || tk.IsSpecial(-5) {
		t.Error("out of range ids not handled")
	}
	if got := tk.Decode([]int32{'h', -1, 1 << 30, 'i'}); got != "hi" {
		t.Errorf("Decode skips bad ids: %q", got)
	}
	if tk.BOS() != tk.EOS() || tk.EOT() != -1 || tk.AddBOS() {
		t.Errorf("BOS %d EOT %d AddBOS %v", tk.BOS(), tk.EOT(), tk.AddBOS())
	}
}

func TestBytesEncoding(t *testing.T) {
	for b := range 256 {
		s := string([]byte{byte(b)})
		if got := DecodeBytes(EncodeBytes(s)); got != s {
			t.Fatalf("byte %#x: %q", b, got)
		}
	}
	if EncodeBytes(" \n") != "ĠĊ" {
		t.Errorf("EncodeBytes = %q", EncodeBytes(" \n"))
	}
}

func TestConcurrentEncode(t *testing.T) {
	tk := trainedTokenizers(t)[2]
	src := goSource(t, 64<<10)
	want := make([][]int32, len(src))
	for i, s := range src {
		want[i] = naiveEncodePlain(tk, s)
	}
	done := make(chan error, 4)
	for g := range 4 {
		go func() {
			for i := range src {
				s := src[(i+g)%len(src)]
				if got := tk.EncodePlain(s); !slices.Equal(got, want[(i+g)%len(src)]) {
					done <- errors.New("concurrent EncodePlain differs")
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
