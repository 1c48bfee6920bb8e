package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// route is one path the server answers.
type route struct {
	name   string // the route label of the metrics
	method string // GET also answers HEAD
	public bool   // answered without the API key
	handle func(w http.ResponseWriter, r *http.Request) error
}

// errClientGone is returned by a handler whose client went away before
// the answer was written; nothing more is written.
var errClientGone = errors.New("client went away")

// routes returns the server's handler: the routes behind recovery,
// metrics and logging, the API key check and the method check. Unknown
// paths answer 404 and wrong methods 405, in the JSON error envelope.
func (s *Server) routes() http.Handler {
	metrics := s.metrics.handler()
	table := map[string]route{
		"/v1/fim/completions": {name: "fim", method: http.MethodPost, handle: s.complete},
		"/v1/completions":     {name: "completions", method: http.MethodPost, handle: s.complete},
		"/v1/models":          {name: "models", method: http.MethodGet, handle: s.models},
		"/healthz":            {name: "healthz", method: http.MethodGet, public: true, handle: s.healthz},
		// The playground's files need no key: the page asks for it, and
		// sends it with its API requests.
		"/playground":           {name: "playground", method: http.MethodGet, public: true, handle: playground("index.html", "text/html; charset=utf-8")},
		"/playground/app.js":    {name: "playground", method: http.MethodGet, public: true, handle: playground("app.js", "text/javascript; charset=utf-8")},
		"/playground/style.css": {name: "playground", method: http.MethodGet, public: true, handle: playground("style.css", "text/css; charset=utf-8")},
		"/metrics": {name: "metrics", method: http.MethodGet, handle: func(w http.ResponseWriter, r *http.Request) error {
			metrics.ServeHTTP(w, r)
			return nil
		}},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.handlers.Add(1)
		defer s.handlers.Done()
		start := time.Now()
		rt, known := table[r.URL.Path]
		if !known {
			rt = route{name: "other", public: true, handle: func(http.ResponseWriter, *http.Request) error {
				return &apiError{Status: http.StatusNotFound, Type: typeNotFound, Code: "unknown_url",
					Message: "no such path: the API has POST /v1/fim/completions, POST /v1/completions, GET /v1/models, /healthz, /metrics and /playground"}
			}}
		}
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("panic serving a request", zap.String("route", rt.name), zap.Any("panic", p), zap.StackSkip("stack", 1))
				s.answerError(rec, errors.New("panic"))
			}
			s.observe(rt.name, r.Method, rec, time.Since(start))
		}()
		s.answerError(rec, s.check(rec, r, rt))
	})
}

// check runs rt on r after checking the API key and the method.
func (s *Server) check(w http.ResponseWriter, r *http.Request, rt route) error {
	if !rt.public && !s.authorized(r) {
		return &apiError{Status: http.StatusUnauthorized, Type: typeAuth, Code: "invalid_api_key",
			Message: "missing or wrong API key: send Authorization: Bearer KEY"}
	}
	if rt.method != "" && r.Method != rt.method && !(rt.method == http.MethodGet && r.Method == http.MethodHead) {
		w.Header().Set("Allow", rt.method)
		return &apiError{Status: http.StatusMethodNotAllowed, Type: typeInvalid, Code: "method_not_allowed",
			Message: r.URL.Path + " answers " + rt.method + ", not " + r.Method}
	}
	return rt.handle(w, r)
}

// answerError writes err to the client, unless the answer has begun (a
// stream writes its own errors) or the client has gone, and notes it for
// the metrics.
func (s *Server) answerError(rec *recorder, err error) {
	if err == nil {
		return
	}
	if errors.Is(err, errClientGone) {
		rec.status, rec.errType = 499, "canceled"
		return
	}
	e := asAPIError(err)
	if e.Status == http.StatusInternalServerError {
		s.log.Error("request failed", zap.Error(err))
	}
	rec.errType = e.Type
	if !rec.wrote {
		writeError(rec, e)
	}
}

// observe counts and logs one answered request.
func (s *Server) observe(route, method string, rec *recorder, took time.Duration) {
	code := strconv.Itoa(rec.status)
	s.metrics.requests.WithLabelValues(route, code).Inc()
	s.metrics.latency.WithLabelValues(route).Observe(took.Seconds())
	if rec.errType != "" {
		s.metrics.errors.WithLabelValues(route, rec.errType).Inc()
	}
	level := zap.InfoLevel
	if (route == "healthz" || route == "metrics") && rec.errType == "" {
		level = zap.DebugLevel // probes and scrapes
	}
	s.log.Log(level, "request", zap.String("route", route), zap.String("method", method), zap.Int("status", rec.status),
		zap.Duration("took", took))
}

// authorized reports whether r carries the API key, when one is needed.
func (s *Server) authorized(r *http.Request) bool {
	if s.keyHash == nil {
		return true
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") && sameKey(strings.TrimSpace(token), s.keyHash)
}

// sameKey reports whether token is the key whose SHA-256 is want, in time
// that depends on neither: both sides are hashed to the same length and
// compared with subtle.ConstantTimeCompare, so a wrong guess reveals
// neither the key's bytes nor its length.
func sameKey(token string, want *[sha256.Size]byte) bool {
	got := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// recorder is the ResponseWriter handlers write to: it remembers the
// status for the metrics and logs, and passes flushes through for
// streams.
type recorder struct {
	http.ResponseWriter
	status  int
	wrote   bool
	errType string // the error type answered, for the metrics; "" when none
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// Flush sends what was written so far (an SSE event) to the client.
func (r *recorder) Flush() { r.FlushError() }

// FlushError is Flush, with the error of a client gone; what
// http.ResponseController calls.
func (r *recorder) FlushError() error {
	r.wrote = true
	return http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
