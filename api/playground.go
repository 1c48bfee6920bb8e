package api

import (
	"embed"
	"net/http"
)

// playgroundFiles is the playground's page and assets (`dfill http`'s
// /playground): plain HTML, CSS and JavaScript, no build step.
//
//go:embed playground/index.html playground/app.js playground/style.css
var playgroundFiles embed.FS

// playgroundCSP keeps the page to its own server: no script, style, font,
// image or connection of another origin can load, whatever the code typed.
const playgroundCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// playground returns the handler of one of the playground's files.
func playground(name, contentType string) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, _ *http.Request) error {
		b, err := playgroundFiles.ReadFile("playground/" + name)
		if err != nil {
			return err
		}
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Content-Security-Policy", playgroundCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		_, err = w.Write(b)
		return err
	}
}
