package tokenizer

import (
	"strings"
	"sync"
)

// Encode returns the tokens for text: special tokens (control and
// user-defined) wherever their text occurs, longest first, never split;
// the text between them pre-tokenized and BPE-merged. It adds no BOS.
func (t *Tokenizer) Encode(text string) []int32 {
	return t.AppendEncode(make([]int32, 0, len(text)/3+1), text)
}

// EncodePlain is Encode with special-token text treated as ordinary text,
// for user code that happens to contain "<|endoftext|>". Decode gives text
// back exactly, for any byte string.
func (t *Tokenizer) EncodePlain(text string) []int32 {
	return t.AppendEncodePlain(make([]int32, 0, len(text)/3+1), text)
}

// AppendEncode appends Encode(text) to dst and returns it.
func (t *Tokenizer) AppendEncode(dst []int32, text string) []int32 {
	if len(t.spTrie.nodes) == 0 {
		return t.AppendEncodePlain(dst, text)
	}
	start := 0
	for i := 0; i < len(text); i++ {
		if !t.spTrie.first[text[i]] {
			continue
		}
		id, n := t.spTrie.match(text[i:])
		if n == 0 {
			continue
		}
		dst = t.AppendEncodePlain(dst, text[start:i])
		dst = append(dst, id)
		i += n - 1
		start = i + 1
	}
	return t.AppendEncodePlain(dst, text[start:])
}

// AppendEncodePlain appends EncodePlain(text) to dst and returns it.
func (t *Tokenizer) AppendEncodePlain(dst []int32, text string) []int32 {
	for i := 0; i < len(text); {
		j := t.pre.next(text, i)
		dst = t.appendPiece(dst, text[i:j])
		i = j
	}
	return dst
}

// appendPiece appends the BPE tokens of one pre-token.
func (t *Tokenizer) appendPiece(dst []int32, piece string) []int32 {
	if len(piece) == 1 {
		return append(dst, t.byteID[piece[0]])
	}
	if t.ignoreMerges {
		if id, ok := t.pieces[piece]; ok {
			return append(dst, id)
		}
	}
	if ids, ok := t.cache.get(piece); ok {
		return append(dst, ids...)
	}
	s := t.pool.Get().(*scratch)
	n := len(dst)
	dst = t.bpe(dst, piece, s)
	t.pool.Put(s)
	t.cache.put(piece, dst[n:])
	return dst
}

// symbol is one token of a pre-token while it is being merged, in a
// doubly linked list over positions (prev and next are -1 at the ends).
type symbol struct {
	id, prev, next int32
}

// candidate is an adjacent pair that some merge applies to. It is stale
// once either side has changed since it was queued.
type candidate struct {
	rank, left, right int32 // rank; positions of the two symbols
	leftID, rightID   int32 // their ids when queued
	id                int32 // the token the merge makes
}

// less orders candidates by rank, then leftmost first, as llama.cpp does.
func (c candidate) before(d candidate) bool {
	return c.rank < d.rank || (c.rank == d.rank && c.left < d.left)
}

// scratch is the reusable working memory of one bpe call.
type scratch struct {
	syms []symbol
	heap []candidate
}

// bpe appends the BPE tokens of piece (len >= 2) to dst: it starts from one
// token per byte and applies, while any applies, the merge of lowest rank
// (leftmost among equals), with a priority queue over adjacent pairs so that
// a long piece takes O(n log n).
func (t *Tokenizer) bpe(dst []int32, piece string, s *scratch) []int32 {
	n := len(piece)
	syms := s.syms[:0]
	for i := 0; i < n; i++ {
		syms = append(syms, symbol{id: t.byteID[piece[i]], prev: int32(i - 1), next: int32(i + 1)})
	}
	syms[n-1].next = -1
	s.syms = syms
	s.heap = s.heap[:0]
	for i := 0; i+1 < n; i++ {
		t.push(s, int32(i), int32(i+1))
	}
	for len(s.heap) > 0 {
		c := s.pop()
		l, r := &syms[c.left], &syms[c.right]
		if l.next != c.right || l.id != c.leftID || r.id != c.rightID {
			continue // stale: a side was merged away or changed
		}
		l.id = c.id
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = c.left
		}
		r.id, r.prev, r.next = -1, -1, -1
		if l.prev >= 0 {
			t.push(s, l.prev, c.left)
		}
		if l.next >= 0 {
			t.push(s, c.left, l.next)
		}
	}
	for i := int32(0); i >= 0; i = syms[i].next {
		dst = append(dst, syms[i].id)
	}
	return dst
}

// push queues the pair at positions l, r if a merge applies to it.
func (t *Tokenizer) push(s *scratch, l, r int32) {
	a, b := s.syms[l].id, s.syms[r].id
	m, ok := t.ranks[pairKey(a, b)]
	if !ok {
		return
	}
	s.heap = heapPush(s.heap, candidate{rank: m.rank, left: l, right: r, leftID: a, rightID: b, id: m.id})
}

// pop removes and returns the least candidate.
func (s *scratch) pop() candidate {
	var top candidate
	top, s.heap = heapPop(s.heap)
	return top
}

// bpeCacheMax bounds the pre-tokens bpeCache holds; when full it starts
// over, which keeps the common pre-tokens of the text at hand.
const bpeCacheMax = 1 << 16

// bpeCache remembers the BPE tokens of recent pre-tokens.
type bpeCache struct {
	// mu guards m.
	mu sync.Mutex
	m  map[string][]int32
}

// get returns the cached tokens of piece; the caller must not modify them.
func (c *bpeCache) get(piece string) ([]int32, bool) {
	c.mu.Lock()
	ids, ok := c.m[piece]
	c.mu.Unlock()
	return ids, ok
}

// put caches a copy of ids as the tokens of piece.
func (c *bpeCache) put(piece string, ids []int32) {
	if len(piece) > 256 {
		return // long pieces are rare and would pin memory
	}
	v := append([]int32(nil), ids...)
	k := strings.Clone(piece)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= bpeCacheMax {
		c.m = make(map[string][]int32, 1024)
	}
	c.m[k] = v
	c.mu.Unlock()
}

// trie matches special tokens by their text.
type trie struct {
	nodes []trieNode
	first [256]bool // bytes some special token starts with
}

// trieNode is one node of a trie; node 0 is the root.
type trieNode struct {
	next map[byte]int32
	id   int32 // the token ending here, or -1
}

// add inserts a token (text non-empty).
func (tr *trie) add(text string, id int32) {
	if len(tr.nodes) == 0 {
		tr.nodes = append(tr.nodes, trieNode{id: -1})
	}
	tr.first[text[0]] = true
	n := int32(0)
	for i := 0; i < len(text); i++ {
		c, ok := tr.nodes[n].next[text[i]]
		if !ok {
			c = int32(len(tr.nodes))
			tr.nodes = append(tr.nodes, trieNode{id: -1})
			if tr.nodes[n].next == nil {
				tr.nodes[n].next = make(map[byte]int32, 1)
			}
			tr.nodes[n].next[text[i]] = c
		}
		n = c
	}
	if tr.nodes[n].id < 0 {
		tr.nodes[n].id = id
	}
}

// match returns the longest token that s starts with and its length, or
// length 0.
func (tr *trie) match(s string) (id int32, n int) {
	node := int32(0)
	for i := 0; i < len(s); i++ {
		c, ok := tr.nodes[node].next[s[i]]
		if !ok {
			break
		}
		node = c
		if tr.nodes[node].id >= 0 {
			id, n = tr.nodes[node].id, i+1
		}
	}
	return id, n
}
