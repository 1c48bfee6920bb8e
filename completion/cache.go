package completion

import (
	"strings"
	"sync"
)

// maxCacheURIs bounds how many documents the cache remembers.
const maxCacheURIs = 64

// shown is what was last answered for one document.
type shown struct {
	text    string // the document the items were computed for
	off     int    // the cursor then
	items   []Item
	invoked bool
	model   string
	stamp   uint64 // when it was stored (for eviction)
}

// typedSince returns how many bytes were typed at s.off to turn s.text
// into text, or -1 when text is not s.text with bytes inserted at s.off.
func (s *shown) typedSince(text string) int {
	n := len(text) - len(s.text)
	if n < 0 || text[:s.off] != s.text[:s.off] || text[s.off+n:] != s.text[s.off:] {
		return -1
	}
	return n
}

// advance returns the items that still apply after typed was typed at the
// cursor: those whose insert starts with typed, with typed removed and
// their range moved past it.
func (s *shown) advance(typed string) []Item {
	var out []Item
	for _, it := range s.items {
		if len(it.Insert) > len(typed) && strings.HasPrefix(it.Insert, typed) {
			it.Insert = it.Insert[len(typed):]
			it.Start += len(typed)
			it.End += len(typed)
			out = append(out, it)
		}
	}
	return out
}

// cache remembers the items shown for each document, to answer a request
// made while the user types into one of them without calling the model.
type cache struct {
	// mu guards the fields below.
	mu    sync.Mutex
	byURI map[string]*shown
	stamp uint64
}

// lookup returns the cached items for a request at off in text, when text
// is the shown document with the start of a shown item typed at its
// cursor (or nothing typed, unless the request is invoked and the cached
// answer was not).
func (c *cache) lookup(uri, text string, off int, invoked bool) ([]Item, string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.byURI[uri]
	if s == nil {
		return nil, "", false
	}
	n := s.typedSince(text)
	if n < 0 || off != s.off+n {
		return nil, "", false
	}
	if n == 0 {
		if invoked && !s.invoked {
			return nil, "", false
		}
		return s.items, s.model, true
	}
	items := s.advance(text[s.off:off])
	if len(items) == 0 {
		return nil, "", false
	}
	c.stamp++
	c.byURI[uri] = &shown{text: text, off: off, items: items, invoked: s.invoked, model: s.model, stamp: c.stamp}
	return items, s.model, true
}

// store remembers the items answered for a request at off in text. An
// empty answer is remembered too: a request for the same place (the other
// method of the same keystroke) takes it rather than asking the model
// again.
func (c *cache) store(uri, text string, off int, items []Item, invoked bool, model string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byURI == nil {
		c.byURI = make(map[string]*shown)
	}
	c.stamp++
	c.byURI[uri] = &shown{text: text, off: off, items: items, invoked: invoked, model: model, stamp: c.stamp}
	if len(c.byURI) > maxCacheURIs {
		oldest := ""
		for u, s := range c.byURI {
			if oldest == "" || s.stamp < c.byURI[oldest].stamp {
				oldest = u
			}
		}
		delete(c.byURI, oldest)
	}
}

// didChange forgets the items of uri unless text is the shown document
// with the start of one of them typed at its cursor.
func (c *cache) didChange(uri, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.byURI[uri]
	if s == nil {
		return
	}
	if n := s.typedSince(text); n < 0 || n > 0 && len(s.advance(text[s.off:s.off+n])) == 0 {
		delete(c.byURI, uri)
	}
}

// clear drops everything cached.
func (c *cache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.byURI)
}

// forget drops what is cached for uri.
func (c *cache) forget(uri string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byURI, uri)
}
