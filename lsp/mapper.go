package lsp

import (
	"sort"
	"strings"
	"unicode/utf8"

	"go.lsp.dev/protocol"
)

// Position and Range are LSP's.
type (
	Position = protocol.Position
	Range    = protocol.Range
)

// Mapper converts between LSP positions and byte offsets of one text. It is
// the only place in dfill that knows about position encodings (as gopls'
// protocol.Mapper): every handler turns positions into offsets with a Mapper
// on the way in, and offsets into positions on the way out.
//
// Lines end at '\n' (a '\r' before it belongs to the line). A column is
// counted in UTF-16 code units, or in bytes when the client negotiated UTF-8.
// Bytes that are not valid UTF-8 count as one unit each. Positions past the
// end of a line clamp to the line's end, and lines past the end of the text
// clamp to the end of the text: a Mapper never fails.
type Mapper struct {
	text  string
	utf8  bool
	lines []int // byte offset of the start of each line; lines[0] == 0
}

// NewMapper returns a Mapper for text with the given position encoding
// (UTF-8, or UTF-16 for anything else).
func NewMapper(text string, encoding protocol.PositionEncodingKind) *Mapper {
	n := strings.Count(text, "\n")
	lines := make([]int, 1, n+1)
	for i := 0; ; {
		j := strings.IndexByte(text[i:], '\n')
		if j < 0 {
			break
		}
		i += j + 1
		lines = append(lines, i)
	}
	return &Mapper{text: text, utf8: encoding == protocol.PositionEncodingKindUTF8, lines: lines}
}

// Text returns the text the Mapper maps.
func (m *Mapper) Text() string { return m.text }

// Lines returns the number of lines (one more than the number of '\n').
func (m *Mapper) Lines() int { return len(m.lines) }

// lineBounds returns the byte offsets of the start of line and of its end
// (the '\n' that ends it, or the end of the text).
func (m *Mapper) lineBounds(line int) (start, end int) {
	start = m.lines[line]
	if line+1 < len(m.lines) {
		return start, m.lines[line+1] - 1
	}
	return start, len(m.text)
}

// units returns how many position units the rune r, encoded in size bytes,
// takes.
func (m *Mapper) units(r rune, size int) int {
	switch {
	case m.utf8:
		return size
	case size == 4: // outside the BMP: a UTF-16 surrogate pair
		return 2
	default: // a BMP rune, or one invalid byte
		return 1
	}
}

// Offset returns the byte offset of p. A column past the end of its line
// clamps to the line's end; a line past the last clamps to the end of the
// text; a column inside a rune (the middle of a UTF-16 surrogate pair or of a
// UTF-8 sequence) rounds down to the rune's start.
func (m *Mapper) Offset(p Position) int {
	if int64(p.Line) >= int64(len(m.lines)) {
		return len(m.text)
	}
	start, end := m.lineBounds(int(p.Line))
	want := int(p.Character)
	i, col := start, 0
	for i < end && col < want {
		r, size := utf8.DecodeRuneInString(m.text[i:end])
		u := m.units(r, size)
		if col+u > want {
			break
		}
		col += u
		i += size
	}
	return i
}

// Contains reports whether p names a place in the text: a line that exists
// (a column past the end of its line still counts, as LSP asks to clamp it).
func (m *Mapper) Contains(p Position) bool {
	return int64(p.Line) < int64(len(m.lines))
}

// Position returns the position of the byte offset off, clamped to the
// text. An offset inside a multi-byte rune counts from the rune's start.
func (m *Mapper) Position(off int) Position {
	off = max(0, min(off, len(m.text)))
	line := sort.SearchInts(m.lines, off+1) - 1
	start := m.lines[line]
	return Position{Line: uint32(line), Character: uint32(m.walk(start, off))}
}

// walk counts the position units from start to off, stopping at the start
// of the rune that contains off.
func (m *Mapper) walk(start, off int) int {
	col := 0
	for i := start; i < off; {
		r, size := utf8.DecodeRuneInString(m.text[i:])
		if i+size > off {
			break
		}
		col += m.units(r, size)
		i += size
	}
	return col
}

// Range returns the range of the byte offsets [start, end).
func (m *Mapper) Range(start, end int) Range {
	return Range{Start: m.Position(start), End: m.Position(end)}
}

// Offsets returns the byte offsets of r's start and end, clamped as Offset
// clamps. A range whose start comes after its end gives start > end; the
// caller decides what to do with it.
func (m *Mapper) Offsets(r Range) (start, end int) {
	return m.Offset(r.Start), m.Offset(r.End)
}

// before reports whether position a comes strictly before b.
func before(a, b Position) bool {
	return a.Line < b.Line || a.Line == b.Line && a.Character < b.Character
}
