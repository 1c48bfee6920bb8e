package lsp

import (
	"testing"
	"unicode/utf8"

	"go.lsp.dev/protocol"
)

func TestMapper(t *testing.T) {
	// "a𝄞b" : 𝄞 is 4 bytes in UTF-8 and 2 UTF-16 code units.
	const text = "ab\ncé\na𝄞b\r\n\xffz\n"
	tests := []struct {
		name     string
		encoding protocol.PositionEncodingKind
		pos      Position
		offset   int
		back     Position // the position of offset, when it differs from pos
	}{
		{"start", protocol.PositionEncodingKindUTF16, Position{Line: 0, Character: 0}, 0, Position{Line: 0, Character: 0}},
		{"end of first line", protocol.PositionEncodingKindUTF16, Position{Line: 0, Character: 2}, 2, Position{Line: 0, Character: 2}},
		{"past the end of a line clamps", protocol.PositionEncodingKindUTF16, Position{Line: 0, Character: 99}, 2, Position{Line: 0, Character: 2}},
		{"after a two-byte rune", protocol.PositionEncodingKindUTF16, Position{Line: 1, Character: 2}, 6, Position{Line: 1, Character: 2}},
		{"after a two-byte rune, UTF-8", protocol.PositionEncodingKindUTF8, Position{Line: 1, Character: 3}, 6, Position{Line: 1, Character: 3}},
		{"inside a UTF-8 sequence rounds down", protocol.PositionEncodingKindUTF8, Position{Line: 1, Character: 2}, 4, Position{Line: 1, Character: 1}},
		{"after a surrogate pair", protocol.PositionEncodingKindUTF16, Position{Line: 2, Character: 3}, 12, Position{Line: 2, Character: 3}},
		{"inside a surrogate pair rounds down", protocol.PositionEncodingKindUTF16, Position{Line: 2, Character: 2}, 8, Position{Line: 2, Character: 1}},
		{"before CR", protocol.PositionEncodingKindUTF16, Position{Line: 2, Character: 4}, 13, Position{Line: 2, Character: 4}},
		{"between CR and LF", protocol.PositionEncodingKindUTF16, Position{Line: 2, Character: 5}, 14, Position{Line: 2, Character: 5}},
		{"invalid byte counts one", protocol.PositionEncodingKindUTF16, Position{Line: 3, Character: 1}, 16, Position{Line: 3, Character: 1}},
		{"last empty line", protocol.PositionEncodingKindUTF16, Position{Line: 4, Character: 0}, 18, Position{Line: 4, Character: 0}},
		{"past the last line clamps to the end", protocol.PositionEncodingKindUTF16, Position{Line: 9, Character: 3}, 18, Position{Line: 4, Character: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMapper(text, tt.encoding)
			if got := m.Offset(tt.pos); got != tt.offset {
				t.Errorf("Offset(%v) = %d, want %d", tt.pos, got, tt.offset)
			}
			if got := m.Position(tt.offset); got != tt.back {
				t.Errorf("Position(%d) = %v, want %v", tt.offset, got, tt.back)
			}
		})
	}
}

func TestMapperClampsOffsets(t *testing.T) {
	m := NewMapper("ab\nc", protocol.PositionEncodingKindUTF16)
	if p := m.Position(-5); p != (Position{Line: 0, Character: 0}) {
		t.Errorf("Position(-5) = %v", p)
	}
	if p := m.Position(99); p != (Position{Line: 1, Character: 1}) {
		t.Errorf("Position(99) = %v", p)
	}
}

// FuzzMapper checks that offset → position → offset is the identity on
// every rune boundary, in both encodings, and that no position panics.
func FuzzMapper(f *testing.F) {
	f.Add("hello\nworld", uint32(1), uint32(3))
	f.Add("a𝄞b\r\n\xff\xfe\n", uint32(0), uint32(2))
	f.Add("", uint32(7), uint32(7))
	f.Add("é\n\n\n", uint32(2), uint32(0))
	f.Fuzz(func(t *testing.T, text string, line, char uint32) {
		for _, enc := range []protocol.PositionEncodingKind{protocol.PositionEncodingKindUTF16, protocol.PositionEncodingKindUTF8} {
			m := NewMapper(text, enc)
			for off := 0; off <= len(text); {
				p := m.Position(off)
				if got := m.Offset(p); got != off {
					t.Fatalf("%s: Offset(Position(%d) = %v) = %d", enc, off, p, got)
				}
				if off == len(text) {
					break
				}
				_, size := utf8.DecodeRuneInString(text[off:])
				off += size
			}
			off := m.Offset(Position{Line: line, Character: char})
			if off < 0 || off > len(text) {
				t.Fatalf("%s: Offset(%d:%d) = %d out of [0,%d]", enc, line, char, off, len(text))
			}
			if p := m.Position(off); m.Offset(p) != off {
				t.Fatalf("%s: the offset of %d:%d is not a boundary", enc, line, char)
			}
		}
	})
}
