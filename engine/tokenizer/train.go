package tokenizer

import (
	"fmt"
	"slices"
	"strings"
)

// The special tokens of dfill's own models.
const (
	// EndOfTextToken ends a document; dfill's models use it as EOS and PAD
	// (a diffusion model fills the rest of its span with it).
	EndOfTextToken = "<|endoftext|>"
	// MaskToken is the [MASK] a diffusion model denoises.
	MaskToken = "<|mask|>"
	// DLMPadToken pads a diffusion model's canvas.
	DLMPadToken = "<|dlm_pad|>"
	// ExpandToken asks for one more masked position (DreamOn).
	ExpandToken = "<|expand|>"
	// FIMPrefixToken, FIMMiddleToken and FIMSuffixToken lay out
	// fill-in-the-middle prompts for autoregressive models.
	FIMPrefixToken = "<|fim_prefix|>"
	FIMMiddleToken = "<|fim_middle|>"
	FIMSuffixToken = "<|fim_suffix|>"
)

// DefaultSpecials returns the special tokens of dfill's own models, in the
// order they are given ids.
func DefaultSpecials() []string {
	return []string{EndOfTextToken, MaskToken, DLMPadToken, ExpandToken, FIMPrefixToken, FIMMiddleToken, FIMSuffixToken}
}

// WithSpecialIDs returns c with its special ids looked up among its control
// and user-defined tokens by dfill's conventional names: EOS, PAD and BOS
// (as GPT-2 does) are <|endoftext|>, Mask is <|mask|>, Expand is
// <|expand|>; each is -1 when its token is absent. EOT and AddBOS are left
// as they are.
func (c Config) WithSpecialIDs() Config {
	find := func(name string) int32 {
		for i, tok := range c.Tokens {
			if tok == name && (len(c.Types) != len(c.Tokens) || c.Types[i] == TypeControl || c.Types[i] == TypeUserDefined) {
				return int32(i)
			}
		}
		return -1
	}
	eot := find(EndOfTextToken)
	c.BOS, c.EOS, c.PAD = eot, eot, eot
	c.Mask = find(MaskToken)
	c.Expand = find(ExpandToken)
	return c
}

// ByteLevel returns the smallest byte-level vocabulary: the 256 byte tokens
// (id b for byte b), then specials as control tokens, no merges; special
// ids set by WithSpecialIDs and the GPT-2 pre-tokenizer.
func ByteLevel(specials []string) Config {
	c := Config{
		Model:  "gpt2",
		Pre:    "gpt2",
		Tokens: make([]string, 0, 256+len(specials)),
		Types:  make([]int32, 0, 256+len(specials)),
		EOT:    -1,
	}
	for b := range 256 {
		c.Tokens = append(c.Tokens, string(byteRune[b]))
		c.Types = append(c.Types, TypeNormal)
	}
	for _, s := range specials {
		c.Tokens = append(c.Tokens, s)
		c.Types = append(c.Types, TypeControl)
	}
	return c.WithSpecialIDs()
}

// Train learns a byte-level BPE vocabulary of vocabSize tokens from texts:
// the 256 byte tokens, then the learned merges' tokens in the order they
// were learned, then specials as control tokens, with special ids set by
// WithSpecialIDs. It splits each text with the pre-tokenizer pre (as New
// names them), counts the pre-tokens, and repeatedly merges the most
// frequent adjacent pair (ties to the smaller token ids, so the same input
// gives the same vocabulary), updating pair counts only in the words the
// merge touched. When the corpus runs out of pairs the vocabulary is
// smaller than vocabSize.
func Train(texts func(yield func(string) bool), vocabSize int, pre string, specials []string) (Config, error) {
	kind, err := lookupPre(pre)
	if err != nil {
		return Config{}, err
	}
	seen := make(map[string]bool, len(specials))
	for _, s := range specials {
		if s == "" || seen[s] {
			return Config{}, fmt.Errorf("%w: special token %q empty or repeated", ErrInvalidConfig, s)
		}
		seen[s] = true
	}
	if vocabSize < 256+len(specials) || vocabSize > 1<<30 {
		return Config{}, fmt.Errorf("%w: vocabulary size %d: need at least 256 bytes + %d specials", ErrInvalidConfig, vocabSize, len(specials))
	}

	freq := make(map[string]int64)
	texts(func(text string) bool {
		for i := 0; i < len(text); {
			j := kind.next(text, i)
			if c, ok := freq[text[i:j]]; ok {
				freq[text[i:j]] = c + 1
			} else {
				freq[strings.Clone(text[i:j])] = 1
			}
			i = j
		}
		return true
	})

	tr := newTrainer(freq)
	tr.run(vocabSize - len(specials))

	c := Config{Model: "gpt2", Pre: pre, EOT: -1}
	for _, b := range tr.tokens {
		c.Tokens = append(c.Tokens, EncodeBytes(b))
		c.Types = append(c.Types, TypeNormal)
	}
	for _, s := range specials {
		c.Tokens = append(c.Tokens, s)
		c.Types = append(c.Types, TypeControl)
	}
	for _, m := range tr.merges {
		c.Merges = append(c.Merges, EncodeBytes(tr.tokens[m[0]])+" "+EncodeBytes(tr.tokens[m[1]]))
	}
	return c.WithSpecialIDs(), nil
}

// word is one distinct pre-token of the training corpus.
type word struct {
	syms []int32 // its current tokens
	freq int64   // how often it occurs
}

// pairCount is a heap entry: a pair and its count when queued.
type pairCount struct {
	count int64
	pair  uint64
}

// before orders the heap: larger count first, then the smaller pair.
func (p pairCount) before(q pairCount) bool {
	return p.count > q.count || (p.count == q.count && p.pair < q.pair)
}

// trainer holds the state of one BPE training run.
type trainer struct {
	words  []word
	tokens []string         // raw bytes of each token
	ids    map[string]int32 // raw bytes to token id
	merges [][2]int32
	merged map[uint64]bool // pairs already in merges

	counts map[uint64]int64   // pair to its count over the corpus
	where  map[uint64][]int32 // pair to the words that may hold it (repeats allowed)
	heap   []pairCount        // lazily updated: entries may be stale
	stamp  []int32            // per word, the last merge that visited it
}

// newTrainer sets up the words (sorted, for determinism), byte tokens and
// the initial pair counts.
func newTrainer(freq map[string]int64) *trainer {
	keys := make([]string, 0, len(freq))
	for k := range freq {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	tr := &trainer{
		words:  make([]word, len(keys)),
		ids:    make(map[string]int32),
		merged: make(map[uint64]bool),
		counts: make(map[uint64]int64),
		where:  make(map[uint64][]int32),
		stamp:  make([]int32, len(keys)),
	}
	for b := range 256 {
		tr.tokens = append(tr.tokens, string([]byte{byte(b)}))
		tr.ids[tr.tokens[b]] = int32(b)
	}
	for i, k := range keys {
		syms := make([]int32, len(k))
		for j := 0; j < len(k); j++ {
			syms[j] = int32(k[j])
		}
		tr.words[i] = word{syms: syms, freq: freq[k]}
		for j := 0; j+1 < len(syms); j++ {
			p := pairKey(syms[j], syms[j+1])
			tr.counts[p] += freq[k]
			if ws := tr.where[p]; len(ws) == 0 || ws[len(ws)-1] != int32(i) {
				tr.where[p] = append(ws, int32(i))
			}
		}
		tr.stamp[i] = -1
	}
	for p, c := range tr.counts {
		tr.heap = append(tr.heap, pairCount{c, p})
	}
	slices.SortFunc(tr.heap, func(a, b pairCount) int {
		switch {
		case a.before(b):
			return -1
		case b.before(a):
			return 1
		}
		return 0
	}) // a sorted slice is a valid heap
	return tr
}

// run merges until there are maxTokens tokens or no pairs are left.
func (tr *trainer) run(maxTokens int) {
	delta := make(map[uint64]int64)
	for step := int32(0); len(tr.tokens) < maxTokens && len(tr.heap) > 0; {
		top := tr.pop()
		cur := tr.counts[top.pair]
		if cur != top.count {
			if cur > 0 {
				tr.push(pairCount{cur, top.pair})
			}
			continue
		}
		if cur <= 0 {
			break
		}
		a, b := int32(top.pair>>32), int32(uint32(top.pair))
		raw := tr.tokens[a] + tr.tokens[b]
		id, ok := tr.ids[raw]
		if !ok {
			id = int32(len(tr.tokens))
			tr.tokens = append(tr.tokens, raw)
			tr.ids[raw] = id
		}
		if !tr.merged[top.pair] {
			tr.merged[top.pair] = true
			tr.merges = append(tr.merges, [2]int32{a, b})
		}
		tr.apply(step, a, b, id, delta)
		step++
	}
}

// apply replaces every a b in the words that hold it by id, and updates the
// pair counts by the difference each touched word makes.
func (tr *trainer) apply(step, a, b, id int32, delta map[uint64]int64) {
	clear(delta)
	p := pairKey(a, b)
	for _, wi := range tr.where[p] {
		if tr.stamp[wi] == step {
			continue
		}
		tr.stamp[wi] = step
		w := &tr.words[wi]
		s := w.syms
		if !hasPair(s, a, b) {
			continue
		}
		for j := 0; j+1 < len(s); j++ {
			delta[pairKey(s[j], s[j+1])] -= w.freq
		}
		k := 0
		for j := 0; j < len(s); j++ {
			if j+1 < len(s) && s[j] == a && s[j+1] == b {
				s[k] = id
				j++
			} else {
				s[k] = s[j]
			}
			k++
		}
		s = s[:k]
		w.syms = s
		for j := 0; j+1 < len(s); j++ {
			q := pairKey(s[j], s[j+1])
			delta[q] += w.freq
			if s[j] == id || s[j+1] == id {
				if ws := tr.where[q]; len(ws) == 0 || ws[len(ws)-1] != wi {
					tr.where[q] = append(ws, wi)
				}
			}
		}
	}
	delete(tr.where, p)
	// Apply in a fixed order so that the heap, and so ties, never depend on
	// map iteration order.
	changed := make([]uint64, 0, len(delta))
	for q, d := range delta {
		if d != 0 {
			changed = append(changed, q)
		}
	}
	slices.Sort(changed)
	for _, q := range changed {
		c := tr.counts[q] + delta[q]
		if c <= 0 {
			delete(tr.counts, q)
			continue
		}
		tr.counts[q] = c
		if delta[q] > 0 {
			tr.push(pairCount{c, q})
		}
	}
}

// hasPair reports whether a b occurs in s.
func hasPair(s []int32, a, b int32) bool {
	for j := 0; j+1 < len(s); j++ {
		if s[j] == a && s[j+1] == b {
			return true
		}
	}
	return false
}

// push adds an entry to the heap.
func (tr *trainer) push(e pairCount) { tr.heap = heapPush(tr.heap, e) }

// pop removes and returns the first entry of the heap.
func (tr *trainer) pop() pairCount {
	var top pairCount
	top, tr.heap = heapPop(tr.heap)
	return top
}
