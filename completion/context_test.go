package completion

import (
	"strings"
	"testing"
)

func TestEditRing(t *testing.T) {
	doc := func(n int) string {
		var sb strings.Builder
		for i := range n {
			sb.WriteString("line")
			sb.WriteString(strings.Repeat("x", i%3))
			sb.WriteString("\n")
		}
		return sb.String()
	}
	text := doc(400)
	lineAt := func(l int) int { // offset of the start of line l
		off := 0
		for range l {
			off += strings.IndexByte(text[off:], '\n') + 1
		}
		return off
	}
	type edit struct {
		uri  string
		line int
	}
	tests := []struct {
		name       string
		edits      []edit
		uri        string
		cursor     int
		wantChunks int
		wantFirst  string // the first line of the first snippet's text
	}{
		{name: "other document", edits: []edit{{"b", 10}}, uri: "a", cursor: 10, wantChunks: 1, wantFirst: lineText(text, 8)},
		{name: "near the cursor left out", edits: []edit{{"a", 10}}, uri: "a", cursor: 20, wantChunks: 0},
		{name: "far from the cursor kept", edits: []edit{{"a", 10}}, uri: "a", cursor: 300, wantChunks: 1, wantFirst: lineText(text, 8)},
		{name: "typing on one region replaces", edits: []edit{{"b", 10}, {"b", 11}, {"b", 12}}, uri: "a", cursor: 0, wantChunks: 1, wantFirst: lineText(text, 10)},
		{name: "most recent first", edits: []edit{{"b", 10}, {"b", 200}}, uri: "a", cursor: 0, wantChunks: 2, wantFirst: lineText(text, 198)},
		{name: "ring bounded", edits: []edit{{"b", 10}, {"b", 50}, {"b", 100}, {"b", 150}, {"b", 200}}, uri: "a", cursor: 0, wantChunks: maxEditsPerURI, wantFirst: lineText(text, 198)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r editRing
			for _, e := range tt.edits {
				off := lineAt(e.line)
				r.add(e.uri, "", text, off, off+4)
			}
			got := r.snippets(tt.uri, func() int { return tt.cursor })
			if len(got) != tt.wantChunks {
				t.Fatalf("%d snippets, want %d: %+v", len(got), tt.wantChunks, got)
			}
			if len(got) > 0 {
				if first := strings.SplitN(got[0].Text, "\n", 2)[0]; first != tt.wantFirst {
					t.Errorf("first snippet starts %q, want %q", first, tt.wantFirst)
				}
				if n := strings.Count(got[0].Text, "\n"); n != 2*editContext {
					t.Errorf("snippet has %d lines, want %d", n+1, 2*editContext+1)
				}
			}
		})
	}
}

func lineText(text string, l int) string { return strings.Split(text, "\n")[l] }
