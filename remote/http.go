package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Limits on what a server sends back.
const (
	// maxBody bounds a JSON answer; an infill is a few kilobytes.
	maxBody = 4 << 20
	// maxStream bounds a whole SSE answer: a diffusion streams the whole
	// text at each step.
	maxStream = 16 << 20
	// maxErrorBody is how much of an error answer is read for its message.
	maxErrorBody = 64 << 10
	// maxMessage is how much of a server's error message an error shows.
	maxMessage = 300
)

// newTransport returns the transport of a Client that was given no
// http.Client: the default one's settings with bounded dialing, TLS and
// header waits (a host that does not answer must not hold a completion
// for the whole request timeout before it fails).
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 5 * time.Second
	t.MaxIdleConnsPerHost = 4
	return t
}

// Error is a non-2xx answer from the server.
type Error struct {
	URL     string // the endpoint, without credentials
	Status  int    // the HTTP status
	Message string // the server's error message, when it sent one
	// RetryAfter is the wait the server asked for (Retry-After), or 0.
	RetryAfter time.Duration
}

// Error says the endpoint, the status and the server's message; never the
// key, which only the request's header held.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "remote: POST %s: %d %s", e.URL, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %v)", e.RetryAfter)
	}
	return b.String()
}

// badAnswer is a 2xx answer the Client could not read.
type badAnswer struct {
	url string
	err error
}

func (e *badAnswer) Error() string {
	return fmt.Sprintf("remote: POST %s: unreadable answer: %v", e.url, e.err)
}
func (e *badAnswer) Unwrap() error { return e.err }

// streamError is a failure the server reported in the middle of a stream.
type streamError struct {
	url, msg string
}

func (e *streamError) Error() string {
	return fmt.Sprintf("remote: POST %s: the server failed mid-stream: %s", e.url, e.msg)
}

// errTooLarge is what a limited body returns past its limit.
var errTooLarge = errors.New("answer too large")

// post sends body as JSON to the endpoint and returns the response of a 2xx
// answer, its body bounded by limit; any other status is an *Error. A
// request that fails on a reused keep-alive connection before any answer
// (the server closed it while idle, between two keystrokes) is sent once
// more on a new connection: the server never saw it, and the failure says
// nothing of the server. Any other failure is returned as it is.
func (c *Client) post(ctx context.Context, body any, stream bool, limit int64) (*http.Response, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("remote: POST %s: %w", c.shown, err)
	}
	resp, reused, err := c.send(ctx, data, stream)
	if err != nil && reused && ctx.Err() == nil && staleConn(err) {
		resp, _, err = c.send(ctx, data, stream)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("remote: POST %s: %w", c.shown, unwrapURLError(err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, c.statusError(resp)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: limit}
	return resp, nil
}

// send makes one request and reports whether it went over a reused
// connection.
func (c *Client) send(ctx context.Context, data []byte, stream bool) (resp *http.Response, reused bool, err error) {
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, c.base.String(), bytes.NewReader(data))
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "dfill")
	if stream {
		req.Header.Set("Accept", "text/event-stream")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	if c.key != nil {
		req.Header.Set("Authorization", "Bearer "+string(*c.key))
	}
	resp, err = c.http.Do(req)
	return resp, reused, err
}

// staleConn reports whether err is what a connection the server closed
// gives: a reset, or the end of the stream before any answer.
func staleConn(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.EPIPE)
}

// unwrapURLError drops the *url.Error around a transport error: it repeats
// the method and URL, which the caller's message already names.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// statusError reads a non-2xx answer into an *Error.
func (c *Client) statusError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return &Error{
		URL:        c.shown,
		Status:     resp.StatusCode,
		Message:    errorMessage(raw),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
}

// errorMessage finds the message in an error body, whichever of the usual
// shapes it has: {"error": {"message": ...}} (OpenAI, llama.cpp, Mercury),
// {"error": "..."}, {"message": ...} (SGLang, Mistral) or {"detail": ...}
// (FastAPI); else the body's text. It is cut to maxMessage bytes.
func errorMessage(raw []byte) string {
	var shapes struct {
		Error   json.RawMessage `json:"error"`
		Message json.RawMessage `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	msg := ""
	if json.Unmarshal(raw, &shapes) == nil {
		var inner struct {
			Message json.RawMessage `json:"message"`
		}
		switch {
		case len(shapes.Error) > 0 && json.Unmarshal(shapes.Error, &inner) == nil && len(inner.Message) > 0:
			msg = jsonText(inner.Message)
		case len(shapes.Error) > 0 && !bytes.Equal(shapes.Error, []byte("null")):
			msg = jsonText(shapes.Error)
		case len(shapes.Message) > 0:
			msg = jsonText(shapes.Message)
		case len(shapes.Detail) > 0:
			msg = jsonText(shapes.Detail)
		}
	}
	if msg == "" {
		msg = string(raw)
	}
	return clip(strings.Join(strings.Fields(msg), " "), maxMessage)
}

// jsonText returns a JSON string's value, or the compact JSON of anything
// else (Mistral's message is an object of validation errors).
func jsonText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		return b.String()
	}
	return string(raw)
}

// clip cuts s to at most n bytes on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i] + "…"
}

// retryAfter parses a Retry-After header: seconds, or an HTTP date (as
// seen from now). Anything else, or a time past, is 0.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil {
		return max(time.Duration(s)*time.Second, 0)
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// limitedBody fails reads past its limit, so that an oversized answer is
// an error rather than a truncated one.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One byte more tells a body of exactly the limit from a longer one.
		var one [1]byte
		n, err := l.rc.Read(one[:])
		if n > 0 {
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.rc.Read(p)
	l.left -= int64(n)
	return n, err
}

func (l *limitedBody) Close() error { return l.rc.Close() }

// isEventStream reports whether resp carries Server-Sent Events.
func isEventStream(resp *http.Response) bool {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return err == nil && mt == "text/event-stream"
}

// decodeJSON reads resp's body into v.
func (c *Client) decodeJSON(resp *http.Response, v any) error {
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return c.readError(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return &badAnswer{url: c.shown, err: err}
	}
	return nil
}

// readError wraps a failure while reading an answer's body.
func (c *Client) readError(err error) error {
	var ba *badAnswer
	var se *streamError
	if errors.As(err, &ba) || errors.As(err, &se) {
		return err
	}
	if errors.Is(err, errTooLarge) {
		return &badAnswer{url: c.shown, err: err}
	}
	return fmt.Errorf("remote: POST %s: reading the answer: %w", c.shown, err)
}
