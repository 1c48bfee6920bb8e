package syntax

import (
	"context"
	"testing"
)

// FuzzCheck runs the validator on arbitrary documents, ranges and
// candidates in every window case (cuts, extensions, shorter heads): it
// must not panic or fail, and putting back the range's own text must find
// exactly the errors the window had.
func FuzzCheck(f *testing.F) {
	f.Add("package p\n\nfunc f() {\n\tx := 1\n}\n", 22, 22, "\ty := 2\n", "go")
	f.Add("def f(x):\n    return x\n", 14, 20, "(x +", "python")
	f.Add("var s = `\n{\n`\n\nfunc g() {\n\n}\n", 25, 25, "}", "go")
	f.Add("fn f() { let x = (1, 2); }", 10, 12, "{{", "rust")
	f.Add("a ( b [ c }", 3, 4, ")", "text")
	f.Fuzz(func(t *testing.T, doc string, start, end int, insert, lang string) {
		if len(doc) > 8<<10 || len(insert) > 1<<10 {
			return
		}
		start = min(max(start, 0), len(doc))
		end = min(max(end, start), len(doc))
		var v Validator
		s, err := v.Begin(context.Background(), lang, []byte(doc), start, end)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Check(insert); err != nil {
			t.Fatal(err)
		}
		same, err := s.Check(doc[start:end])
		if err != nil {
			t.Fatal(err)
		}
		if same.After != same.Before {
			t.Fatalf("the range's own text: %d errors, the window had %d", same.After, same.Before)
		}
	})
}
