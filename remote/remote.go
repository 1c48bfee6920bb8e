// Package remote asks served models for infills over HTTP: Inception's
// Mercury API and other OpenAI-style FIM endpoints, SGLang serving a
// diffusion model, llama.cpp's llama-server, and another dfill's `dfill
// http`. A Client takes a fim.Prompt and returns candidates, and streams
// the denoising steps where the server sends them.
//
// The API key comes from the environment variable Config.APIKeyEnv names;
// it travels only in the Authorization header and never appears in an
// error. The package logs nothing.
package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dfill/dfill/fim"
)

// The protocols a Client speaks (Config.Protocol).
const (
	// Mercury is Inception's API: POST {url}/v1/fim/completions, and
	// `diffusing: true` streams each denoising step's whole text.
	Mercury = "mercury"
	// OpenAIFIM is an OpenAI-style FIM endpoint (Mistral's Codestral,
	// DeepSeek, vLLM): POST {url}/v1/fim/completions, nothing beyond the
	// common fields.
	OpenAIFIM = "openai-fim"
	// SGLang is SGLang's native POST {url}/generate, serving a diffusion
	// model (`--dllm-algorithm`).
	SGLang = "sglang"
	// LlamaCpp is llama-server's POST {url}/infill: an autoregressive
	// model, a baseline.
	LlamaCpp = "llamacpp"
	// Dfill is another dfill's `dfill http`: Mercury's API, and the
	// sampler settings dfill's engine takes.
	Dfill = "dfill"
)

// Protocols returns the protocols a Client speaks, in the order the
// documentation lists them.
func Protocols() []string { return []string{Mercury, OpenAIFIM, SGLang, LlamaCpp, Dfill} }

// DefaultTimeout bounds one request when Config.Timeout is 0: a completion
// nobody waits for any more is not worth a connection.
const DefaultTimeout = 30 * time.Second

// Config says which server to ask and how.
type Config struct {
	// URL is the server's base URL (http or https), without the
	// endpoint: https://api.inceptionlabs.ai, http://gpu-box:30000. For the
	// FIM protocols a URL ending in /v1 is taken as it is.
	URL string
	// Protocol is one of Protocols.
	Protocol string
	// Model names the model for servers that serve several (required by
	// mercury and openai-fim; sent to dfill and llama.cpp when set; SGLang
	// serves one).
	Model string
	// APIKeyEnv names the environment variable holding the API key sent
	// as a bearer token; empty sends none. It is read once, by New.
	APIKeyEnv string
	// Timeout bounds each request (0: DefaultTimeout).
	Timeout time.Duration
	// HTTPClient sends the requests (nil: a client of this package's own).
	HTTPClient *http.Client
}

// Options are the sampler settings of one request.
type Options struct {
	MaxTokens   int      // tokens to generate (0: 32)
	Temperature float64  // 0: greedy; sent explicitly, servers' defaults differ
	Stop        []string // stop sequences (nil: none)
	// Steps, Algorithm and Threshold are dfill's own sampler settings,
	// sent to the dfill protocol only when set. The other servers take
	// none per request: SGLang reads its algorithm and threshold at launch
	// (--dllm-algorithm, --dllm-algorithm-config), Mercury has no such
	// knobs, and llama.cpp is autoregressive.
	Steps     int
	Algorithm string
	Threshold float64
}

// defaultMaxTokens is the span asked for when Options.MaxTokens is 0.
const defaultMaxTokens = 32

// Candidate is one infill a server proposed.
type Candidate struct {
	Text string // the middle, as the server wrote it
	// FinishReason is why the server stopped: "stop" (an end token or a
	// stop sequence), "length" (MaxTokens), or the server's own word.
	FinishReason string
	// Steps is how many streamed steps led to it (0 when the answer was
	// not streamed).
	Steps int
	// Index is the candidate's index among the server's choices.
	Index int
}

// Step is one streamed step of a candidate: the whole text so far.
type Step struct {
	Index int // the candidate's index (Candidate.Index)
	// Step counts the steps from 1; Steps is the number of steps when the
	// server said it (the last step of a diffusion), 0 while unknown.
	Step, Steps int
	Text        string
}

// secret is an API key. A Client keeps it behind a pointer: fmt prints a
// pointer to a string held in a field as an address, whatever the verb, so
// formatting a Client, or the value it points to, never shows the key.
type secret string

// Client asks one server for infills. It is safe for concurrent use.
type Client struct {
	protocol string
	base     *url.URL // the endpoint's URL
	shown    string   // base for messages: without user info
	model    string
	key      *secret // nil: no key
	timeout  time.Duration
	http     *http.Client
	gate     *gate
}

// ErrConfig marks the errors of New: a Config it refuses.
var ErrConfig = errors.New("remote")

// envName is what an environment variable's name may be: upper-case
// letters, digits and '_'. A value that is not one is refused without
// being repeated: it may be the key itself, pasted into the wrong field.
var envName = regexp.MustCompile(`^[A-Z_][A-Z0-9_]{0,127}$`)

// ValidEnvName reports whether s may name the environment variable that
// holds the API key (Config.APIKeyEnv).
func ValidEnvName(s string) bool { return envName.MatchString(s) }

// New returns a Client for cfg: the URL must be http or https with a host
// and no credentials, the protocol one of Protocols, and the environment
// variable APIKeyEnv names, when it names one, must be set.
func New(cfg Config) (*Client, error) {
	if !slices.Contains(Protocols(), cfg.Protocol) {
		return nil, fmt.Errorf("%w: protocol %q is not one of %s", ErrConfig, cfg.Protocol, strings.Join(Protocols(), ", "))
	}
	u, err := parseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if (cfg.Protocol == Mercury || cfg.Protocol == OpenAIFIM) && cfg.Model == "" {
		return nil, fmt.Errorf("%w: protocol %s needs a model name (remote.model, --remote-model)", ErrConfig, cfg.Protocol)
	}
	var key *secret
	if cfg.APIKeyEnv != "" {
		if !ValidEnvName(cfg.APIKeyEnv) {
			return nil, fmt.Errorf("%w: remote.apiKeyEnv must name an environment variable (upper-case letters, digits and _), not hold the key", ErrConfig)
		}
		v := os.Getenv(cfg.APIKeyEnv)
		if v == "" {
			return nil, fmt.Errorf("%w: the environment variable %s (remote.apiKeyEnv) is empty or not set", ErrConfig, cfg.APIKeyEnv)
		}
		key = (*secret)(&v)
	}
	c := &Client{
		protocol: cfg.Protocol,
		base:     endpoint(u, cfg.Protocol),
		model:    cfg.Model,
		key:      key,
		timeout:  cfg.Timeout,
		http:     cfg.HTTPClient,
		gate:     newGate(),
	}
	c.shown = c.base.String()
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.http == nil {
		c.http = &http.Client{Transport: newTransport()}
	}
	return c, nil
}

// parseURL checks a base URL.
func parseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: no URL (remote.url, --remote-url)", ErrConfig)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the URL, which may hold a password.
		return nil, fmt.Errorf("%w: remote.url is not a URL", ErrConfig)
	}
	switch {
	case u.User != nil:
		return nil, fmt.Errorf("%w: remote.url %s holds credentials; put the key in the environment variable remote.apiKeyEnv names", ErrConfig, u.Redacted())
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%w: remote.url %s: the scheme must be http or https", ErrConfig, u)
	case u.Host == "":
		return nil, fmt.Errorf("%w: remote.url %s has no host", ErrConfig, u)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%w: remote.url %s: a base URL takes no query or fragment", ErrConfig, u)
	}
	return u, nil
}

// endpoint returns the URL of protocol's endpoint under the base URL u.
func endpoint(u *url.URL, protocol string) *url.URL {
	base := *u
	base.Path = strings.TrimRight(base.Path, "/")
	base.RawPath = ""
	switch protocol {
	case SGLang:
		return base.JoinPath("generate")
	case LlamaCpp:
		return base.JoinPath("infill")
	}
	if strings.HasSuffix(base.Path, "/v1") {
		return base.JoinPath("fim", "completions")
	}
	return base.JoinPath("v1", "fim", "completions")
}

// Name names the model and the server for logs and results:
// "mercury-coder@api.inceptionlabs.ai", or the protocol when the Config
// named no model.
func (c *Client) Name() string {
	return cmpOr(c.model, c.protocol) + "@" + c.base.Host
}

// URL returns the endpoint the Client posts to.
func (c *Client) URL() string { return c.shown }

// Protocol returns the protocol the Client speaks.
func (c *Client) Protocol() string { return c.protocol }

// Infill asks the server to fill the middle of p and returns its
// candidates. onStep, when not nil, is called with each step the server
// streams: the protocols that stream diffusion steps (mercury, dfill) are
// then asked for them (`diffusing`), openai-fim streams its tokens, and
// sglang and llamacpp answer at once. ctx cancels the request, and the
// Client's timeout bounds it.
//
// After a failure that a quick retry would not mend (the server is down,
// refuses the key, or is rate-limited) the Client backs off: until the
// wait is over, Infill returns ErrBackoff wrapping the failure at once,
// without asking the server. The wait doubles with each failure, from 1s
// to a minute, or is what the server's Retry-After said; an answer ends
// it.
func (c *Client) Infill(ctx context.Context, p fim.Prompt, opt Options, onStep func(Step)) ([]Candidate, error) {
	if err := c.gate.check(); err != nil {
		return nil, err
	}
	if opt.MaxTokens <= 0 {
		opt.MaxTokens = defaultMaxTokens
	}
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var (
		cands []Candidate
		err   error
	)
	switch c.protocol {
	case SGLang:
		cands, err = c.sglang(rctx, p, opt)
	case LlamaCpp:
		cands, err = c.llamaCpp(rctx, p, opt)
	default:
		cands, err = c.fim(rctx, p, opt, onStep)
	}
	switch {
	case ctx.Err() != nil:
		// The caller gave up (a newer keystroke): not the server's fault.
		return nil, fmt.Errorf("remote: POST %s: %w", c.shown, context.Cause(ctx))
	case err == nil:
		c.gate.pass()
		return cands, nil
	case rctx.Err() != nil:
		err = fmt.Errorf("remote: POST %s: no answer within %v: %w", c.shown, c.timeout, rctx.Err())
	}
	if backsOff(err) {
		c.gate.fail(err)
	}
	return nil, c.scrub(err)
}

// scrub makes sure err does not carry the key (a server that echoes the
// Authorization header in its error message, say).
func (c *Client) scrub(err error) error {
	if c.key == nil || !strings.Contains(err.Error(), string(*c.key)) {
		return err
	}
	return &scrubbed{msg: strings.ReplaceAll(err.Error(), string(*c.key), "[redacted]"), err: err}
}

// scrubbed is an error whose message had the key taken out; Unwrap keeps
// errors.Is and errors.As working.
type scrubbed struct {
	msg string
	err error
}

func (s *scrubbed) Error() string { return s.msg }
func (s *scrubbed) Unwrap() error { return s.err }

// cmpOr returns a, or b when a is empty.
func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// ErrBackoff marks an error Infill returns without asking the server, while
// it waits after a failure.
var ErrBackoff = errors.New("remote: waiting after a failure")

// Backoff bounds.
const (
	backoffFirst = time.Second
	backoffMax   = time.Minute
	// retryAfterMax caps what a server's Retry-After can make the Client
	// wait.
	retryAfterMax = 10 * time.Minute
)

// backsOff reports whether err is a failure the next request would most
// likely meet too: the server unreachable or too slow, the key or the
// endpoint wrong (401, 403, 404), rate limits (429) and server errors
// (5xx). A request the server refused for its own content (400, 413, 422)
// or an answer it got wrong says nothing of the next one.
func backsOff(err error) bool {
	var re *Error
	if !errors.As(err, &re) {
		var be *badAnswer
		return !errors.As(err, &be)
	}
	switch {
	case re.Status >= 500, re.Status == http.StatusTooManyRequests, re.Status == http.StatusRequestTimeout,
		re.Status == http.StatusUnauthorized, re.Status == http.StatusForbidden, re.Status == http.StatusNotFound:
		return true
	}
	return false
}

// gate holds the backoff after failures.
type gate struct {
	now func() time.Time

	// mu guards the fields below.
	mu       sync.Mutex
	failures int       // consecutive failures
	until    time.Time // no request before this
	last     error     // the failure that set until
}

func newGate() *gate { return &gate{now: time.Now} }

// check returns an error wrapping ErrBackoff and the last failure while
// the wait lasts.
func (g *gate) check() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last == nil {
		return nil
	}
	left := g.until.Sub(g.now())
	if left <= 0 {
		return nil
	}
	return fmt.Errorf("%w (asking again in %v): %w", ErrBackoff, left.Round(time.Second/10), g.last)
}

// pass ends the backoff.
func (g *gate) pass() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failures, g.until, g.last = 0, time.Time{}, nil
}

// fail records a failure and sets the wait: doubling from backoffFirst to
// backoffMax, or the server's Retry-After.
func (g *gate) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failures++
	wait := backoffMax
	if g.failures <= 7 { // 1s << 6 = 64s already passes backoffMax
		wait = min(backoffFirst<<(g.failures-1), backoffMax)
	}
	var re *Error
	if errors.As(err, &re) && re.RetryAfter > 0 {
		wait = min(re.RetryAfter, retryAfterMax)
	}
	g.until, g.last = g.now().Add(wait), err
}

// CloseIdleConnections closes the connections the Client keeps open
// between requests; it may still send requests after.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }
