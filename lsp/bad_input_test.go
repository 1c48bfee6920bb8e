package lsp

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"go.lsp.dev/protocol"
)

// TestBadInput sends what a broken or hostile client might, and checks each
// time that the server answers what it should and then still serves.
func TestBadInput(t *testing.T) {
	valid := []byte(`{"jsonrpc":"2.0","method":"dfill/stats","id":"raw"}`)
	tests := []struct {
		name string
		send func(e *editor)
		// nullErr is the code of the error response with a null id the
		// server must send, or 0 for none.
		nullErr int
	}{
		{
			name:    "malformed JSON",
			send:    func(e *editor) { e.writeRaw(frame([]byte(`{"jsonrpc":"2.0","method":`))) },
			nullErr: -32700,
		},
		{
			name:    "not JSON-RPC 2.0",
			send:    func(e *editor) { e.writeRaw(frame([]byte(`{"jsonrpc":"1.0","method":"x","id":1}`))) },
			nullErr: -32600,
		},
		{
			name: "Content-Length too short",
			send: func(e *editor) {
				e.writeRaw([]byte(fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(valid)-10, valid)))
			},
			nullErr: -32700,
		},
		{
			name: "Content-Length too long",
			send: func(e *editor) {
				// The extra bytes come from the next frame, which must still
				// be served (the check below sends it).
				note := `{"jsonrpc":"2.0","method":"$/setTrace","params":{"value":"off"}}`
				e.writeRaw([]byte(fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(note)+12, note)))
			},
		},
		{
			name: "Content-Length missing",
			send: func(e *editor) {
				e.writeRaw([]byte("Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n" + string(valid)))
			},
		},
		{
			name: "Content-Length not a number",
			send: func(e *editor) { e.writeRaw([]byte("Content-Length: lots\r\n\r\n" + string(valid))) },
		},
		{
			name: "unknown notification",
			send: func(e *editor) {
				e.notify("textDocument/didSave", map[string]any{"textDocument": map[string]any{"uri": "file:///w/main.go"}})
			},
		},
		{
			name: "$/ notification",
			send: func(e *editor) { e.notify("$/setTrace", map[string]any{"value": "verbose"}) },
		},
		{
			name: "params of the wrong shape",
			send: func(e *editor) {
				e.notify("textDocument/didChange", map[string]any{"textDocument": 7, "contentChanges": "no"})
				e.notify("textDocument/didOpen", []int{1, 2})
			},
		},
		{
			name: "edits that do not apply",
			send: func(e *editor) {
				e.change("file:///w/main.go", 2, edit(rng(3, 5, 1, 0), "x"))
				e.change("file:///w/main.go", 3, edit(rng(900, 0, 999, 9), "// end\n"))
				e.change("file:///w/nope.go", 1, edit(nil, "x"))
				e.notify("textDocument/didClose", map[string]any{"textDocument": map[string]any{"uri": "file:///w/nope.go"}})
			},
		},
		{
			name: "non-UTF-8 text",
			send: func(e *editor) {
				// JSON cannot carry raw invalid UTF-8 in a valid way, but a
				// client may send it anyway: the decoder replaces it.
				body := []byte("{\"jsonrpc\":\"2.0\",\"method\":\"textDocument/didOpen\",\"params\":{\"textDocument\":{\"uri\":\"file:///w/bin.go\",\"languageId\":\"go\",\"version\":1,\"text\":\"a\xff\xfe\xc3(b\\n\"}}}")
				e.writeRaw(frame(body))
				e.change("file:///w/bin.go", 2, edit(rng(0, 2, 0, 4), "\ufffd"))
				e.inline("file:///w/bin.go", 0, 3, invokedInline)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ready(t, testOptions(t, &fakeGen{text: "fmt.Println()"}), nil)
			tt.send(e)
			if tt.nullErr != 0 {
				if m := e.waitNullError(1); m.Error == nil || m.Error.Code != tt.nullErr {
					t.Errorf("error response %+v, want code %d", m.Error, tt.nullErr)
				}
			}
			// A raw valid request after the bad input, then normal traffic.
			ch := make(chan *wireMsg, 1)
			e.mu.Lock()
			e.waiting[`"raw"`] = ch
			e.mu.Unlock()
			e.writeRaw(frame(valid))
			if m := e.wait(ch); m.Error != nil {
				t.Fatalf("request after bad input: %+v", m.Error)
			}
			line, col := lineCol(goSource, "\t\n}")
			if list := e.inline("file:///w/main.go", line, col+1, invokedInline); len(list.Items) == 0 {
				t.Error("no completion after bad input")
			}
		})
	}
}

func TestUnknownRequests(t *testing.T) {
	tests := []struct {
		name   string
		method string
	}{
		{"unknown method", "textDocument/hover"},
		{"$/ request", "$/unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ready(t, testOptions(t, &fakeGen{text: "x"}), nil)
			if m := e.call(tt.method, map[string]any{}); m.Error == nil || m.Error.Code != -32601 {
				t.Errorf("%s answered %+v, want MethodNotFound", tt.method, m.Error)
			}
			e.stats()
		})
	}
}

func TestPositionsOutOfRange(t *testing.T) {
	tests := []struct {
		name      string
		line, col uint32
		want      *Position // where the item's range must start; nil: no items
	}{
		{"past the end of a line clamps", 5, 200, &Position{Line: 5, Character: 1}},
		{"past the end of the file", 90, 3, nil},
		{"huge", 1<<32 - 1, 1<<32 - 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ready(t, testOptions(t, &fakeGen{text: "x := 1"}), nil)
			list := e.inline("file:///w/main.go", tt.line, tt.col, invokedInline)
			if tt.want == nil && len(list.Items) > 0 {
				t.Errorf("items %+v outside the document", list.Items)
			}
			if tt.want != nil && len(list.Items) == 0 {
				t.Error("no items")
			}
			for _, it := range list.Items {
				if tt.want == nil || it.Range == nil || it.Range.Start != *tt.want {
					t.Errorf("item range %+v, want it to start at %v", it.Range, tt.want)
				}
			}
			cl := e.complete("file:///w/main.go", tt.line, tt.col, protocol.CompletionTriggerKindInvoked)
			if tt.want == nil && len(cl.Items) > 0 {
				t.Errorf("completion items %+v outside the document", cl.Items)
			}
			e.stats()
		})
	}
}

func TestUnopenedDocument(t *testing.T) {
	e := ready(t, testOptions(t, &fakeGen{text: "x"}), nil)
	if list := e.inline("file:///w/closed.go", 0, 0, invokedInline); len(list.Items) != 0 {
		t.Errorf("items for a document that is not open: %+v", list.Items)
	}
}

func TestHugeDocument(t *testing.T) {
	if testing.Short() {
		t.Skip("20 MB document")
	}
	e := ready(t, testOptions(t, &fakeGen{text: "eturn nil"}), nil)
	var b strings.Builder
	b.WriteString("package big\n\n")
	for b.Len() < 20<<20 {
		b.WriteString("func f() error { return fmt.Errorf(\"é𝄞 %d\", 42) } // filler\n")
	}
	b.WriteString("func g() error {\n\t\n}\n")
	text := b.String()
	e.open("file:///w/big.go", "go", text)
	lines := uint32(strings.Count(text, "\n"))
	line := lines - 2
	at := rng(line, 1, line, 1)
	e.change("file:///w/big.go", 2, edit(at, "r"))
	list := e.inline("file:///w/big.go", line, 2, automaticInline)
	if len(list.Items) == 0 {
		t.Fatal("no items")
	}
	if r := list.Items[0].Range; r == nil || r.Start != (Position{Line: line, Character: 2}) {
		t.Errorf("range %+v, want it at %d:2", r, line)
	}
	raw, _ := json.Marshal(list)
	t.Logf("answer: %s", raw)
}
