package tokenizer

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// ErrUnknownPre is returned (wrapped, naming the value) for a
// tokenizer.ggml.pre value this package has no pre-tokenizer for.
var ErrUnknownPre = errors.New("tokenizer: unknown pre-tokenizer")

// preKind selects one of the hand-written pre-tokenizers. Go's regexp has
// no lookahead, so each regular expression llama.cpp uses is written out as
// a small scanner over runes; see next.
type preKind uint8

const (
	// preGPT2 is GPT-2's split:
	//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
	preGPT2 preKind = iota
	// preLlama3 is LLaMA-3's split:
	//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
	//	 ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
	preLlama3
	// preQwen2 is LLaMA-3's split with single digits (\p{N} for \p{N}{1,3}).
	preQwen2
)

// preKinds maps tokenizer.ggml.pre values to pre-tokenizers, with the names
// llama.cpp gives them.
var preKinds = map[string]preKind{
	"":                 preGPT2, // llama.cpp falls back to the default split when the key is absent
	"default":          preGPT2,
	"gpt2":             preGPT2,
	"gpt-2":            preGPT2, // what llama.cpp's converter writes for GPT-2 itself
	"llama-bpe":        preLlama3,
	"llama3":           preLlama3,
	"qwen2":            preQwen2,
	"deepseek-r1-qwen": preQwen2, // llama.cpp gives it the qwen2 split
	// llama.cpp's bailingmoe split (Ling's tokenizers; its converter names
	// LLaDA-MoE's "llada-moe") is Qwen2's written otherwise: the same
	// contractions, possessive quantifiers that change no match, and
	// \s*[\r\n] ending where \s*[\r\n]+ does (engine/convert's lingSplit).
	"llada-moe":   preQwen2,
	"bailingmoe":  preQwen2,
	"bailingmoe2": preQwen2,
	// "llada" is no name of llama.cpp's (it refuses such a file), but dfill
	// wrote it for its trained and random llada vocabularies before it
	// wrote "llama-bpe", the LLaMA-3 split they use (LLaDA-8B's
	// tokenizer.json uses it too); such files still load, with the
	// llama-bpe rules, ignore_merges included.
	"llada": preLlama3,
}

// lookupPre returns the pre-tokenizer for a tokenizer.ggml.pre value.
func lookupPre(pre string) (preKind, error) {
	k, ok := preKinds[pre]
	if !ok {
		return 0, fmt.Errorf("%w %q", ErrUnknownPre, pre)
	}
	return k, nil
}

// class is what a pre-tokenizer needs to know about one rune.
type class uint8

const (
	clsInvalid class = iota // a byte that starts no valid UTF-8 rune
	clsLetter               // \p{L}
	clsNumber               // \p{N}
	clsSpace                // \s other than \r and \n
	clsNewline              // \r or \n
	clsOther                // [^\s\p{L}\p{N}]
)

// asciiClass holds the class of every ASCII byte.
var asciiClass [utf8.RuneSelf]class

func init() {
	for c := range utf8.RuneSelf {
		asciiClass[c] = runeClass(rune(c))
	}
}

// runeClass classifies a valid rune. \s is Unicode White_Space, as in the
// regex engines Hugging Face and llama.cpp use (unicode.IsSpace is exactly
// that set).
func runeClass(r rune) class {
	switch {
	case r == '\r' || r == '\n':
		return clsNewline
	case unicode.IsLetter(r):
		return clsLetter
	case unicode.IsNumber(r):
		return clsNumber
	case unicode.IsSpace(r):
		return clsSpace
	}
	return clsOther
}

// classAt returns the class and byte length of the rune at s[i]. An invalid
// byte is clsInvalid with length 1.
func classAt(s string, i int) (class, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && n == 1 {
		return clsInvalid, 1
	}
	return runeClass(r), n
}

// isSpace reports whether c is one of the \s classes.
func (c class) isSpace() bool { return c == clsSpace || c == clsNewline }

// next returns the end of the pre-token that starts at s[i] (i < len(s));
// the result is always greater than i. Every scanner treats an invalid
// UTF-8 byte as a pre-token of its own, so that any byte string splits
// (byte-level BPE then needs no valid UTF-8), and counts it as \S for the
// lookahead in \s+(?!\S).
func (k preKind) next(s string, i int) int {
	if k == preGPT2 {
		return nextGPT2(s, i)
	}
	return nextLlama3(s, i, k == preQwen2)
}

// nextGPT2 scans one pre-token of
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
func nextGPT2(s string, i int) int {
	c, n := classAt(s, i)
	if c == clsInvalid {
		return i + 1
	}
	if s[i] == '\'' {
		if m := contraction(s[i:], false); m > 0 {
			return i + m
		}
	}
	j := i
	if s[i] == ' ' && i+1 < len(s) {
		// " ?" then a letter, number or other run.
		if c2, _ := classAt(s, i+1); c2 == clsLetter || c2 == clsNumber || c2 == clsOther {
			c, j, n = c2, i+1, 0
		}
	}
	switch c {
	case clsLetter, clsNumber, clsOther:
		return run(s, j+n, c, -1)
	}
	return spaceRun(s, i, false)
}

// nextLlama3 scans one pre-token of
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//	 ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// or, with singleDigits, Qwen2's variant with \p{N} for \p{N}{1,3}.
func nextLlama3(s string, i int, singleDigits bool) int {
	c, n := classAt(s, i)
	switch c {
	case clsInvalid:
		return i + 1
	case clsLetter:
		return run(s, i+n, clsLetter, -1)
	case clsNumber:
		if singleDigits {
			return i + n
		}
		return run(s, i+n, clsNumber, 2)
	}
	if s[i] == '\'' {
		if m := contraction(s[i:], true); m > 0 {
			return i + m
		}
	}
	if c != clsNewline && i+n < len(s) {
		// [^\r\n\p{L}\p{N}]? then letters.
		if c2, n2 := classAt(s, i+n); c2 == clsLetter {
			return run(s, i+n+n2, clsLetter, -1)
		}
	}
	j := i
	if s[i] == ' ' && i+1 < len(s) {
		if c2, _ := classAt(s, i+1); c2 == clsOther {
			c, j, n = c2, i+1, 0
		}
	}
	if c == clsOther {
		// " ?[^\s\p{L}\p{N}]+[\r\n]*"
		j = run(s, j+n, clsOther, -1)
		for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		return j
	}
	return spaceRun(s, i, true)
}

// run returns the end of the run of class c that continues at s[i], taking
// at most max more runes when max >= 0.
func run(s string, i int, c class, max int) int {
	for i < len(s) && max != 0 {
		c2, n := classAt(s, i)
		if c2 != c {
			break
		}
		i += n
		max--
	}
	return i
}

// spaceRun matches the whitespace alternatives at s[i], which holds a
// whitespace rune: with newlines, \s*[\r\n]+ first (the run up to its last
// newline); then \s+(?!\S), the run less its last rune when a non-space
// follows (so "  x" leaves one space to the word); then \s+.
func spaceRun(s string, i int, newlines bool) int {
	end, last, nl := i, i, -1
	for end < len(s) {
		c, n := classAt(s, end)
		if !c.isSpace() {
			break
		}
		if c == clsNewline {
			nl = end + n
		}
		last = end
		end += n
	}
	switch {
	case newlines && nl > 0:
		return nl
	case end == len(s) || last == i:
		return end
	}
	return last
}

// contraction returns the length of the English contraction ('s, 't, 're,
// 've, 'm, 'll, 'd) that s starts with, or 0. foldCase matches ASCII
// letters of either case.
func contraction(s string, foldCase bool) int {
	lower := func(k int) byte {
		if k >= len(s) {
			return 0
		}
		c := s[k]
		if foldCase && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		return c
	}
	switch lower(1) {
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v':
		if lower(2) == 'e' {
			return 3
		}
	case 'l':
		if lower(2) == 'l' {
			return 3
		}
	}
	return 0
}
