package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Sentinel errors. Every error this package returns for one of these
// conditions wraps the sentinel, so callers test with errors.Is; the
// message itself names the reference, file, URL and status.
var (
	// ErrBadRef means a model reference is not a catalog name, an
	// OWNER/REPO[:QUANT] or an OWNER/REPO/FILE.gguf.
	ErrBadRef = errors.New("hub: bad model reference")
	// ErrNotFound means the Hub has no such repository, revision or file,
	// or the repository holds no GGUF file that the reference picks.
	ErrNotFound = errors.New("hub: not found")
	// ErrUnauthorized means the Hub refused the request (401 or 403): the
	// repository is gated or private and HF_TOKEN is unset or lacks access.
	ErrUnauthorized = errors.New("hub: unauthorized")
	// ErrChecksum means a downloaded file's sha256 is not the one the Hub
	// lists for it; the file was deleted and never used.
	ErrChecksum = errors.New("hub: checksum mismatch")
	// ErrNotCached means the cache holds no file the reference picks.
	ErrNotCached = errors.New("hub: not in the cache")
	// ErrUnsupported means the Hub lists the file in a form dfill does not
	// load or cannot verify: split in parts, or without a sha256.
	ErrUnsupported = errors.New("hub: unsupported file")
)

// HTTPError is a response of the Hub (or the host it redirected to) with a
// status other than the one expected. Its message names the URL without
// its query (signed CDN URLs carry credentials there) and never the token.
type HTTPError struct {
	URL    string // scheme, host and path of the request
	Status int    // HTTP status code
	Code   string // the Hub's X-Error-Code header (RepoNotFound, GatedRepo, EntryNotFound, ...), if any
	Detail string // the Hub's error message or a hint, if any
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("GET %s: %d %s", e.URL, e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		msg += " (" + e.Code + ")"
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Unwrap returns ErrNotFound for 404 (and for the 401 the Hub answers for a
// repository it does not show without a token), ErrUnauthorized for other
// 401s and 403s, and nil otherwise.
func (e *HTTPError) Unwrap() error {
	switch {
	case e.Status == http.StatusNotFound:
		return ErrNotFound
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return ErrUnauthorized
	}
	return nil
}

// redactURL returns u without its query, fragment and user information.
func redactURL(u *url.URL) string {
	c := *u
	c.RawQuery, c.Fragment, c.User = "", "", nil
	return c.String()
}

// statusError returns the HTTPError for resp, with a hint that says what to
// do: set HF_TOKEN for a gated repository, check the name for a missing
// one. what names the repository or file asked for; haveToken says whether
// a token was sent.
func statusError(resp *http.Response, body []byte, what string, haveToken bool) *HTTPError {
	e := &HTTPError{URL: redactURL(resp.Request.URL), Status: resp.StatusCode, Code: resp.Header.Get("X-Error-Code")}
	msg := hubMessage(body)
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		if haveToken {
			e.Detail = what + " refused the token in HF_TOKEN (or huggingface-cli's token file): it is gated or private and the token has no access (accept its terms on the Hub)"
		} else {
			e.Detail = what + " is gated, private or does not exist: set HF_TOKEN to a token with access (or log in with huggingface-cli)"
		}
	case http.StatusNotFound:
		e.Detail = what + " not found"
	}
	if msg != "" {
		if e.Detail != "" {
			e.Detail += "; "
		}
		e.Detail += "the Hub says: " + msg
	}
	return e
}

// hubMessage returns the "error" field of a JSON error body, or a short
// plain-text body; nothing for an HTML page.
func hubMessage(body []byte) string {
	var j struct {
		Error string `json:"error"`
	}
	s := strings.TrimSpace(string(body))
	switch {
	case json.Unmarshal(body, &j) == nil && j.Error != "":
		s = j.Error
	case s == "" || s[0] == '<' || s[0] == '{':
		return ""
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
