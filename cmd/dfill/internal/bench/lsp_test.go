package bench

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"
	"go.uber.org/zap/zaptest"

	"github.com/dfill/dfill/completion"
	"github.com/dfill/dfill/fim"
	"github.com/dfill/dfill/lsp"
)

func TestPlanTyping(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		start   int
		keys    int
		want    string // the typed region
		wantErr bool
	}{
		{"ascii", "package p\n\nfunc f() {}\n", 3, 6, "func f", false},
		{"across lines", "a\nbc\nd\n", 2, 4, "bc\nd", false},
		{"multi-byte and astral", "x\né𝄞z\n", 2, 3, "é𝄞z", false},
		{"stops at the end", "a\nbc", 2, 99, "bc", false},
		{"start past the end", "a\n", 5, 1, "", true},
		{"no keys", "a\n", 1, 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := planTyping(tt.text, tt.start, tt.keys)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			var typed strings.Builder
			for _, k := range plan.Keys {
				typed.WriteString(k.Text)
			}
			if typed.String() != tt.want {
				t.Errorf("types %q, want %q", typed.String(), tt.want)
			}
			// Replaying the keystrokes at their positions rebuilds the file.
			text := plan.Initial
			for i, k := range plan.Keys {
				m := lsp.NewMapper(text, protocol.PositionEncodingKindUTF16)
				off := m.Offset(k.At)
				text = text[:off] + k.Text + text[off:]
				if got := lsp.NewMapper(text, protocol.PositionEncodingKindUTF16).Offset(k.Cursor); got != off+len(k.Text) {
					t.Fatalf("key %d: cursor %v is at %d, want %d", i, k.Cursor, got, off+len(k.Text))
				}
			}
			if text != tt.text {
				t.Errorf("replay gives %q, want %q", text, tt.text)
			}
		})
	}
}

// echoGen proposes a fixed infill.
type echoGen struct{}

func (echoGen) Infill(ctx context.Context, p fim.Prompt, opt completion.GenerateOptions, onStep func(completion.Step)) ([]completion.Candidate, error) {
	return []completion.Candidate{{Text: "return nil", Confidence: 0.5, Steps: 1}}, ctx.Err()
}
func (echoGen) CountTokens(s string) int { return len(s)/4 + 1 }
func (echoGen) ContextTokens() int       { return 2048 }
func (echoGen) Name() string             { return "echo" }

// TestReplay runs the bench's client against an in-process server with a
// fake model, sending both requests per keystroke as VS Code does: each
// request is answered or was cancelled by the client itself; none is lost.
func TestReplay(t *testing.T) {
	for _, requests := range []string{"inline", "inline,completion"} {
		t.Run(requests, func(t *testing.T) {
			client, server := net.Pipe()
			served := make(chan int, 1)
			go func() {
				code, _ := lsp.Serve(context.Background(), server, lsp.Options{
					Logger: zaptest.NewLogger(t),
					Loader: func(ctx context.Context, cfg lsp.ModelConfig) (completion.Generator, func(), error) {
						return echoGen{}, nil, nil
					},
				})
				served <- code
			}()
			c := &child{}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, c.conn, c.server = protocol.NewClient(ctx, benchClient{}, jsonrpc2.NewStream(client))

			src := "package p\n\nfunc f() error {\n\treturn nil\n}\n\nfunc g() {}\n"
			plan, err := planTyping(src, 3, 40)
			if err != nil {
				t.Fatal(err)
			}
			methods, err := benchMethods(requests)
			if err != nil {
				t.Fatal(err)
			}
			res, err := replay(ctx, c, map[string]any{"debounceMs": 1, "completionItems": "always"}, "file:///p/p.go", "go", plan, time.Millisecond, methods)
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests != len(plan.Keys)*len(methods) || res.Answered+res.Cancelled != res.Requests || res.Lost != 0 || res.Failed != 0 {
				t.Errorf("requests %d: answered %d + cancelled by the client %d; lost %d, failed %d",
					res.Requests, res.Answered, res.Cancelled, res.Lost, res.Failed)
			}
			if res.Answered == 0 {
				t.Error("no request answered")
			}
			if res.Model != "echo" || res.Server.Count+res.Server.Cancelled == 0 {
				t.Errorf("model %q, server stats %+v", res.Model, res.Server)
			}
			if err := c.server.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			c.server.Exit(ctx)
			if code := <-served; code != 0 {
				t.Errorf("exit code %d", code)
			}
			c.conn.Close()
		})
	}
}
