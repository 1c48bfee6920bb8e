// Package tokenizer is a byte-level BPE tokenizer as llama.cpp builds it
// from a GGUF's tokenizer.ggml.* keys (model "gpt2"): special tokens matched
// whole, then a pre-tokenizer (GPT-2, LLaMA-3 or Qwen2 rules) and BPE merges
// by rank over bytes. It also builds vocabularies for dfill's own models
// (ByteLevel, Train). It does not read GGUF files itself: the engine's
// loader fills a Config.
package tokenizer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Token types, as llama.cpp's token_type (tokenizer.ggml.token_type).
const (
	TypeUndefined   int32 = 0 // unset; treated as TypeNormal
	TypeNormal      int32 = 1 // an ordinary BPE token
	TypeUnknown     int32 = 2 // the unknown token (byte-level BPE never emits it)
	TypeControl     int32 = 3 // a special token such as <|endoftext|>
	TypeUserDefined int32 = 4 // an added token, matched whole like a control token
	TypeUnused      int32 = 5 // a reserved slot
	TypeByte        int32 = 6 // a "<0xXX>" byte token
)

// ErrInvalidConfig is returned (wrapped, with the reason) by New for a
// vocabulary it cannot build a tokenizer from.
var ErrInvalidConfig = errors.New("tokenizer: invalid config")

// Config is a byte-level BPE vocabulary as a GGUF's tokenizer.ggml.* keys
// hold it.
type Config struct {
	// Model is tokenizer.ggml.model; only "gpt2" (byte-level BPE) is supported.
	Model string
	// Pre is tokenizer.ggml.pre, naming the pre-tokenizer: "gpt2" (or
	// "gpt-2", "default", ""), "llama-bpe", "qwen2", "llada".
	Pre string
	// Tokens is the vocabulary in GPT-2's byte-to-unicode encoding ("Ġ" is
	// a space byte); control and user-defined tokens are literal text.
	Tokens []string
	// Types holds each token's llama.cpp token type (TypeNormal, ...). When
	// empty, every token is normal except those named by the special ids,
	// which are control tokens.
	Types []int32
	// Merges holds the BPE merges, "left right", in rank order.
	Merges []string
	// BOS, EOS, PAD, Mask, EOT and Expand are special token ids, -1 when
	// absent.
	BOS, EOS, PAD, Mask, EOT, Expand int32
	// AddBOS is tokenizer.ggml.add_bos_token. Encode never adds BOS itself;
	// the caller that builds a model's input does.
	AddBOS bool
}

// Tokenizer encodes text to token ids and decodes them back. It is safe for
// concurrent use.
type Tokenizer struct {
	pre          preKind
	ignoreMerges bool // LLaMA-3: a pre-token that is a whole token is not merged

	tokens []string
	types  []int32
	bytes  []string         // the raw bytes each token stands for
	ids    map[string]int32 // token text to id (first occurrence), ordinary tokens
	spIDs  map[string]int32 // token text to id, special tokens
	pieces map[string]int32 // raw bytes to id, ordinary tokens (for ignoreMerges)
	byteID [256]int32       // the token for each single byte
	ranks  map[uint64]merge // (left<<32 | right) to the merge
	spTrie trie

	bos, eos, pad, mask, eot, expand int32
	addBOS                           bool

	cache bpeCache
	pool  sync.Pool // *scratch
}

// merge is one BPE merge: its rank and the token it makes.
type merge struct{ rank, id int32 }

// pairKey packs two token ids into a map key.
func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// New builds a tokenizer from cfg. It checks that the model is "gpt2", the
// pre-tokenizer is known (ErrUnknownPre), the token types and special ids
// are in range, every merge names two tokens and makes a token, and every
// byte has a token (the byte-level one, or a "<0xXX>" byte token), so that
// any byte string can be encoded. Other problems wrap ErrInvalidConfig.
func New(cfg Config) (*Tokenizer, error) {
	if cfg.Model != "gpt2" {
		return nil, fmt.Errorf("%w: model %q: only byte-level BPE (\"gpt2\") is supported", ErrInvalidConfig, cfg.Model)
	}
	pre, err := lookupPre(cfg.Pre)
	if err != nil {
		return nil, err
	}
	n := len(cfg.Tokens)
	if n == 0 {
		return nil, fmt.Errorf("%w: empty vocabulary", ErrInvalidConfig)
	}
	if n > 1<<31-1 {
		return nil, fmt.Errorf("%w: %d tokens", ErrInvalidConfig, n)
	}
	if len(cfg.Types) != 0 && len(cfg.Types) != n {
		return nil, fmt.Errorf("%w: %d token types for %d tokens", ErrInvalidConfig, len(cfg.Types), n)
	}
	t := &Tokenizer{
		pre:          pre,
		ignoreMerges: pre == preLlama3,
		tokens:       slices.Clone(cfg.Tokens),
		types:        make([]int32, n),
		bytes:        make([]string, n),
		ids:          make(map[string]int32, n),
		spIDs:        make(map[string]int32),
		ranks:        make(map[uint64]merge, len(cfg.Merges)),
		addBOS:       cfg.AddBOS,
	}
	specials := []struct {
		name string
		id   int32
		dst  *int32
	}{
		{"BOS", cfg.BOS, &t.bos}, {"EOS", cfg.EOS, &t.eos}, {"PAD", cfg.PAD, &t.pad},
		{"Mask", cfg.Mask, &t.mask}, {"EOT", cfg.EOT, &t.eot}, {"Expand", cfg.Expand, &t.expand},
	}
	for _, s := range specials {
		if s.id < -1 || int(s.id) >= n {
			return nil, fmt.Errorf("%w: %s id %d out of range [-1, %d)", ErrInvalidConfig, s.name, s.id, n)
		}
		*s.dst = s.id
	}
	if len(cfg.Types) == 0 {
		for i := range t.types {
			t.types[i] = TypeNormal
		}
		for _, s := range specials {
			if s.id >= 0 {
				t.types[s.id] = TypeControl
			}
		}
	} else {
		for i, ty := range cfg.Types {
			if ty < TypeUndefined || ty > TypeByte {
				return nil, fmt.Errorf("%w: token %d %q: type %d out of range [0, 6]", ErrInvalidConfig, i, cfg.Tokens[i], ty)
			}
			if ty == TypeUndefined {
				ty = TypeNormal
			}
			t.types[i] = ty
		}
	}

	for i, text := range cfg.Tokens {
		id := int32(i)
		switch t.types[i] {
		case TypeControl, TypeUserDefined:
			t.bytes[i] = text
			if _, dup := t.spIDs[text]; !dup && text != "" {
				t.spIDs[text] = id
				t.spTrie.add(text, id)
			}
			continue
		case TypeByte:
			if b, ok := parseByteToken(text); ok {
				t.bytes[i] = string([]byte{b})
				break
			}
			t.bytes[i] = DecodeBytes(text)
		default:
			t.bytes[i] = DecodeBytes(text)
		}
		if _, dup := t.ids[text]; !dup {
			t.ids[text] = id
		}
	}

	if err := t.findByteTokens(); err != nil {
		return nil, err
	}
	if t.ignoreMerges {
		t.pieces = make(map[string]int32, n)
		for _, id := range t.ids {
			b := t.bytes[id]
			if old, dup := t.pieces[b]; !dup || id < old {
				t.pieces[b] = id
			}
		}
	}
	for r, m := range cfg.Merges {
		left, right, ok := splitMerge(m)
		if !ok {
			return nil, fmt.Errorf("%w: merge %d %q: not \"left right\"", ErrInvalidConfig, r, m)
		}
		a, okA := t.ids[left]
		b, okB := t.ids[right]
		c, okC := t.ids[left+right]
		switch {
		case !okA:
			return nil, fmt.Errorf("%w: merge %d %q: %q is not a token", ErrInvalidConfig, r, m, left)
		case !okB:
			return nil, fmt.Errorf("%w: merge %d %q: %q is not a token", ErrInvalidConfig, r, m, right)
		case !okC:
			return nil, fmt.Errorf("%w: merge %d %q: result %q is not a token", ErrInvalidConfig, r, m, left+right)
		case t.bytes[c] != t.bytes[a]+t.bytes[b]:
			return nil, fmt.Errorf("%w: merge %d %q: result %q does not stand for the bytes of its parts", ErrInvalidConfig, r, m, left+right)
		}
		k := pairKey(a, b)
		if _, dup := t.ranks[k]; !dup {
			t.ranks[k] = merge{rank: int32(r), id: c}
		}
	}
	t.pool.New = func() any { return new(scratch) }
	return t, nil
}

// findByteTokens sets byteID: for each byte, the ordinary token whose text
// is the byte's rune (what merges start from), else a "<0xXX>" byte token,
// else any ordinary token standing for just that byte.
func (t *Tokenizer) findByteTokens() error {
	var found [256]bool
	for b := range 256 {
		if id, ok := t.ids[string(byteRune[b])]; ok && len(t.bytes[id]) == 1 {
			t.byteID[b], found[b] = id, true
		}
	}
	for id, text := range t.tokens {
		if t.types[id] == TypeByte {
			if b, ok := parseByteToken(text); ok && !found[b] {
				t.byteID[b], found[b] = int32(id), true
			}
		}
	}
	for id, raw := range t.bytes {
		ty := t.types[id]
		if len(raw) == 1 && !found[raw[0]] && ty != TypeControl && ty != TypeUserDefined {
			t.byteID[raw[0]], found[raw[0]] = int32(id), true
		}
	}
	var missing []string
	for b, ok := range found {
		if !ok {
			missing = append(missing, fmt.Sprintf("0x%02X", b))
		}
	}
	if len(missing) > 0 {
		if len(missing) > 8 {
			missing = append(missing[:8], fmt.Sprintf("and %d more", len(missing)-8))
		}
		return fmt.Errorf("%w: no token for bytes %s", ErrInvalidConfig, strings.Join(missing, ", "))
	}
	return nil
}

// parseByteToken parses a byte token's text, "<0xXX>".
func parseByteToken(text string) (byte, bool) {
	if len(text) != 6 || !strings.HasPrefix(text, "<0x") || text[5] != '>' {
		return 0, false
	}
	var v byte
	for _, c := range []byte(text[3:5]) {
		switch {
		case '0' <= c && c <= '9':
			v = v<<4 | (c - '0')
		case 'a' <= c && c <= 'f':
			v = v<<4 | (c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			v = v<<4 | (c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return v, true
}

// splitMerge splits "left right" at the first space after the first byte,
// as llama.cpp does.
func splitMerge(m string) (left, right string, ok bool) {
	if len(m) < 3 {
		return "", "", false
	}
	i := strings.IndexByte(m[1:], ' ')
	if i < 0 || i+2 >= len(m) {
		return "", "", false
	}
	return m[:i+1], m[i+2:], true
}

// VocabSize returns the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// Token returns the text of token id as the vocabulary stores it, or "" for
// an id out of range.
func (t *Tokenizer) Token(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// ID returns the id of a token by its vocabulary text (a special token's id
// first, when an ordinary token has the same text).
func (t *Tokenizer) ID(token string) (int32, bool) {
	if id, ok := t.spIDs[token]; ok {
		return id, true
	}
	id, ok := t.ids[token]
	return id, ok
}

// Type returns the llama.cpp token type of id, or TypeUndefined for an id
// out of range.
func (t *Tokenizer) Type(id int32) int32 {
	if id < 0 || int(id) >= len(t.types) {
		return TypeUndefined
	}
	return t.types[id]
}

// IsSpecial reports whether id is a control or user-defined token: one that
// Encode matches as a whole string and never splits.
func (t *Tokenizer) IsSpecial(id int32) bool {
	ty := t.Type(id)
	return ty == TypeControl || ty == TypeUserDefined
}

// TokenBytes returns a copy of the bytes token id stands for (a special
// token's literal text), or nil for an id out of range.
func (t *Tokenizer) TokenBytes(id int32) []byte {
	if id < 0 || int(id) >= len(t.bytes) {
		return nil
	}
	return []byte(t.bytes[id])
}

// Decode returns the bytes that ids stand for, special tokens as their
// literal text. Ids out of range are skipped.
func (t *Tokenizer) Decode(ids []int32) string {
	n := 0
	for _, id := range ids {
		if id >= 0 && int(id) < len(t.bytes) {
			n += len(t.bytes[id])
		}
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, id := range ids {
		if id >= 0 && int(id) < len(t.bytes) {
			sb.WriteString(t.bytes[id])
		}
	}
	return sb.String()
}

// BOS returns the beginning-of-sequence token id, or -1.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS returns the end-of-sequence token id, or -1.
func (t *Tokenizer) EOS() int32 { return t.eos }

// PAD returns the padding token id, or -1.
func (t *Tokenizer) PAD() int32 { return t.pad }

// Mask returns the mask token id a diffusion model denoises, or -1.
func (t *Tokenizer) Mask() int32 { return t.mask }

// EOT returns the end-of-turn token id, or -1.
func (t *Tokenizer) EOT() int32 { return t.eot }

// Expand returns DreamOn's <|expand|> token id, or -1.
func (t *Tokenizer) Expand() int32 { return t.expand }

// AddBOS reports whether the model expects BOS before its input.
func (t *Tokenizer) AddBOS() bool { return t.addBOS }
