package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestPlaygroundFiles checks the playground's files: served without the
// API key (the page asks for it), with their types, and a policy that
// lets the page load nothing from another origin; the page refers only to
// its own files.
func TestPlaygroundFiles(t *testing.T) {
	_, ts := serve(t, newFake(), Options{APIKey: "k"})
	for _, tt := range []struct{ path, ctype, holds string }{
		{"/playground", "text/html", `src="/playground/app.js"`},
		{"/playground/app.js", "text/javascript", `fetch("/v1/fim/completions"`},
		{"/playground/style.css", "text/css", "prefers-reduced-motion"},
	} {
		resp, b := do(t, context.Background(), http.MethodGet, ts.URL+tt.path, "", nil)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.ctype) {
			t.Errorf("%s: status %d, type %q", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q", tt.path, csp)
		}
		body := string(b)
		if !strings.Contains(body, tt.holds) {
			t.Errorf("%s does not hold %q", tt.path, tt.holds)
		}
		if strings.Contains(body, "http://") || strings.Contains(body, "https://") || strings.Contains(body, "//cdn") {
			t.Errorf("%s names another origin", tt.path)
		}
	}
}
