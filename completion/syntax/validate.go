package syntax

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	sitter "github.com/smacker/go-tree-sitter"
)

// Default window around the edited range that a Validator parses: 40 lines
// (at most 2 KiB) before it, enough for the enclosing function of most
// cursors, and 16 lines (1 KiB) after it, where the errors a candidate
// causes show up, extended to the end of the enclosing construct when that
// is near (toTopLevel). A broken candidate makes tree-sitter reparse
// everything after it with error recovery, so the part after sets the cost
// of rejecting one: with 40 lines after, rejecting a candidate and trying
// its shorter prefixes took up to 3 ms.
//
// Where the window cuts a construct the parse reports an error, with and
// without the candidate, and an error the candidate makes can hide behind
// it. So a candidate must not add an error anywhere (positions are
// compared, not counts, see noNewErrors), a window with errors tries
// shorter heads, and a candidate that changes the bracket structure needs
// a window that holds whole constructs (Session.closed).
const (
	DefaultLinesBefore = 40
	DefaultBytesBefore = 2 << 10
	DefaultLinesAfter  = 16
	DefaultBytesAfter  = 1 << 10
)

// Validator checks that a candidate does not add syntax errors to a
// document. Only a window of lines around the edited range is parsed, so
// the cost does not grow with the document. The zero Validator uses the
// default window and is safe for concurrent use.
type Validator struct {
	LinesBefore, BytesBefore int // the window before the range (0: the defaults)
	LinesAfter, BytesAfter   int // the window after the range (0: the defaults)
}

// Verdict is the outcome of checking one candidate.
type Verdict struct {
	OK     bool // the candidate adds no syntax errors
	Before int  // errors in the window without the candidate
	After  int  // errors in the window with the candidate
	// Inside counts the errors that start within the candidate's text
	// (always its own, whatever the counts say).
	Inside int
	// Parsed says a tree-sitter grammar counted ERROR and MISSING nodes;
	// false means the bracket-balance check counted unmatched brackets.
	Parsed bool
}

// Check parses doc with doc[start:end] replaced by insert and says whether
// that adds syntax errors. languageID is an LSP language id.
func (v *Validator) Check(ctx context.Context, languageID string, doc []byte, start, end int, insert string) (Verdict, error) {
	s, err := v.Begin(ctx, languageID, doc, start, end)
	if err != nil {
		return Verdict{}, err
	}
	defer s.Close()
	return s.Check(insert)
}

// Session checks several candidates for one range of one document: the
// document's own errors are counted once, by Begin. A Session is not safe
// for concurrent use; Close it when done.
type Session struct {
	ctx        context.Context
	languageID string
	g          *grammar // nil: bracket balance
	parser     *sitter.Parser
	head, tail []byte // the window before start and after end
	mid        []byte // the range as it is
	// startPt and midEnd are the row/column points where the range starts
	// and ends in the window, for the edits of incremental reparses.
	startPt, midEnd sitter.Point
	buf             []byte
	before          errorCount // the window as it is
	// closed reports whether the window holds whole constructs (see
	// Begin), so that a candidate that changes their structure shows the
	// error it makes.
	closed bool
	// hiddenRange reports whether the window's parse hides the range
	// (hidden): then the tree shows nothing a candidate does (a missing
	// comma as little as a stray bracket), and no candidate is accepted
	// unless the window holds whole constructs.
	hiddenRange bool
	// base is the window's tree as it is: each candidate's parse starts
	// from an edited copy of it, so tree-sitter reparses only around the
	// candidate (a third of the time of a parse from scratch) and the rest
	// of the window, errors included, keeps the structure it had.
	base *sitter.Tree
}

// Begin starts checking candidates for doc[start:end] (clamped to the
// document) in languageID; it parses the window without a candidate.
func (v *Validator) Begin(ctx context.Context, languageID string, doc []byte, start, end int) (*Session, error) {
	start = min(max(start, 0), len(doc))
	end = min(max(end, start), len(doc))
	lines, bytesBefore := orDefault(v.LinesBefore, DefaultLinesBefore), orDefault(v.BytesBefore, DefaultBytesBefore)
	we := windowEnd(doc, end, orDefault(v.LinesAfter, DefaultLinesAfter), orDefault(v.BytesAfter, DefaultBytesAfter))
	g := lookup(languageID)
	we, ends := toTopLevel(doc, we, maxTopLevelLines, maxTopLevelBytes, g != nil && g.indented)
	s, err := begin(ctx, languageID, doc, windowStart(doc, start, lines, bytesBefore), start, end, we)
	if err != nil {
		return nil, err
	}
	// A window that parses without errors holds whole constructs: a
	// candidate that opens or closes one more leaves a visible error in it.
	// So does one that starts and ends where constructs do, whatever
	// errors the user's text has inside it (an open call the candidate is
	// to close, or a block whose first line the candidate is to write).
	s.closed = s.before.total() == 0 || ends && s.startsConstruct(doc, start)
	if !s.closed && s.g != nil {
		var wide bool
		if s, wide, err = s.widen(ctx, doc, start, end); err != nil {
			return nil, err
		}
		s.closed = wide
	}
	if s.closed || s.g == nil {
		s.hiddenRange = s.hidden()
		return s, nil
	}
	// A window that starts inside a string or comment parses as a run of
	// errors, and they hide the ones a candidate makes. When the window has
	// errors, shorter heads (halving down to minLinesBefore) may start
	// outside them: the window with the fewest errors is kept, unless that
	// head hides the range (inside a string, a comment or an error node)
	// and the longer one does not.
	for l := lines / 2; err == nil && s.before.total() > 0 && l >= minLinesBefore; l /= 2 {
		var t *Session
		t, err = begin(ctx, languageID, doc, windowStart(doc, start, l, bytesBefore), start, end, we)
		switch {
		case err != nil:
			s.Close()
		case t.before.total() < s.before.total() && (!t.hidden() || s.hidden()):
			s.Close()
			s = t
		default:
			t.Close()
		}
	}
	if err != nil {
		return nil, err
	}
	s.closed = s.before.total() == 0 || ends && opensConstruct(doc, start-len(s.head))
	s.hiddenRange = s.hidden()
	return s, nil
}

// A window that has errors and does not hold whole constructs is widened,
// when that takes at most this many lines (and bytes) on each side, to
// start and end where constructs do.
const (
	maxWideLines = 400
	maxWideBytes = 16 << 10
)

// MaxWholeBytes is the largest document that a Session parses whole when
// no narrower window holds whole constructs (see widen). A caller that
// hands Begin a part of a document must hand it more than this, or the
// part's first byte is taken for the document's start.
const MaxWholeBytes = 48 << 10

// widen returns a session on a wider window of doc that holds whole
// constructs, and true, when there is one: from the start of the
// construct the range is in to its end, when both are near enough (see
// maxWideLines) and the window does not start inside a string or comment
// (startsConstruct); otherwise the whole document, when it is small
// enough (MaxWholeBytes). Then a candidate that opens a block whose body
// follows (the line "if n > 1 {" the user left out) is checked by the
// whole block instead of refused for changing the structure of a window
// cut inside it. Otherwise it returns s and false. s is closed when a new
// session is returned or on error.
func (s *Session) widen(ctx context.Context, doc []byte, start, end int) (*Session, bool, error) {
	top := fromTopLevel(doc, start-len(s.head), maxWideLines, maxWideBytes)
	next := len(doc) // the line after the range's
	if i := bytes.IndexByte(doc[end:], '\n'); i >= 0 {
		next = end + i + 1
	}
	we, ends := toTopLevel(doc, next, maxWideLines, maxWideBytes, s.g.indented)
	if ends && opensConstruct(doc, top) {
		t, err := begin(ctx, s.languageID, doc, top, start, end, we)
		if err != nil {
			s.Close()
			return nil, false, err
		}
		if t.startsConstruct(doc, start) {
			s.Close()
			return t, true, nil
		}
		t.Close()
	}
	// Lines in column 0 inside multi-line strings (test tables) fool the
	// search for a construct's start, and an error the user left may hide
	// the range in a construct's parse; a document small enough is parsed
	// whole instead.
	if len(doc) > MaxWholeBytes || len(s.head) == start {
		return s, false, nil
	}
	t, err := begin(ctx, s.languageID, doc, 0, start, end, len(doc))
	if err != nil {
		s.Close()
		return nil, false, err
	}
	s.Close()
	return t, true, nil
}

// hidden reports whether the range starts strictly inside a string, a
// comment or an error node in the parse of the window as it is: there the
// parse cannot show what a candidate does (a head starting inside a
// multi-line raw string leaves the rest of the window one run of errors).
func (s *Session) hidden() bool {
	if s.base == nil {
		return false
	}
	a := uint32(len(s.head))
	for n := s.base.RootNode().NamedDescendantForPointRange(s.startPt, s.startPt); n != nil && !n.IsNull(); n = n.Parent() {
		t := n.Type()
		if (n.IsError() || strings.Contains(t, "string") || strings.Contains(t, "comment")) && n.StartByte() < a && a < n.EndByte() {
			return true
		}
	}
	return false
}

// minLinesBefore is the shortest head Begin tries for a window with errors.
const minLinesBefore = 2

// begin starts a session on the window doc[ws:we] around doc[start:end].
func begin(ctx context.Context, languageID string, doc []byte, ws, start, end, we int) (*Session, error) {
	s := &Session{
		ctx:        ctx,
		languageID: languageID,
		g:          lookup(languageID),
		head:       doc[ws:start],
		tail:       doc[end:we],
	}
	s.mid = doc[start:end]
	s.startPt = pointAfter(sitter.Point{}, s.head)
	s.midEnd = pointAfter(s.startPt, s.mid)
	if s.g != nil {
		s.parser = newParser(s.g)
	}
	n, err := s.count(s.mid)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.before = n
	return s, nil
}

// Close releases the session's parser and tree.
func (s *Session) Close() {
	if s.base != nil {
		closeTree(s.base)
		s.base = nil
	}
	if s.parser != nil {
		closeParser(s.parser)
		s.parser = nil
	}
}

// Check says whether insert, in place of the session's range, adds syntax
// errors.
func (s *Session) Check(insert string) (Verdict, error) {
	n, err := s.count([]byte(insert))
	if err != nil {
		return Verdict{}, err
	}
	ok := n.inside == 0 && n.within(s.before)
	if s.g != nil {
		ok = ok && s.noNewErrors(n, len(insert))
		// A candidate that opens or closes more brackets than the range
		// did changes the structure up to the end of the construct it is
		// in; when the window stops short of that end, the error it makes
		// there is out of sight (or falls on the error of the window's
		// cut), so such a candidate is not accepted. Where the user's text
		// is broken, error recovery may swallow the brackets a candidate
		// adds (a "}" that closes a block early leaves the error of the
		// line the user left out where it was, or lumps the errors after
		// it into fewer), so there such a candidate must repair the
		// window: leave no error in it.
		ok = ok && (n.brackets == s.before.brackets || s.closed && n.total() == 0)
		ok = ok && (s.closed || !s.hiddenRange)
	}
	return Verdict{
		OK:     ok,
		Before: s.before.total(),
		After:  n.total(),
		Inside: n.inside,
		Parsed: s.g != nil,
	}, nil
}

// errorCount counts syntax errors by kind: for a grammar, ERROR and MISSING
// nodes together in [0]; for bracket balance, unclosed (, [, { and stray
// ), ], } in [0..5], so that closing an old bracket does not excuse a new
// stray one of another kind. inside counts the grammar's errors that start
// within the inserted text.
type errorCount struct {
	kinds  [6]int
	inside int
	at     []uint32 // where the grammar's errors start in the window
	// brackets is, for {}, () and [], the openers less the closers among
	// the tokens of the inserted text (not those in its strings or
	// comments).
	brackets [3]int
}

func (e errorCount) total() int {
	n := 0
	for _, v := range e.kinds {
		n += v
	}
	return n
}

// within reports whether e has no more errors of any kind than base.
func (e errorCount) within(base errorCount) bool {
	for i := range e.kinds {
		if e.kinds[i] > base.kinds[i] {
			return false
		}
	}
	return true
}

// noNewErrors reports whether every grammar error of after, the window
// with an insert of n bytes in place of the range, is one the window had
// before, at the same place once the text after the range is shifted by the
// insert. Counting alone is not enough: where the window cuts a construct
// there is an error, and a candidate that closes the construct early (a
// stray "}") trades that error for a new one right after it.
func (s *Session) noNewErrors(after errorCount, n int) bool {
	a, oldEnd := uint32(len(s.head)), uint32(len(s.head)+len(s.mid))
	shift := int64(n) - int64(len(s.mid))
	had := make(map[uint32]int, len(s.before.at))
	for _, p := range s.before.at {
		switch {
		case p >= oldEnd:
			p = uint32(int64(p) + shift)
		case p >= a:
			p = a // in the range the insert replaces
		}
		had[p]++
	}
	for _, p := range after.at {
		if had[p] == 0 {
			return false
		}
		had[p]--
	}
	return true
}

// count returns the errors in the window with insert in place.
func (s *Session) count(insert []byte) (errorCount, error) {
	s.buf = append(append(append(s.buf[:0], s.head...), insert...), s.tail...)
	if s.g == nil {
		return bracketErrors(s.buf), nil
	}
	var old *sitter.Tree
	if s.base != nil {
		old = s.base.Copy()
		openTrees.Add(1)
		defer closeTree(old)
		old.Edit(s.edit(insert))
	}
	t, err := s.parse(old)
	if err != nil {
		return errorCount{}, err
	}
	if s.base == nil {
		s.base = t // the window as it is: Begin's parse
	} else {
		defer closeTree(t)
	}
	a := uint32(len(s.head))
	root := t.RootNode()
	total, inside, at := treeErrors(root, s.buf, a, a+uint32(len(insert)))
	if s.g.reserved != nil {
		at = reservedNames(s.g, root, s.buf, a, a+uint32(len(insert)), at)
		inside += len(at) - total
		total = len(at)
	}
	return errorCount{kinds: [6]int{total}, inside: inside, at: at, brackets: bracketTokens(root, a, a+uint32(len(insert)))}, nil
}

// reservedNames appends to at where each name node of g that starts in
// [a, b) of src is a reserved word (grammar.reserved), descending only
// into the nodes that overlap [a, b).
func reservedNames(g *grammar, root *sitter.Node, src []byte, a, b uint32, at []uint32) []uint32 {
	c := sitter.NewTreeCursor(root)
	defer c.Close()
	for {
		n := c.CurrentNode()
		overlaps := n.StartByte() < b && n.EndByte() > a
		if overlaps && n.ChildCount() == 0 && n.StartByte() >= a && g.identifiers[n.Type()] &&
			g.reserved[string(src[n.StartByte():n.EndByte()])] {
			at = append(at, n.StartByte())
		}
		if overlaps && c.GoToFirstChild() {
			continue
		}
		for !c.GoToNextSibling() {
			if !c.GoToParent() {
				return at
			}
		}
	}
}

// parse parses s.buf, starting from old when it is not nil.
func (s *Session) parse(old *sitter.Tree) (*sitter.Tree, error) {
	t, err := s.parser.ParseCtx(s.ctx, old, s.buf)
	if err != nil {
		return nil, fmt.Errorf("syntax: parse %s (%d bytes): %w", s.languageID, len(s.buf), err)
	}
	openTrees.Add(1)
	// A short parse may finish before it sees the cancellation.
	if err := s.ctx.Err(); err != nil {
		closeTree(t)
		return nil, fmt.Errorf("syntax: parse %s (%d bytes): %w", s.languageID, len(s.buf), err)
	}
	return t, nil
}

// edit describes replacing the session's range by insert to tree-sitter.
// Only byte offsets matter to the error counts. The binding copies
// OldEndPoint into the edit's new end point too, so the points of nodes
// after the range may be off in the edited copy; nothing reads them.
func (s *Session) edit(insert []byte) sitter.EditInput {
	a := uint32(len(s.head))
	return sitter.EditInput{
		StartIndex:  a,
		OldEndIndex: a + uint32(len(s.mid)),
		NewEndIndex: a + uint32(len(insert)),
		StartPoint:  s.startPt,
		OldEndPoint: s.midEnd,
		NewEndPoint: pointAfter(s.startPt, insert),
	}
}

// pointAfter returns the row and byte column reached from p by text.
func pointAfter(p sitter.Point, text []byte) sitter.Point {
	for _, b := range text {
		if b == '\n' {
			p.Row++
			p.Column = 0
		} else {
			p.Column++
		}
	}
	return p
}

// bracketTokens returns, for {}, () and [], the opening less the closing
// bracket tokens of the tree that lie in [a, b); brackets inside strings
// and comments are not tokens of their own, and missing ones do not count.
func bracketTokens(root *sitter.Node, a, b uint32) (d [3]int) {
	if root == nil || a >= b {
		return d
	}
	c := sitter.NewTreeCursor(root)
	defer c.Close()
	for {
		n := c.CurrentNode()
		if n.EndByte() > a && n.StartByte() < b {
			if n.ChildCount() > 0 && c.GoToFirstChild() {
				continue
			}
			if n.StartByte() >= a && n.EndByte() <= b && !n.IsMissing() {
				switch n.Type() {
				case "{":
					d[0]++
				case "}":
					d[0]--
				case "(":
					d[1]++
				case ")":
					d[1]--
				case "[":
					d[2]++
				case "]":
					d[2]--
				}
			}
		}
		for !c.GoToNextSibling() {
			if !c.GoToParent() {
				return d
			}
		}
	}
}

// treeErrors counts the ERROR and MISSING nodes under root (the parse of
// src), descending only into subtrees that hold an error, and lists where
// each starts. inside counts the errors that belong to the inserted text
// src[a:b] (see touches), however many the window had before: on a line
// that was already broken, junk such as "fmt. :=1 != 1" adds no error of
// its own and must still be refused, while a candidate that repairs the
// line leaves no error there at all.
func treeErrors(root *sitter.Node, src []byte, a, b uint32) (total, inside int, at []uint32) {
	if root == nil || !root.HasError() {
		return 0, 0, nil
	}
	tokens := insertTokens(root, a, b, nil)
	c := sitter.NewTreeCursor(root)
	defer c.Close()
	for {
		node := c.CurrentNode()
		if node.IsError() || node.IsMissing() {
			total++
			at = append(at, node.StartByte())
			if touches(node, src, a, b, tokens) {
				inside++
			}
		}
		if node.HasError() && c.GoToFirstChild() {
			continue
		}
		for !c.GoToNextSibling() {
			if !c.GoToParent() {
				return total, inside, at
			}
		}
	}
}

// touches reports whether the error node e belongs to the inserted text
// src[a:b], whose tokens are given: e starts in it, or holds one of its
// tokens (a stray ")" that error recovery skipped, at any depth), or is a
// MISSING node at its start (the "x" that "fmt." still lacks), or stands
// on the line of one of its tokens in the same construct (the lone "."
// beside "fmt" when the insert after it is " := 1").
func touches(e *sitter.Node, src []byte, a, b uint32, tokens []*sitter.Node) bool {
	p := e.StartByte()
	switch {
	case p >= a && p < b:
		return true
	case e.IsMissing():
		return p == a && a < b
	case tokenWithin(e, a, b):
		return true
	}
	parent := e.Parent()
	if parent == nil || parent.IsNull() {
		return false
	}
	for _, t := range tokens {
		if parent.StartByte() <= t.StartByte() && t.EndByte() <= parent.EndByte() && sameLine(src, p, t.StartByte()) {
			return true
		}
	}
	return false
}

// insertTokens appends the tokens (leaves that are not extras, such as
// comments) of n that start in [a, b), descending only into the nodes that
// overlap it.
func insertTokens(n *sitter.Node, a, b uint32, out []*sitter.Node) []*sitter.Node {
	for i := 0; i < int(n.ChildCount()); i++ {
		ch := n.Child(i)
		if ch.EndByte() <= a && !(ch.StartByte() == a && ch.EndByte() == a) || ch.StartByte() >= b {
			continue
		}
		if ch.ChildCount() == 0 {
			if !ch.IsExtra() && !ch.IsMissing() && ch.StartByte() >= a {
				out = append(out, ch)
			}
			continue
		}
		out = insertTokens(ch, a, b, out)
	}
	return out
}

// sameLine reports whether src has no newline between offsets p and q.
func sameLine(src []byte, p, q uint32) bool {
	lo, hi := min(p, q), max(p, q)
	hi = min(hi, uint32(len(src)))
	return lo >= hi || bytes.IndexByte(src[lo:hi], '\n') < 0
}

// tokenWithin reports whether a token of n (a leaf that is not an extra,
// such as a comment) starts in [a, b), descending only into the children
// that overlap it.
func tokenWithin(n *sitter.Node, a, b uint32) bool {
	for i := 0; i < int(n.ChildCount()); i++ {
		ch := n.Child(i)
		if ch.EndByte() <= a || ch.StartByte() >= b {
			continue
		}
		if ch.ChildCount() == 0 {
			if !ch.IsExtra() && ch.StartByte() >= a {
				return true
			}
			continue
		}
		if tokenWithin(ch, a, b) {
			return true
		}
	}
	return false
}

// bracketErrors counts unclosed and stray (), [] and {} in b, with no
// regard for strings or comments. A closer whose opener is deeper in the
// stack closes it and leaves the openers above it unclosed.
func bracketErrors(b []byte) errorCount {
	var e errorCount
	var stack []byte
	for _, ch := range b {
		var kind int
		switch ch {
		case '(', '[', '{':
			stack = append(stack, ch)
			continue
		case ')':
			kind = 0
		case ']':
			kind = 1
		case '}':
			kind = 2
		default:
			continue
		}
		open := "([{"[kind]
		i := len(stack) - 1
		for i >= 0 && stack[i] != open {
			i--
		}
		if i < 0 {
			e.kinds[3+kind]++
			continue
		}
		for _, o := range stack[i+1:] {
			e.kinds[strings.IndexByte("([{", o)]++
		}
		stack = stack[:i]
	}
	for _, o := range stack {
		e.kinds[strings.IndexByte("([{", o)]++
	}
	return e
}

// window returns [ws, we) ⊇ [start, end): at most about maxLines/2 lines
// and maxBytes/2 bytes on each side, cut at line boundaries (or mid-line
// when a single line is longer than the byte budget).
func window(doc []byte, start, end, maxLines, maxBytes int) (ws, we int) {
	half := max(maxLines/2, 1)
	return windowStart(doc, start, half, maxBytes/2), windowEnd(doc, end, half, maxBytes/2)
}

// windowStart returns where a window ending at start begins: after the
// lines-th newline before start, at most maxBytes back (mid-line when no
// newline is that close), or at 0 when the document starts sooner.
func windowStart(doc []byte, start, lines, maxBytes int) int {
	lo := max(0, start-maxBytes)
	ws, seen := start, 0
	for i := start - 1; i >= lo; i-- {
		if doc[i] == '\n' {
			ws = i + 1
			if seen++; seen > lines {
				break
			}
		}
	}
	switch {
	case lo == 0 && seen <= lines:
		ws = 0
	case seen == 0:
		ws = lo
	}
	return ws
}

// windowEnd returns where a window starting at end ends: after the lines-th
// newline from end, at most maxBytes on (mid-line when no newline is that
// close), or at the document's end when it comes sooner.
func windowEnd(doc []byte, end, lines, maxBytes int) int {
	hi := min(len(doc), end+maxBytes)
	we, seen := end, 0
	for i := end; i < hi; i++ {
		if doc[i] == '\n' {
			we = i + 1
			if seen++; seen > lines {
				break
			}
		}
	}
	switch {
	case hi == len(doc) && seen <= lines:
		we = len(doc)
	case seen == 0:
		we = hi
	}
	return we
}

// The window after the range goes on to the next line that starts in
// column 0 (the "}" that ends a Go function, the next def in Python) when
// one is this close, so that it holds the end of the enclosing construct:
// a candidate that closes the construct early leaves that line as a stray
// error, which a window cut inside the construct would not see.
const (
	maxTopLevelLines = 48
	maxTopLevelBytes = 3 << 10
)

// toTopLevel returns we moved on to the first line from we that starts
// with a non-blank byte, if there is one within maxLines lines and maxBytes
// bytes: past it when it starts with a closing bracket and opens none (the
// end of the construct; "}, {" only ends an element of it, and the search
// goes on), before it otherwise (the start of the next one); or to the
// document's end if that comes first. Otherwise it returns we. ends
// reports whether the window then ends where a construct does: at a
// closing bracket in column 0, at the document's end, or, where
// indentation alone closes constructs (indented), before any line in
// column 0. (In Go a line in column 0 may be a label inside a function.)
func toTopLevel(doc []byte, we, maxLines, maxBytes int, indented bool) (end int, ends bool) {
	hi := min(len(doc), we+maxBytes)
	i := we
	for line := 0; line <= maxLines && i < hi; line++ {
		nl := bytes.IndexByte(doc[i:hi], '\n')
		switch doc[i] {
		case ' ', '\t', '\n', '\r':
		case '}', ')', ']':
			lineEnd := hi
			if nl >= 0 {
				lineEnd = i + nl + 1
			}
			if bytes.ContainsAny(doc[i:lineEnd], "{([") {
				break // "}, {": the construct goes on with its next element
			}
			return lineEnd, nl >= 0 || hi == len(doc)
		default:
			return max(i, we), indented
		}
		if nl < 0 {
			i = hi
			break
		}
		i += nl + 1
	}
	if i >= len(doc) {
		return len(doc), true
	}
	return we, false
}

// declarationStart reports whether a line in column 0 that starts with b
// may start a declaration, a statement or a comment: an ASCII word, a
// decorator, a comment; not a quote, which ends a multi-line string more
// often than it starts one, nor a number or an operator, which go on an
// expression.
func declarationStart(b byte) bool {
	return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b == '@' || b == '#' || b == '/'
}

// startsConstruct reports whether the session's window (around the range
// at doc[start]) starts where a construct does: at the document's start, or
// at a line in column 0 (see opensConstruct) that is not inside a string or
// comment, which would leave the range hidden in the window's errors. (At
// the document's start, an error around the range is the user's own.)
func (s *Session) startsConstruct(doc []byte, start int) bool {
	ws := start - len(s.head)
	return ws == 0 || opensConstruct(doc, ws) && !s.hidden()
}

// fromTopLevel returns where the line that starts a construct (see
// opensConstruct) with a declaration (see declarationStart) at or before
// ws begins, if there is one within maxLines lines and maxBytes bytes
// before ws; otherwise it returns ws.
func fromTopLevel(doc []byte, ws, maxLines, maxBytes int) int {
	lo := max(0, ws-maxBytes)
	i := ws
	for line := 0; line <= maxLines && i >= lo; line++ {
		if opensConstruct(doc, i) && (i == 0 || declarationStart(doc[i])) {
			return i
		}
		if i == 0 {
			break
		}
		i = bytes.LastIndexByte(doc[:i-1], '\n') + 1
	}
	return ws
}

// opensConstruct reports whether a line starting at i in doc begins in
// column 0 with something other than a closing bracket (or i is the
// document's start).
func opensConstruct(doc []byte, i int) bool {
	if i == 0 {
		return true
	}
	if i >= len(doc) || doc[i-1] != '\n' {
		return false
	}
	switch doc[i] {
	case ' ', '\t', '\n', '\r', '}', ')', ']':
		return false
	}
	return true
}

// orDefault returns v, or def when v is not positive.
func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}
