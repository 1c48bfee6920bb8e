package lsp

import (
	"strings"
	"testing"
	"unicode/utf8"

	"go.lsp.dev/protocol"
)

func rng(l1, c1, l2, c2 uint32) *Range {
	return &Range{Start: Position{Line: l1, Character: c1}, End: Position{Line: l2, Character: c2}}
}

func TestApplyChanges(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		changes []protocol.TextDocumentContentChangeEvent
		want    string
		wrote   span
		skipped int
	}{
		{"insert", "ab\ncd", []protocol.TextDocumentContentChangeEvent{edit(rng(1, 1, 1, 1), "X")}, "ab\ncXd", span{4, 5}, 0},
		{"delete across lines", "ab\ncd", []protocol.TextDocumentContentChangeEvent{edit(rng(0, 1, 1, 1), "")}, "ad", span{1, 1}, 0},
		{"full sync", "ab", []protocol.TextDocumentContentChangeEvent{edit(nil, "new")}, "new", span{0, 3}, 0},
		{"in order", "abc", []protocol.TextDocumentContentChangeEvent{edit(rng(0, 0, 0, 0), "1"), edit(rng(0, 4, 0, 4), "2")}, "1abc2", span{0, 5}, 0},
		{"past the end of a line clamps", "ab\ncd", []protocol.TextDocumentContentChangeEvent{edit(rng(0, 9, 0, 9), "!")}, "ab!\ncd", span{2, 3}, 0},
		{"past the end of the file clamps", "ab", []protocol.TextDocumentContentChangeEvent{edit(rng(7, 0, 9, 9), "!")}, "ab!", span{2, 3}, 0},
		{"start after end is skipped", "abc", []protocol.TextDocumentContentChangeEvent{edit(rng(0, 2, 0, 1), "!"), edit(rng(0, 0, 0, 0), ">")}, ">abc", span{0, 1}, 1},
		{"UTF-16 surrogate pair", "a𝄞b", []protocol.TextDocumentContentChangeEvent{edit(rng(0, 1, 0, 3), "x")}, "axb", span{1, 2}, 0},
		{"non-UTF-8 bytes", "\xff\xfeab", []protocol.TextDocumentContentChangeEvent{edit(rng(0, 2, 0, 3), "Z")}, "\xff\xfeZb", span{2, 3}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, wrote, skipped := applyChanges(tt.text, protocol.PositionEncodingKindUTF16, tt.changes)
			if got != tt.want || wrote != tt.wrote || len(skipped) != tt.skipped {
				t.Errorf("got %q %v skipped %v, want %q %v %d skipped", got, wrote, skipped, tt.want, tt.wrote, tt.skipped)
			}
		})
	}
}

// FuzzApplyEdits applies an arbitrary edit and then its inverse: the
// inverse, found by mapping the span the edit wrote back to a range, must
// restore the text. Any input must not panic.
func FuzzApplyEdits(f *testing.F) {
	f.Add("hello\nworld\n", uint32(0), uint32(2), uint32(1), uint32(3), "XY\nZ", false)
	f.Add("a𝄞b\r\nc", uint32(0), uint32(1), uint32(0), uint32(3), "é", false)
	f.Add("\xff\xfe\n", uint32(0), uint32(1), uint32(5), uint32(0), "", true)
	f.Add("", uint32(3), uint32(3), uint32(0), uint32(0), "x", true)
	f.Fuzz(func(t *testing.T, text string, l1, c1, l2, c2 uint32, insert string, utf8Enc bool) {
		enc := protocol.PositionEncodingKindUTF16
		if utf8Enc {
			enc = protocol.PositionEncodingKindUTF8
		}
		r := rng(l1, c1, l2, c2)
		got, wrote, skipped := applyChanges(text, enc, []protocol.TextDocumentContentChangeEvent{edit(r, insert)})
		if len(skipped) > 0 {
			if got != text {
				t.Fatalf("a skipped edit changed the text")
			}
			return
		}
		if wrote.start < 0 || wrote.end > len(got) || wrote.end-wrote.start != len(insert) || got[wrote.start:wrote.end] != insert {
			t.Fatalf("wrote %v of %q, want %q there", wrote, got, insert)
		}
		start, end := NewMapper(text, enc).Offsets(*r)
		if len(got) != len(text)-(end-start)+len(insert) {
			t.Fatalf("length %d, want %d", len(got), len(text)-(end-start)+len(insert))
		}
		if !utf8.ValidString(text) || !utf8.ValidString(insert) {
			return // bytes may join across the edit into new runes: no round trip
		}
		back := NewMapper(got, enc).Range(wrote.start, wrote.end)
		orig, _, skipped := applyChanges(got, enc, []protocol.TextDocumentContentChangeEvent{edit(&back, text[start:end])})
		if len(skipped) > 0 || orig != text {
			t.Fatalf("inverse edit gave %q, want %q", orig, text)
		}
		_ = strings.Count(orig, "\n")
	})
}
